"""What a render did, for the command line's summary line: where the networks ran, how many held frames
became motion and how many scene cuts were kept, counted from the output frames' props as they pass."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import vapoursynth as vs

from .backends import default_backend
from .engine import select_device
from .timing import TimestampTiming, Timing

__all__ = ["CUT_PROP", "HELD_PROP", "NEXT_PROP", "Tally", "count_cuts", "engine_text", "source_positions"]

# The filter's props (plugin.py): a copy of the nearer source frame inside a scene-cut pair; a held source
# position (dedup); the frame an interpolated frame moves towards (absent on copies).
CUT_PROP = "SuperSloMoCut"
HELD_PROP = "SuperSloMoHeld"
NEXT_PROP = "SuperSloMoNext"


def engine_text(device_index: int | None, fp16: bool | None, backend: str | None) -> str:
    """``"openvino on cpu, fp32"``: what the filter picks for these arguments (the engine's defaults: CUDA
    when there, fp16 on CUDA, the fastest installed backend)."""
    device = select_device(device_index)
    half = device.type == "cuda" if fp16 is None else fp16
    return f"{backend or default_backend(device)} on {device}, {'fp16' if half else 'fp32'}"


def source_positions(
    num_input: int, factor: Fraction, timestamps: list[Fraction] | None, fps: Fraction
) -> Callable[[int], Fraction]:
    """Output frame n's source position (left frame + t), as the filter places it for these arguments."""
    timing = (
        Timing(num_input, factor) if timestamps is None else TimestampTiming.from_timestamps(timestamps, num_input, fps)
    )

    def position(n: int) -> Fraction:
        left, t = timing.position(n)
        return left + t

    return position


def count_cuts(cut_frames: list[int], position: Callable[[int], Fraction]) -> int:
    """How many scene-cut pairs the output frames ``cut_frames`` (those with ``SuperSloMoCut``) lie in.

    A pair's frames are consecutive output frames; two consecutive ones belong to two pairs when a source
    frame lies strictly between their source positions (``position(n)``: left frame + t). With dedup a held
    frame there counts too: a cut pair that spans held frames at a factor that skips their positions may be
    counted more than once.
    """
    pairs = 0
    previous: int | None = None
    for n in sorted(cut_frames):
        if previous is None or n != previous + 1 or math.floor(position(previous)) + 1 < position(n):
            pairs += 1
        previous = n
    return pairs


@dataclass
class Tally:
    """Counts props of every frame of a clip it watches, from any VapourSynth thread."""

    held_replaced: int = 0  # held source positions that were interpolated (dedup)
    cut_frames: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def watch(self, clip: vs.VideoNode) -> vs.VideoNode:
        """``clip``, unchanged, counting each frame's props as it is rendered (once per frame number)."""
        seen: set[int] = set()

        def record(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
            props = f.props
            with self._lock:
                if n not in seen:
                    seen.add(n)
                    self.held_replaced += int(props.get(HELD_PROP, 0) == 1 and NEXT_PROP in props)
                    if props.get(CUT_PROP, 0) == 1:
                        self.cut_frames.append(n)
            return f

        return vs.core.std.ModifyFrame(clip, clip, record)

    def cuts(self, position: Callable[[int], Fraction]) -> int:
        return count_cuts(self.cut_frames, position)
