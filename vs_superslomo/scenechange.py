"""Scene-cut detection with built-in filters only (R81 has no misc.SCDetect; std.PlaneStats is there).

A cut lies between source frames i and i+1 when the mean absolute luma difference of the two frames
exceeds a threshold, or when the input already says so with ``_SceneChangeNext`` on frame i or
``_SceneChangePrev`` on frame i+1 (as ``scd.Detect`` or ``mv.SCDetection`` set them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import vapoursynth as vs

__all__ = ["DEFAULT_SC_THRESHOLD", "DIFF_PROP", "LUMA_WEIGHTS", "is_cut", "luma", "luma_diff_clip", "next_frame_clip"]

DIFF_PROP = "PlaneStatsDiff"
DEFAULT_SC_THRESHOLD = 0.15  # vs-rife's default, so scripts switching filters keep their behaviour
# BT.709 luma weights: a cut is a change of picture, which luma shows without colour noise.
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)
_LUMA_EXPR = "x {} * y {} * + z {} * +".format(*LUMA_WEIGHTS)


def next_frame_clip(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame i of the result is frame i+1 of ``clip``; the last frame stands in for itself."""
    return clip if clip.num_frames == 1 else clip[1:] + clip[-1]


def luma(frames: np.ndarray) -> np.ndarray:
    """The same luma for RGB arrays shaped (..., 3, H, W) → (..., H, W), float32."""
    return np.tensordot(np.asarray(LUMA_WEIGHTS, np.float32), frames, axes=([0], [-3])).astype(np.float32)


def luma_diff_clip(clip: vs.VideoNode) -> vs.VideoNode:
    """A GRAYS clip whose frame i carries ``PlaneStatsDiff`` = mean |luma(i+1) - luma(i)| in [0, 1]."""
    planes = [vs.core.std.ShufflePlanes(clip, plane, vs.GRAY) for plane in range(3)]
    luma = vs.core.std.Expr(planes, _LUMA_EXPR, format=vs.GRAYS)
    return vs.core.std.PlaneStats(luma, next_frame_clip(luma))


def is_cut(
    left: Mapping[str, Any], right: Mapping[str, Any], stats: Mapping[str, Any] | None, threshold: float
) -> bool:
    """Whether the pair (left, right) spans a cut, from the frames' props and the luma statistics."""
    if left.get("_SceneChangeNext") or right.get("_SceneChangePrev"):
        return True
    return stats is not None and float(stats[DIFF_PROP]) > threshold
