"""Where the time goes: seconds per named stage and per thread, collected only while :func:`collecting` runs.

The engine, the filter's glue and the command line mark their stages with :func:`timed`; outside
:func:`collecting` a mark costs one global lookup. A stage inside another counts once: the outer stage's time
is its own, without the stages inside it, so the rows add up to the threads' busy time. VapourSynth's own
filters (the decoder, the colour conversions) are timed by VapourSynth itself and read from the graph
(:meth:`StageTimes.watch`). No torch here; VapourSynth only through the nodes it is given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = ["StageTimes", "active", "collecting", "process_age", "timed"]


@dataclass
class _Row:
    seconds: float = 0.0
    calls: int = 0
    threads: dict[str, float] = field(default_factory=dict)


class StageTimes:
    """Seconds per stage and thread, from :func:`timed` marks and VapourSynth's node timings."""

    def __init__(self, since_start: bool = False) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._local = threading.local()
        self._nodes: list[vs.VideoNode] = []
        self.started = time.perf_counter()
        # With ``since_start``, the process's life before collecting (interpreter, imports) counts too.
        self.before = process_age() if since_start else None
        self.first_frame: float | None = None  # seconds from the start to the first output frame

    def add(self, stage: str, seconds: float, thread: str) -> None:
        with self._lock:
            row = self._rows.setdefault(stage, _Row())
            row.seconds += seconds
            row.calls += 1
            row.threads[thread] = row.threads.get(thread, 0.0) + seconds

    def mark_first_frame(self) -> None:
        if self.first_frame is None:
            self.first_frame = time.perf_counter() - self.started

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        stack: list[float] = self._local.__dict__.setdefault("inner", [])  # per thread: time of stages inside
        stack.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            inner = stack.pop()
            if stack:
                stack[-1] += spent
            self.add(stage, spent - inner, _thread_name())

    def watch(self, node: vs.VideoNode) -> None:
        """Read the timings of ``node``'s graph when the table is made (VapourSynth's timings must be on:
        :func:`collecting` turns them on)."""
        self._nodes.append(node)

    def _node_rows(self) -> dict[str, float]:
        """Seconds per VapourSynth filter name over the watched graphs (each node once)."""
        seconds: dict[str, float] = {}
        # Each visit wraps a node in a new Python object, equal to no other; a node's name, size and time to
        # the nanosecond tell it apart from another (two nodes alike in all of these would count once).
        seen: set[tuple[object, ...]] = set()
        todo: list[Any] = list(self._nodes)
        while todo:
            node = todo.pop()
            key = (node.node_name, node.timings, node.num_frames, node.width, node.height)
            if key in seen:
                continue
            seen.add(key)
            todo.extend(node.dependencies)
            if node.node_name in _PYTHON_FILTERS:
                continue
            name = f"VapourSynth {node.node_name}"
            seconds[name] = seconds.get(name, 0.0) + node.timings / 1e9
        return seconds

    def rows(self) -> list[tuple[str, float, int, dict[str, float]]]:
        """(stage, seconds, calls, seconds per thread), the most expensive first; VapourSynth's filters with
        calls 0 (their own timings count no calls)."""
        with self._lock:
            rows = [(name, r.seconds, r.calls, dict(r.threads)) for name, r in self._rows.items()]
        rows += [(name, s, 0, {}) for name, s in self._node_rows().items() if s > 0]
        return sorted(rows, key=lambda row: -row[1])

    def table(self) -> str:
        wall = time.perf_counter() - self.started
        before = 0.0 if self.before is None else self.before
        span = f"{wall:.2f} s" if self.before is None else f"{before + wall:.2f} s since the process started"
        if self.before is not None:
            span += f", {before:.2f} s of it before the job"
        if self.first_frame is not None:
            span += f", the first frame after {before + self.first_frame:.2f} s"
        lines = [
            f"where the time went ({span}; seconds summed over threads, each stage without the stages inside it):",
            f"  {'stage':<52} {'seconds':>8} {'calls':>6} {'ms/call':>8}  threads",
        ]
        for name, seconds, calls, threads in self.rows():
            if not calls and seconds < 0.005:
                continue  # VapourSynth's filters that did next to nothing (trims, splices, props)
            per_call = f"{1000 * seconds / calls:8.1f}" if calls else f"{'':8}"
            spread = ", ".join(f"{t} {s:.2f}" for t, s in sorted(threads.items(), key=lambda kv: -kv[1]))
            lines.append(f"  {name:<52} {seconds:8.2f} {calls or '':>6} {per_call}  {spread}")
        return "\n".join(lines)


def _thread_name() -> str:
    """The thread's name; VapourSynth's threads, unnamed to Python ("Dummy-N"), as "vs-N"."""
    name = threading.current_thread().name
    return name.replace("Dummy-", "vs-") if name.startswith("Dummy-") else name


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc), None where that cannot be read."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, after the name
            return float(uptime.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# Filters that run Python callbacks (the filter's own): their time is the marked stages', counted there.
_PYTHON_FILTERS = frozenset({"ModifyFrame", "FrameEval"})
_active: StageTimes | None = None


@contextlib.contextmanager
def collecting(since_start: bool = False) -> Iterator[StageTimes]:
    """Collect every :func:`timed` mark (and VapourSynth's filter timings) until the block ends; with
    ``since_start``, the table counts from the process's start (a command line's whole run)."""
    global _active
    import vapoursynth as vs

    previous, timings = _active, vs.core.timings.enabled
    _active = times = StageTimes(since_start)
    vs.core.timings.enabled = True
    try:
        yield times
    finally:
        _active = previous
        vs.core.timings.enabled = timings


def timed(stage: str) -> contextlib.AbstractContextManager[None]:
    """Time a stage in the collection running now; nothing when none is."""
    active = _active
    return contextlib.nullcontext() if active is None else active.timed(stage)


def active() -> StageTimes | None:
    """The collection running now, if any (to :meth:`StageTimes.watch` a graph or mark the first frame)."""
    return _active
