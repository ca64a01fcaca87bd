"""Splitting a job's output into chunks for several workers: pure arithmetic, no VapourSynth, no Ray.

Chunk edges are chosen on the source axis, at source frames, so that no source pair has output frames on
both sides of an edge: the pair's flow and frames are computed by one worker only. An edge goes at a scene
cut when one lies near the target length (the first output frame at or after the cut's right frame), else
at the target length, and is then carried to the first output frame at or after that source frame with
the job's exact rational timing. Each worker renders whole the filter graph's own frames, so the edges
choose only how the work is shared, never what a frame holds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from .timing import TimestampTiming, Timing

__all__ = [
    "Chunk",
    "chunk_target",
    "concat_durations_us",
    "first_output_at",
    "longest_first",
    "plan_chunks",
    "source_edges",
]


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start`` to ``end - 1`` of the job, the ``index``-th in output order."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        return f"chunk {self.index} (output frames {self.start}-{self.end - 1})"


def first_output_at(timing: Timing | TimestampTiming, source: int) -> int:
    """The first output frame that lies at or after source frame ``source`` starts (exact, rational)."""
    return max(0, math.ceil(timing.start(source) * timing.rate))


def source_edges(num_source: int, target: int, cuts: Iterable[int] = ()) -> list[int]:
    """Source frames at which chunks start after the first, about ``target`` source frames apart.

    ``cuts`` are the pairs (i, i + 1) that span a scene cut; an edge at i + 1 starts a chunk on the new
    scene. From each edge the next goes at the cut nearest ``target`` frames on, within half a target
    either way, else exactly ``target`` on; no chunk but a lone one is shorter than half a target.
    """
    if target < 1:
        raise ValueError(f"target must be at least one source frame, got {target}")
    scene_starts = sorted({c + 1 for c in cuts if 0 < c + 1 < num_source})
    edges: list[int] = []
    start = 0
    # Room for another whole chunk after this one: one more than 1.5 targets remain.
    while num_source - start > target + target // 2:
        low, high = start + max(1, target // 2), min(start + target + target // 2, num_source - max(1, target // 2))
        near = [c for c in scene_starts if low <= c <= high]
        start = min(near, key=lambda c: (abs(c - start - target), c)) if near else start + target
        edges.append(start)
    return edges


def plan_chunks(edges: Sequence[int], to_output: Callable[[int], int], num_output: int) -> list[Chunk]:
    """Chunks between the source ``edges`` carried to output frames by ``to_output``; edges that fall on
    the same output frame (source frames closer than the output's frame interval) make one chunk."""
    bounds = [0]
    for edge in edges:
        frame = to_output(edge)
        if bounds[-1] < frame < num_output:
            bounds.append(frame)
    bounds.append(num_output)
    return [Chunk(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds))] if num_output > 0 else []


def chunk_target(chunk_seconds: float, out_fps: Fraction, num_source: int, num_output: int, workers: int | None) -> int:
    """Source frames per chunk: ``chunk_seconds`` of output, but at least two chunks per worker on a short
    job (``workers`` None: no such limit), and at least one frame."""
    per_output = Fraction(num_source, max(1, num_output))  # source frames per output frame, on average
    target = math.floor(Fraction(chunk_seconds) * out_fps * per_output)
    if workers:
        target = min(target, math.ceil(num_source / (2 * workers)))
    return max(1, target)


def longest_first(chunks: Iterable[Chunk]) -> list[Chunk]:
    """The order to hand chunks out in (as av1an does): the longest first, so no long one starts last."""
    return sorted(chunks, key=lambda c: (-c.frames, c.index))


def concat_durations_us(chunks: Sequence[Chunk], fps: Fraction) -> list[int]:
    """Each chunk's duration in microseconds (ffmpeg's concat demuxer's unit) such that every running sum is
    the exact start time of the next chunk, rounded: the error never adds up over many chunks."""
    ends = [round(Fraction(c.end) / fps * 1_000_000) for c in chunks]
    return [b - a for a, b in itertools.pairwise([0, *ends])]
