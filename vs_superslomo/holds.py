"""Held frames: which source frames repeat the one before, and what each output position then shows.

Animation drawn "on twos" or "on threes", and footage converted to a higher rate by repeating frames, hold
one picture for several frames. Interpolating between a frame and its own copy keeps the stutter; with
held frames known, every position between two *distinct* frames A and B is interpolated between them at
t = (p − A) / (B − A), as if the copies had never been there.

Pure arithmetic on flags and :class:`fractions.Fraction` positions, plus the block difference that makes
the flags (numpy only): no VapourSynth or torch, so every rule is testable alone. Which frames are held
follows from a bounded neighbourhood of flags (:func:`flag_span`), so any request order gives the same
answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .luma import luma

__all__ = [
    "DEFAULT_BLOCK",
    "HoldRules",
    "Position",
    "flag_span",
    "frame_span",
    "locate",
    "outer_frames",
    "worst_block_difference",
]

DEFAULT_BLOCK = 16


@dataclass(frozen=True)
class HoldRules:
    """When a frame counts as held, and how long a run of held frames may be before it is a still shot.

    ``threshold``: the largest mean absolute luma difference (0..1) of any ``block``×``block`` block
    between a frame and the one before it for the frame to be a copy. Judged by the worst block, not the
    frame mean, so a small moving mouth on a still face is motion. 0.006 (about 1.5 8-bit codes) lies above
    every real copy measured (0.000-0.004: a clip that repeats every third frame, a CG intro on twos) and
    copies with Gaussian noise of one code (about 0.003), and below most of the slowest real motion seen,
    a flat animation easing to a stop (0.006-0.008; its last steps, 0.003-0.004, still read as held).
    At 0.01 that ease was taken for holds and its held-frame score fell 1 dB. ``max_run``: the longest run
    of copies that is interpolated (3: a drawing held for four frames); a longer run is a still shot and
    stays exactly still.
    """

    threshold: float = 0.006
    max_run: int = 3
    block: int = DEFAULT_BLOCK


def worst_block_difference(frame: np.ndarray, previous: np.ndarray, block: int = DEFAULT_BLOCK) -> float:
    """Largest mean |luma difference| over ``block``² blocks of two (3, H, W) RGB frames in [0, 1].

    Partial blocks at the right and bottom edges count as blocks of their own size.
    """
    diff = np.abs(luma(np.asarray(frame, np.float32)) - luma(np.asarray(previous, np.float32)))
    h, w = diff.shape
    rows, cols = math.ceil(h / block), math.ceil(w / block)
    # Block sums from an integral image; every block's size, edge blocks included, for the means.
    integral = np.pad(diff.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys = np.minimum(np.arange(rows + 1) * block, h)
    xs = np.minimum(np.arange(cols + 1) * block, w)
    corner = integral[np.ix_(ys, xs)]
    sums = corner[1:, 1:] - corner[:-1, 1:] - corner[1:, :-1] + corner[:-1, :-1]
    sizes = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    return float((sums / sizes).max())


def flag_span(max_run: int, outer: bool = False) -> tuple[int, int]:
    """Offsets (first, last) from ``floor(p)`` of the raw flags :func:`locate` may read; with ``outer``, those
    :func:`outer_frames` may read too (one more run and its test on each side)."""
    if outer:
        return -3 * max_run - 1, 3 * max_run + 2
    return -2 * max_run, 2 * max_run + 1


def frame_span(max_run: int, outer: bool = False) -> tuple[int, int]:
    """Offsets (first, last) from ``floor(p)`` of the frames an output position may use: A and B (a run of
    held frames from it on either side), with ``outer`` the distinct frames before A and after B too."""
    if outer:
        return -2 * max_run - 1, 2 * max_run + 2
    return -max_run, max_run + 1


@dataclass(frozen=True)
class Position:
    """What an output position shows: a copy of source frame ``a`` (``b`` None, ``t`` 0), or the frame
    interpolated between distinct frames ``a`` and ``b`` at ``t``; ``held``: the position's source frame
    (floor) is a held copy."""

    a: int
    b: int | None
    t: Fraction
    held: bool


def locate(p: Fraction, repeats: Callable[[int], bool], num_input: int, max_run: int) -> Position:
    """The distinct frames around source position ``p`` (0 <= p, clamped to the last frame).

    ``repeats(i)``: frame i repeats frame i − 1 (asked only for ``floor(p)`` + :func:`flag_span` offsets
    inside the clip). A frame is *held* when it repeats and its run of repeating frames is at most
    ``max_run`` long; held frames are never end points. A is the last distinct frame at or before p, B the
    next one after it. Copies of A: whole positions of distinct frames, positions after the last distinct
    frame, and positions inside a still shot (a longer run), which so stays exactly still.
    """
    last = num_input - 1
    left = min(math.floor(p), last)
    p = min(p, Fraction(last))
    runs = _Runs(repeats, last, max_run)
    is_held = runs.held(left)
    a = runs.distinct_at_or_before(left)
    if p == a:
        return Position(a, None, Fraction(0), is_held)
    b = runs.next_end(a, left + 1)
    if b is None:
        return Position(a, None, Fraction(0), is_held)
    return Position(a, b, (p - a) / (b - a), is_held)


def outer_frames(
    a: int, b: int, repeats: Callable[[int], bool], num_input: int, max_run: int
) -> tuple[int, int] | None:
    """The distinct frames before ``a`` and after ``b`` (a :class:`Position`'s A and B): quadratic motion's
    neighbours, the ends of the pairs next to (A, B). None when either pair does not exist: A is the first
    distinct frame or B the last, or a still shot lies between.

    ``repeats`` as for :func:`locate`, asked only within :func:`flag_span` (``outer=True``) of ``floor(p)``.
    """
    runs = _Runs(repeats, num_input - 1, max_run)
    before = runs.distinct_at_or_before(a - 1)
    if before < 0 or runs.next_end(before, before + 1) != a:
        return None
    after = runs.next_end(b, b + 1)
    return None if after is None else (before, after)


@dataclass(frozen=True)
class _Runs:
    """Held frames from the raw flags of a clip whose last frame is ``last``."""

    repeats: Callable[[int], bool]
    last: int
    max_run: int

    def raw(self, i: int) -> bool:
        return 0 < i <= self.last and self.repeats(i)

    def held(self, i: int) -> bool:
        """Frame i repeats the one before, in a run of repeats no longer than ``max_run``."""
        if not self.raw(i):
            return False
        start, stop = i, i
        while start - 1 >= i - self.max_run and self.raw(start - 1):
            start -= 1
        while stop + 1 <= i + self.max_run and self.raw(stop + 1):
            stop += 1
        return stop - start + 1 <= self.max_run

    def distinct_at_or_before(self, i: int) -> int:
        """The last frame at or before ``i`` that is not held (-1 before the clip)."""
        while i >= 0 and self.held(i):
            i -= 1
        return i

    def next_end(self, a: int, i: int) -> int | None:
        """The first frame from ``i`` on that is not held, the other end of a pair from distinct frame ``a``;
        None past the last frame, or when it repeats ``a`` in a still shot (a run too long to be held)."""
        while i <= self.last and self.held(i):
            i += 1
        if i > self.last or (i == a + 1 and self.raw(i)):
            return None
        return i
