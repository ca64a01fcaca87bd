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
    assert sorted(p.name for p in out.iterdir()) == ["crop.png", "psnr_vs_t.png", "results.json", "results.md"]
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in ("crop.png", "psnr_vs_t.png"))
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


def test_main_reports_usage_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--clips", str(tmp_path), "--no-superslomo"]) == 1
    assert "holds none of the default clips; name windows with --only FILE@START" in capsys.readouterr().err
