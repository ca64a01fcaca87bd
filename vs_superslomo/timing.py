"""Exact rational timing of output frames: which source pair and which t each output frame uses.

Pure arithmetic on :class:`fractions.Fraction`, no VapourSynth and no torch, so every rule can be
tested alone. Output frame ``n`` sits at source position ``p = n / factor``; ``left = floor(p)`` and
``t = p - left``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Timing", "TimingError", "resolve_factor"]


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

    def pair_times(self, left: int, right: int | None = None) -> list[Fraction]:
        """Every t in (0, 1) at which some output frame falls between source frames ``left`` and ``right``
        (default ``left + 1``), measured from ``left`` (0) to ``right`` (1), ascending."""
        right = left + 1 if right is None else right
        if not 0 <= left < right <= self.num_input - 1:
            return []
        first = math.ceil(left * self.factor)
        stop = math.ceil(right * self.factor)
        span = right - left
        times = [n / self.factor - left for n in range(first, stop)]
        if span > 1:
            times = [t / span for t in times]
        return [t for t in times if t > 0]

    def select_offsets(self) -> tuple[int, list[int]]:
        """``(cycle, offsets)`` such that ``std.SelectEvery(cycle, offsets)`` maps output n to source ``left``.

        With factor = a/b and n = q·a + r, floor(n·b/a) = q·b + floor(r·b/a): one cycle of b source
        frames yields a output frames. Unlike interleaving a copies of the clip, the intermediate clip
        never grows to N·a frames, so large fps-mode numerators cannot overflow a frame count.
        """
        a, b = self.factor.numerator, self.factor.denominator
        return b, [r * b // a for r in range(a)]
