"""``vs-superslomo eval``: tables, JSON and plots written; usage errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from helpers import (
    HAS_MVTOOLS,
    RAMP_START,
    make_model,
)

from vs_superslomo.evaluation import cli
from vs_superslomo.weights import save_model

core = vs.core


pytestmark = pytest.mark.skipif(not hasattr(core, "bs"), reason="the bestsource plugin is not installed")


def test_main_writes_tables_json_and_plots(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "tiny.safetensors"
    save_model(make_model(), weights)
    out = tmp_path / "out"
    argv = ["--model", str(weights), "--extra", f"other={weights}", "--clips", str(clips), "--out", str(out)]
    argv += ["--only", f"ramp@{RAMP_START},tex.y4m@0", "--k", "2", "4"]
    if not HAS_MVTOOLS:
        argv.append("--no-flowfps")
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    pictures = ["crop.png", "psnr_vs_t.png", "worst.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*pictures, "results.json", "results.md"])
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pictures)
    data = json.loads((out / "results.json").read_text())
    assert [(c["name"], c["k"]) for c in data["clips"]] == [("ramp", 2), ("ramp", 4), ("tex", 2), ("tex", 4)]
    ramp2 = data["clips"][0]
    assert [f["frame"] for f in ramp2["frames"]["superslomo"]] == list(range(RAMP_START + 1, RAMP_START + 40, 2))
    assert set(ramp2["frames"]) == {"repeat", "blend", "superslomo", "other", *(["flowfps"] if HAS_MVTOOLS else [])}
    report = (out / "results.md").read_text()
    assert printed.strip() == report.strip()
    mean_row = next(line for line in report.splitlines() if line.startswith("| **mean**"))
    header = next(line for line in report.splitlines() if line.startswith("| clip"))
    column = header.split(" | ").index("repeat k=2")
    expected = np.mean([c["mean"]["repeat"]["psnr"] for c in data["clips"] if c["k"] == 2])
    assert mean_row.split(" | ")[column] == f"{expected:.2f}"
    assert "| superslomo k=4 |" in header and "| other k=2 |" in header
    # The worst case: per clip and k, each method's frames more than 0.5 dB under blend and its worst margin.
    tex4 = data["clips"][3]
    margins = [
        s["psnr"] - b["psnr"] for s, b in zip(tex4["frames"]["superslomo"], tex4["frames"]["blend"], strict=True)
    ]
    assert tex4["worst_vs_blend"]["superslomo"] == min(margins)
    row = next(line for line in report.splitlines() if line.startswith("| tex | 4 |"))
    cell = row.split(" | ")[2 + int(HAS_MVTOOLS)]  # clip, k, (flowfps,) superslomo
    assert cell == f"{sum(m < -0.5 for m in margins)}/{len(margins)} / {min(margins):+.2f}"


def test_main_reports_usage_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--clips", str(tmp_path), "--no-superslomo"]) == 1
    assert "holds none of the default clips; name windows with --only FILE@START" in capsys.readouterr().err
