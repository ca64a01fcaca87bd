"""Scene-cut detection with built-in filters only (R81 has no misc.SCDetect; std.PlaneStats is there).

A cut lies between source frames i and i+1 when the input says so with ``_SceneChangeNext`` on frame i or
``_SceneChangePrev`` on frame i+1 (as ``scd.Detect`` or ``mv.SCDetection`` set them), or when the mean
absolute luma difference of the two frames exceeds a threshold and stays above half of it after motion
compensation: large motion changes many pixels too, but they come back when the motion is undone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import vapoursynth as vs
from vsutil import split

from .flow import compensated_difference
from .frames import read_frame
from .luma import LUMA_WEIGHTS, luma

__all__ = [
    "COMPENSATED_FRACTION",
    "DEFAULT_SC_THRESHOLD",
    "DIFF_PROP",
    "LUMA_WEIGHTS",
    "find_cuts",
    "is_cut",
    "luma",
    "luma_diff_clip",
    "next_frame_clip",
]

DIFF_PROP = "PlaneStatsDiff"
# Mean luma difference above which a pair is tested for a cut; vs-rife takes the same sc_threshold, but detects
# nothing by default (None), where this filter does.
DEFAULT_SC_THRESHOLD = 0.15
# Left after motion compensation, as a fraction of the threshold, by a pair that is still a cut. Hard cuts
# keep 70 % or more of their difference (0.145 and up on a real clip's five cuts); a handheld pan at 0.166
# drops to 0.05. Half the threshold sits between the two.
COMPENSATED_FRACTION = 0.5
_LUMA_EXPR = "x {} * y {} * + z {} * +".format(*LUMA_WEIGHTS)


def next_frame_clip(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame i of the result is frame i+1 of ``clip``; the last frame stands in for itself."""
    return clip if clip.num_frames == 1 else clip[1:] + clip[-1]


def luma_diff_clip(clip: vs.VideoNode) -> vs.VideoNode:
    """A GRAYS clip whose frame i carries ``PlaneStatsDiff`` = mean |luma(i+1) - luma(i)| in [0, 1]."""
    luma = vs.core.std.Expr(split(clip), _LUMA_EXPR, format=vs.GRAYS)
    return vs.core.std.PlaneStats(luma, next_frame_clip(luma))


def is_cut(
    left: Mapping[str, Any],
    right: Mapping[str, Any],
    stats: Mapping[str, Any] | None,
    threshold: float,
    compensated: Callable[[], float] | None = None,
) -> bool:
    """Whether the pair (left, right) spans a cut, from the frames' props and the luma statistics.

    ``compensated`` gives the pair's luma difference after motion compensation; it is asked only when the
    plain difference is over the threshold, and without it that difference alone decides.
    """
    if left.get("_SceneChangeNext") or right.get("_SceneChangePrev"):
        return True
    if stats is None or float(stats[DIFF_PROP]) <= threshold:
        return False
    return compensated is None or compensated() > COMPENSATED_FRACTION * threshold


def find_cuts(clip: vs.VideoNode, threshold: float = DEFAULT_SC_THRESHOLD) -> list[int]:
    """Every i such that the pair (i, i+1) of the RGB ``clip`` spans a cut, as the filter's cut test decides
    it (:func:`is_cut`): one pass over the clip, motion compensation only for pairs over the threshold."""
    cuts: list[int] = []
    left: dict[str, Any] | None = None
    # The statistics frames carry the clip's own props (std.Expr and PlaneStats copy them from the clip).
    for i, frame in enumerate(luma_diff_clip(clip).frames(close=True)):
        if left is not None and is_cut(
            left, frame.props, left, threshold, functools.partial(_compensated, clip, i - 1)
        ):
            cuts.append(i - 1)
        left = frame.props.copy()
    return cuts


def _compensated(clip: vs.VideoNode, i: int) -> float:
    """The luma difference of frames i and i + 1 after motion compensation."""
    return compensated_difference(read_frame(clip.get_frame(i)), read_frame(clip.get_frame(i + 1)))
