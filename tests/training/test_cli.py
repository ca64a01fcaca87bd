"""``vs-superslomo train``: a run from the command line, and bad settings as one-line failed runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import (
    TINY_WIDTH,
)

from vs_superslomo.training.cli import main
from vs_superslomo.weights import load_model


def test_command_line_trains_and_reports_bad_settings(
    tmp_path: Path, folders: tuple[Path, Path | None], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.safetensors"
    common = ["--photos", str(folders[0]), "--out", str(out), "--width", str(TINY_WIDTH), "--holdout", "--quiet"]
    losses = ["--l1-weight", "0", "--mse-weight", "1000", "--warp-weight", "51"]
    assert main([*common, "--steps", "1", "--batch", "1", "--crop", "32", "--val-count", "1", *losses]) == 0
    assert load_model(out)[1].warp == "exact" and (tmp_path / "cli.train.pt").is_file()
    saved = torch.load(tmp_path / "cli.train.pt", weights_only=True)["config"]
    assert (saved["l1_weight"], saved["mse_weight"], saved["warp_weight"]) == (0, 1000, 51)
    # A run that cannot go as asked is a failed job: exit status 1 and one line, as for every command.
    assert main([*common, "--crop", "100", "--checkpoint", str(tmp_path / "other.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vs-superslomo train: error: ") and "crop must be a multiple of 32" in err
    assert err.count("\n") == 1
    assert main([*common, "--motion", "quadratic", "--checkpoint", str(tmp_path / "quadratic.pt")]) == 1
    assert "motion 'quadratic' needs --flow dis" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*common, "--device", "cuda", "--checkpoint", str(tmp_path / "cuda.pt")]) == 1
        assert capsys.readouterr().err == (
            "vs-superslomo train: error: --device cuda: CUDA is not available here; use --device cpu\n"
        )
