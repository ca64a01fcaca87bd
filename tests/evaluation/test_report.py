"""The held-frame picture: a clip with real held frames before and after dedup."""

from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import (
    make_model,
    random_frames,
)

from vs_superslomo.evaluation import report
from vs_superslomo.frames import clip_from_arrays

core = vs.core


pytestmark = pytest.mark.skipif(not hasattr(core, "bs"), reason="the bestsource plugin is not installed")


def test_held_picture_shows_a_clip_before_and_after_dedup(tmp_path: Path) -> None:
    pictures = random_frames(3, 32, 48, seed=8, grain=4)
    clip = core.resize.Bicubic(
        clip_from_arrays([pictures[0], pictures[0], pictures[1], pictures[1], pictures[2]]),
        format=vs.YUV444P8,
        matrix_s="709",
    )
    report.plot_held(clip, 0, make_model(), tmp_path / "held.png")
    assert (tmp_path / "held.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
