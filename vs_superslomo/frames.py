"""RGB VideoFrame ⇄ numpy (3, H, W): the one place that touches plane memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import vapoursynth as vs

from .stages import timed

__all__ = ["clip_from_arrays", "read_frame", "write_frame"]


def read_frame(frame: vs.VideoFrame) -> np.ndarray:
    """A (3, H, W) copy of an RGB frame's planes, in the frame's sample type."""
    with timed("copies: frames from VapourSynth"):
        return np.stack([np.asarray(frame[plane]) for plane in range(3)])


def write_frame(frame: vs.VideoFrame, data: np.ndarray) -> None:
    """Write (3, H, W) ``data`` into a writable RGB frame, converting to its sample type."""
    with timed("copies: frames to VapourSynth"):
        for plane in range(3):
            np.copyto(np.asarray(frame[plane]), data[plane], casting="same_kind")


def clip_from_arrays(
    frames: Sequence[np.ndarray],
    fmt: int = vs.RGBS,
    fps: tuple[int, int] = (24000, 1001),
    props: Sequence[Mapping[str, object]] | None = None,
) -> vs.VideoNode:
    """An RGB clip whose frame n holds ``frames[n]`` (3, H, W) and the props ``props[n]``."""
    _, h, w = frames[0].shape
    blank = vs.core.std.BlankClip(width=w, height=h, format=fmt, length=len(frames), fpsnum=fps[0], fpsden=fps[1])

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        write_frame(out, frames[n])
        for key, value in (props[n] if props else {}).items():
            out.props[key] = value
        return out

    return vs.core.std.ModifyFrame(blank, blank, fill)
