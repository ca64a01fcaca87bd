"""Exact rational timing of output frames: which source pair and which t each output frame uses.

Pure arithmetic on :class:`fractions.Fraction`, no VapourSynth and no torch, so every rule can be
tested alone. Output frame ``n`` sits at source position ``p = n / factor``; ``left = floor(p)`` and
``t = p - left``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MAX_CYCLE", "MAX_FACTOR", "Timing", "TimingError", "resolve_factor"]

# Bounds that keep the work per call finite: 10^4 frames per source frame is far beyond any slow motion,
# and std.SelectEvery takes seconds for 10^5 offsets (one per numerator step) and minutes for 10^6.
MAX_FACTOR = 10_000
MAX_CYCLE = 100_000


class TimingError(ValueError):
    """A factor or frame rate that cannot be used."""


def _positive(name: str, value: int | None) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TimingError(f"{name} must be a positive integer, got {value!r}")
    return value


def resolve_factor(
    factor_num: int,
    factor_den: int,
    fps_num: int | None,
    fps_den: int | None,
    clip_fps: Fraction,
) -> Fraction:
    """The frame-count multiplier: ``factor_num/factor_den``, or target fps / clip fps in fps mode.

    Fps mode is on when ``fps_num`` is given (``fps_den`` defaults to 1). Raises :class:`TimingError`
    for zero or negative values, a factor below 1, or fps mode on a clip without a known rate.
    """
    if fps_num is not None or fps_den is not None:
        target = Fraction(_positive("fps_num", fps_num), _positive("fps_den", 1 if fps_den is None else fps_den))
        if clip_fps <= 0:
            raise TimingError(
                "fps mode needs a clip with a known frame rate, but clip.fps is 0 (variable); "
                "set one with core.std.AssumeFPS or use factor_num/factor_den"
            )
        factor = target / clip_fps
        what = f"fps {target} over the clip's {clip_fps} gives a factor of {factor}"
    else:
        factor = Fraction(_positive("factor_num", factor_num), _positive("factor_den", factor_den))
        what = f"factor_num/factor_den = {factor}"
    if factor < 1:
        raise TimingError(f"{what}, which is < 1; only factors >= 1 are supported (it adds frames, never drops them)")
    return factor


@dataclass(frozen=True)
class Timing:
    """Where each output frame of a clip of ``num_input`` frames sits, for a rational ``factor``."""

    num_input: int
    factor: Fraction

    def __post_init__(self) -> None:
        if self.num_input < 1:
            raise TimingError(f"the clip needs at least one frame, got {self.num_input}")
        if self.factor < 1:
            raise TimingError(f"factor must be >= 1, got {self.factor}")
        if self.factor > MAX_FACTOR:
            raise TimingError(
                f"factor {self.factor} is above the limit of {MAX_FACTOR} output frames per source frame; "
                "use a smaller factor (or run twice)"
            )
        if self.factor.numerator > MAX_CYCLE:
            raise TimingError(
                f"factor {self.factor} repeats only every {self.factor.numerator} output frames (limit {MAX_CYCLE}); "
                "give a simpler factor or target rate, or set the clip's rate to a simpler one with std.AssumeFPS"
            )

    @property
    def num_output(self) -> int:
        """ceil(N * factor)."""
        return math.ceil(self.num_input * self.factor)

    def position(self, n: int) -> tuple[int, Fraction]:
        """``(left, t)`` for output frame ``n``; ``t == 0`` means a copy of source frame ``left``.

        Positions past the last source frame are copies of it (``left = N - 1``, ``t = 0``).
        """
        if not 0 <= n < self.num_output:
            raise IndexError(f"output frame {n} out of range 0..{self.num_output - 1}")
        p = n / self.factor
        left = math.floor(p)
        if left >= self.num_input - 1:
            return self.num_input - 1, Fraction(0)
        return left, p - left

    def pair_slot(self, n: int, left: int | None = None) -> int:
        """The index of output frame ``n``'s t in :meth:`pair_times` of the pair starting at source frame
        ``left`` (default: the frame before ``n``; ``n`` must lie strictly after ``left``)."""
        before, t = self.position(n)
        left = before if left is None else left
        if n / self.factor <= left or (left == before and t == 0):
            raise ValueError(f"output frame {n} does not lie strictly after source frame {left}")
        return n - self._first_between(left)

    def _first_between(self, left: int) -> int:
        """The first output frame strictly after source frame ``left``."""
        return math.floor(left * self.factor) + 1

    def pair_count(self, left: int, right: int | None = None) -> int:
        """How many output frames fall strictly between source frames ``left`` and ``right`` (default
        ``left + 1``)."""
        right = left + 1 if right is None else right
        if not 0 <= left < right <= self.num_input - 1:
            return 0
        return math.ceil(right * self.factor) - self._first_between(left)

    def pair_times(
        self, left: int, right: int | None = None, start: int = 0, stop: int | None = None
    ) -> list[Fraction]:
        """Every t in (0, 1) at which some output frame falls between source frames ``left`` and ``right``
        (default ``left + 1``), measured from ``left`` (0) to ``right`` (1), ascending; ``start``/``stop``
        select a slice of them without building the rest (factors up to 10^4)."""
        right = left + 1 if right is None else right
        count = self.pair_count(left, right)
        first = self._first_between(left)
        times = [(first + i) / self.factor - left for i in range(*slice(start, stop).indices(count))]
        span = right - left
        return times if span == 1 else [t / span for t in times]

    def select_offsets(self) -> tuple[int, list[int]]:
        """``(cycle, offsets)`` such that ``std.SelectEvery(cycle, offsets)`` maps output n to source ``left``.

        With factor = a/b and n = q·a + r, floor(n·b/a) = q·b + floor(r·b/a): one cycle of b source
        frames yields a output frames. Unlike interleaving a copies of the clip, the intermediate clip
        never grows to N·a frames, so large fps-mode numerators cannot overflow a frame count.
        """
        a, b = self.factor.numerator, self.factor.denominator
        return b, [r * b // a for r in range(a)]
