"""Host memory: give the allocator's free memory back to the system when the resident set creeps, not more often.

Frames are allocated and freed on VapourSynth's worker threads, where glibc keeps freed memory in per-thread
arenas instead of returning it: the resident set then creeps up over a long clip although nothing leaks, and
``malloc_trim`` brings it back. But a trim also hands back the pages the next pair will ask for again: trimmed
after every pair, the bundled clip at 2× took 1.7 million page faults and 5.9 s of system time in a 20.9 s run,
without trimming 0.58 million, 3.0 s and 17.9 s (measured, 2026-12-06). So :class:`CreepTrim` trims only when the
resident set after a pair has passed its settled level by :data:`CREEP_MARGIN`: a steady working set is kept,
creep is cut back. No torch, no VapourSynth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping

__all__ = [
    "CREEP_MARGIN",
    "TUNABLES",
    "WARM_UP",
    "CreepTrim",
    "malloc_trim",
    "resident_bytes",
    "tuned_environment",
    "untuned_environment",
]

# Creep allowed above the settled level before a trim: at least this (the allocator's resident set wanders by
# several MiB between two samples, measured), and at least a quarter of what the first pairs added to it (at
# 640×360 the level after a pair wandered by up to 40 MiB over a 200 MiB working set, measured).
CREEP_MARGIN = 16 * 2**20
# Calls (pairs) whose resident set sets the first mark: the working set settles over the first pairs.
WARM_UP = 4
_STATM = "/proc/self/statm"


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where there is none (another C library, another system)."""
    import ctypes  # here, not with the module: the command line imports it before its exec (cli._tuned)
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


# glibc's allocator for frame-sized blocks, set when a process starts (GLIBC_TUNABLES; it cannot be changed once
# threads have allocated): one arena for all threads, blocks up to 32 MiB (a 1080p frame's planes in float32 are
# 26 MB) from the heap instead of mmap, and no automatic trim (CreepTrim bounds the resident set instead). No
# per-thread cache of small blocks: one held there splits the free frame-sized blocks around it, and the heap grew
# instead of reusing them (a 240-frame 640×360 clip at 2×, untrimmed: 2.7 GB resident with it, 1.6 without;
# docs/log.md, 2026-12-07).
TUNABLES = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
    ":glibc.malloc.tcache_count=0"
)
# The environment a user sets glibc's allocator through: where any is set, their choice stands.
_USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
# Set beside TUNABLES by tuned_environment: the settings are ours, not the user's, and go before any child starts.
_OURS = "VS_SUPERSLOMO_TUNED"


def tuned_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with :data:`TUNABLES`, for a process that handles frames to start with; None where the C library
    is not glibc or the user has set the allocator.

    Without them, a frame-sized block (12 MB at 1280×720) is mapped and unmapped on every allocation (glibc's
    adaptive threshold sends requests as large as the largest freed one to ``mmap``) and each VapourSynth thread
    grows and deletes heaps of its own arena. The engine on a worker thread at 1280×720 took 14,800 page faults and
    59 ms of system time a pair, 223 ms a pair in all; with them 510 faults, 16 ms and 185 ms. The command line at
    2×, three runs each alternating: 640×360 8.6-10.2 s against 9.8-11.6, 1280×720 16.7-18.6 against 18.0-21.3
    (measured 2026-12-06)."""
    if any(name in environ for name in _USER_SETTINGS) or not _glibc():
        return None
    return {**environ, "GLIBC_TUNABLES": TUNABLES, _OURS: "1"}


def untuned_environment(environ: MutableMapping[str, str]) -> bool:
    """Takes :func:`tuned_environment`'s settings back out of ``environ`` (the process has read them when it
    started), so that the programs it runs (ffmpeg, vspipe, the other tools of a race) start with the user's own
    environment. Returns whether they were there."""
    if environ.pop(_OURS, None) is None:
        return False
    environ.pop("GLIBC_TUNABLES", None)
    return True


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # no such name here (not glibc, not Unix)
        return False


def resident_bytes() -> int | None:
    """This process's resident set in bytes (Linux's /proc), or None where it cannot be read."""
    try:
        with open(_STATM, "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class CreepTrim:
    """Called after each pair: trims when the resident set has crept past its mark by :data:`CREEP_MARGIN` or a
    quarter of what the first pairs added, and every time where the resident set cannot be read. The mark is the
    highest resident set over the first :data:`WARM_UP` calls, raised to the level seen after a trim when that is
    higher (the working set itself grew: a larger frame, tiles), so a steady working set is never trimmed. Not
    thread-safe on its own: the engine calls it under its network lock."""

    def __init__(
        self,
        trim: Callable[[], object] | None = None,
        resident: Callable[[], int | None] = resident_bytes,
        margin: int = CREEP_MARGIN,
    ) -> None:
        self._trim = trim if trim is not None else malloc_trim()
        self._resident = resident
        self._margin = margin
        self._mark = 0
        self._first: int | None = None
        self._calls = 0
        self._rebase = False
        self.trims = 0

    def __call__(self) -> None:
        if self._trim is None:
            return
        now = self._resident()
        self._calls += 1
        if now is None:
            self._trim()
            self.trims += 1
        elif self._calls <= WARM_UP or self._rebase:
            self._first = now if self._first is None else self._first
            self._mark, self._rebase = max(self._mark, now), False
        elif now > self._mark + max(self._margin, (self._mark - (self._first or 0)) // 4):
            self._trim()
            self.trims += 1
            self._rebase = True
