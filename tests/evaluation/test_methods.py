"""The methods: FlowFPS and minterpolate aligned and above blend on motion; models with each flow source."""

from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import (
    RAMP_START,
    evaluate_window_named,
    make_model,
    needs_ffmpeg,
    needs_mvtools,
)

from vs_superslomo import metrics

core = vs.core


pytestmark = pytest.mark.skipif(not hasattr(core, "bs"), reason="the bestsource plugin is not installed")


@needs_mvtools
def test_flowfps_is_aligned_and_beats_blend_on_motion(clips: Path) -> None:
    ramp, texture = (
        evaluate_window_named(clips, name, start, [2], flowfps=True)
        for name, start in (("ramp", RAMP_START), ("tex", 0))
    )
    # Flat frames: any frame off by one would be RAMP_STEP codes away (about 35 dB), not near perfect.
    assert min(s.psnr for s in ramp[0].scores["flowfps"]) > 60
    # A texture moving 4 px between kept frames: motion compensation wins by far when the frames line up.
    assert texture[0].mean("flowfps", "psnr") > texture[0].mean("blend", "psnr") + 6


@needs_ffmpeg
@pytest.mark.parametrize("k", [2, 4])
def test_minterpolate_is_aligned_and_beats_blend_on_motion(clips: Path, k: int) -> None:
    ramp, texture = (
        evaluate_window_named(clips, name, start, [k], flowfps=False, minterpolate=True)[0]
        for name, start in (("ramp", RAMP_START), ("tex", 0))
    )
    # Flat frames: one frame off would be RAMP_STEP codes away; the last interval is scored too.
    assert [s.frame for s in ramp.scores["minterpolate"]] == [s.frame for s in ramp.scores["blend"]]
    assert min(s.psnr for s in ramp.scores["minterpolate"]) > 45
    assert texture.mean("minterpolate", "psnr") > texture.mean("blend", "psnr") + 2  # 16 px blocks on 64×48


def test_superslomo_method_runs_with_a_tiny_model(clips: Path) -> None:
    (result,) = evaluate_window_named(clips, "tex", 0, [4], models={"tiny": make_model()}, flowfps=False)
    scores = result.scores["tiny"]
    assert len(scores) == 30 and all(10 < s.psnr < metrics.PSNR_CAP_DB and 0 < s.ssim < 1 for s in scores)
    assert scores != result.scores["repeat"]  # interpolated, not copies at scene cuts


def test_each_model_runs_with_each_flow_source_asked_for(clips: Path) -> None:
    """An interpolation net that adds nothing (zero residuals, equal visibility) turns DIS flows into a
    motion-compensated blend: exact on flat frames (zero flow), far above blend on a moving texture."""
    model = make_model()
    for parameter in model.interp.conv3.parameters():
        parameter.data.zero_()
    models = {"tiny": model}
    ramp, texture = (
        evaluate_window_named(clips, name, start, [2], models=models, flowfps=False, flows=("auto", "net", "dis"))[0]
        for name, start in (("ramp", RAMP_START), ("tex", 0))
    )
    assert set(ramp.scores) == {"repeat", "blend", "tiny", "tiny+dis"}  # auto is net for these weights: once
    assert [s.frame for s in ramp.scores["tiny+dis"]] == [s.frame for s in ramp.scores["blend"]]
    assert min(s.psnr for s in ramp.scores["tiny+dis"]) > 60
    assert texture.mean("tiny+dis", "psnr") > texture.mean("blend", "psnr") + 3
    assert texture.mean("tiny+dis", "psnr") != texture.mean("tiny", "psnr")  # auto is the flow net here


def test_a_model_runs_at_each_scale_asked_for(clips: Path) -> None:
    """``NAME+scale=S``: the networks on a smaller copy (their frames differ), the frames still aligned."""
    (result,) = evaluate_window_named(clips, "tex", 0, [2], models={"tiny": make_model()}, flowfps=False, scales=(0.5,))
    assert set(result.scores) == {"repeat", "blend", "tiny", "tiny+scale=0.5"}
    assert [s.frame for s in result.scores["tiny+scale=0.5"]] == [s.frame for s in result.scores["tiny"]]
    assert result.mean("tiny+scale=0.5", "psnr") != result.mean("tiny", "psnr")
