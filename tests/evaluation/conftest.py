"""Fixtures of the evaluation tests: tiny y4m clips, a ramp and a moving texture."""

from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import (
    RAMP_START,
    RAMP_STEP,
    random_frames,
)

from vs_superslomo.evaluation import protocol
from vs_superslomo.frames import clip_from_arrays

core = vs.core


def _write_y4m(clip: vs.VideoNode, path: Path) -> Path:
    with open(path, "wb") as fh:
        clip.output(fh, y4m=True)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ramp.y4m: flat grey frames, luma rising RAMP_STEP a frame from RAMP_START; tex.y4m: a moving texture."""
    folder = tmp_path_factory.mktemp("clips")
    levels = [200] * RAMP_START + [16 + RAMP_STEP * i for i in range(protocol.WINDOW_LENGTH)]
    flat = [core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=1, color=[y, 128, 128]) for y in levels]
    _write_y4m(core.std.Splice(flat), folder / "ramp.y4m")
    # Low contrast keeps consecutive kept frames under the filter's scene-cut threshold, so it interpolates.
    # A fine 4-pixel grain: detail that blending smears and motion compensation keeps.
    frames = [0.3 + 0.4 * f for f in random_frames(protocol.WINDOW_LENGTH, 48, 64, grain=4)]
    texture = core.resize.Bicubic(clip_from_arrays(frames), format=vs.YUV420P8, matrix_s="709")
    _write_y4m(texture, folder / "tex.y4m")
    return folder
