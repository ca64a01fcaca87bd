"""How many source pairs the filter computes at once (``num_streams``), and on how many threads each.

VapourSynth calls one ``std.ModifyFrame`` selector one frame at a time, so the filter gets pairs computed side by
side only from several selector nodes (:mod:`.plugin`). On the CPU, each pair's libraries (torch, OpenCV, the ONNX
runtimes) then take their share of the cores: at 640x360 on 2 cores one pair took 143 ms on one thread and 110 ms on
two (214 ms of CPU time: half of the second core idle), and two at once on one thread each about 96 ms a pair.

Thread counts are process-wide in torch and OpenCV, so a filter with more than one stream sets them for the whole
process; with one stream nothing is changed. The count is fixed when the filter is made, never by VapourSynth's
threads: oneDNN's convolutions round differently with different thread counts, and frames must not depend on them.
"""

from __future__ import annotations

import threading

import cv2
import torch

__all__ = ["AUTO_STREAMS_PIXELS", "MAX_STREAMS", "auto_streams", "check_streams", "share_cores"]

MAX_STREAMS = 16
# Below this many pixels a frame (640x360 and up to just under 1280x720) runs two streams by default. Measured on
# a 2-core CPU, 2026-12-06, the command line at 2x: 640x360 8.6 s with one stream, 7.4 s with two (medians of
# three alternating runs); 1280x720 14.0-15.5 s with one, 15.1-15.9 s with two, where the full-size warps and
# blends of two pairs at once contend for the memory.
AUTO_STREAMS_PIXELS = 1280 * 720

_lock = threading.Lock()
_cores: list[int] = []  # torch's thread count before any filter changed it: the process's cores


def check_streams(num_streams: object) -> int | None:
    """``num_streams`` as given, checked: an int from 1 to :data:`MAX_STREAMS`, or None (:func:`auto_streams`)."""
    if num_streams is None:
        return None
    if isinstance(num_streams, bool) or not isinstance(num_streams, int) or not 1 <= num_streams <= MAX_STREAMS:
        raise ValueError(
            f"num_streams must be an int from 1 to {MAX_STREAMS} (pairs computed at once on the CPU) or None "
            f"(by the frame's size), got {num_streams!r}"
        )
    return num_streams


def _process_cores() -> int:
    with _lock:
        if not _cores:
            _cores.append(torch.get_num_threads())
        return _cores[0]


def auto_streams(height: int, width: int, device: torch.device) -> int:
    """``num_streams=None``'s choice: 1 on a GPU (one pair's frames fill it) and on one core; on the CPU 2 below
    :data:`AUTO_STREAMS_PIXELS`, else 1."""
    if device.type != "cpu" or _process_cores() < 2:
        return 1
    return 2 if height * width < AUTO_STREAMS_PIXELS else 1


def share_cores(streams: int) -> int:
    """Give each of ``streams`` pairs at once its share of the process's cores (torch's thread count when a filter
    first asked; at least one thread): set torch's and OpenCV's thread counts to it and return it. One stream
    changes nothing and returns torch's count as it is."""
    if streams == 1:
        return torch.get_num_threads()
    threads = max(1, _process_cores() // streams)
    with _lock:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    return threads
