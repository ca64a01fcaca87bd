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

__all__ = ["DEFAULT_BLOCK", "HoldRules", "Position", "flag_span", "locate", "worst_block_difference"]

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


def flag_span(max_run: int) -> tuple[int, int]:
    """Offsets (first, last) from ``floor(p)`` of the raw flags :func:`locate` may read."""
    return -2 * max_run, 2 * max_run + 1


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

    def raw(i: int) -> bool:
        return 0 < i <= last and repeats(i)

    def held(i: int) -> bool:
        if not raw(i):
            return False
        start, stop = i, i
        while start - 1 >= i - max_run and raw(start - 1):
            start -= 1
        while stop + 1 <= i + max_run and raw(stop + 1):
            stop += 1
        return stop - start + 1 <= max_run

    is_held = held(left)
    a = left
    while held(a):
        a -= 1
    if p == a:
        return Position(a, None, Fraction(0), is_held)
    b = left + 1
    while b <= last and held(b):
        b += 1
    # The tail after the last distinct frame repeats it; so does a still shot (B repeats A, in a run too
    # long to be held), exactly.
    if b > last or (b == a + 1 and raw(b)):
        return Position(a, None, Fraction(0), is_held)
    return Position(a, b, (p - a) / (b - a), is_held)
