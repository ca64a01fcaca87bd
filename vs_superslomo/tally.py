"""What a render did, for the command line's summary line: where the networks ran, how many held frames
became motion and how many scene cuts were kept, counted from the output frames' props as they pass."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import vapoursynth as vs

from .backends import default_backend
from .engine import select_device
from .frameplan import CUT_PROP, HELD_PROP, NEXT_PROP

__all__ = ["Tally", "engine_text"]


def engine_text(device_index: int | None, fp16: bool | None, backend: str | None) -> str:
    """``"openvino on cpu, fp32"``: what the filter picks for these arguments (the engine's defaults: CUDA
    when there, fp16 on CUDA, the fastest installed backend)."""
    device = select_device(device_index)
    half = device.type == "cuda" if fp16 is None else fp16
    return f"{backend or default_backend(device)} on {device}, {'fp16' if half else 'fp32'}"


@dataclass
class Tally:
    """Counts props of every frame of a clip it watches, from any VapourSynth thread."""

    held_replaced: int = 0  # held source positions that were interpolated (dedup)
    cut_pairs: set[int] = field(default_factory=set)  # the first frame of each pair a scene cut was kept in
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
                    if CUT_PROP in props:
                        self.cut_pairs.add(int(props[CUT_PROP]))
            return f

        return vs.core.std.ModifyFrame(clip, clip, record)

    @property
    def cuts(self) -> int:
        return len(self.cut_pairs)
