"""Exact rational timing of output frames: which source pair and which t each output frame uses.

Pure arithmetic on :class:`fractions.Fraction`, no VapourSynth and no torch, so every rule can be
tested alone. Source frames and output frames lie on one axis: source frame i starts at ``start(i)``,
output frame n at ``n / rate``; ``left`` is the last source frame starting at or before it and ``t`` the
fraction of the way to the next one. :class:`Timing` (a factor) puts source frame i at i, so output n
sits at ``p = n / factor``, ``left = floor(p)``, ``t = p - left``; :class:`TimestampTiming` (a target
rate over per-frame timestamps) puts it at its start time in seconds.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

from .errors import TimingError

__all__ = [
    "MAX_CYCLE",
    "MAX_FACTOR",
    "TimestampTiming",
    "Timing",
    "TimingError",
    "fits_rate",
    "resolve_factor",
    "target_rate",
]

# Bounds that keep the work per call finite: 10^4 frames per source frame is far beyond any slow motion,
# and std.SelectEvery takes seconds for 10^5 offsets (one per numerator step) and minutes for 10^6.
MAX_FACTOR = 10_000
MAX_CYCLE = 100_000


def _positive(name: str, value: int | None) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TimingError(f"{name} must be a positive integer, got {value!r}")
    return value


def target_rate(fps_num: int | None, fps_den: int | None) -> Fraction:
    """``fps_num/fps_den`` (``fps_den`` defaults to 1); :class:`TimingError` unless both are positive integers."""
    return Fraction(_positive("fps_num", fps_num), _positive("fps_den", 1 if fps_den is None else fps_den))


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
        target = target_rate(fps_num, fps_den)
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


class _Placement:
    """What every timing shares, given where source frames start (:meth:`start`), where the clip ends
    (:attr:`end`) and how many output frames fall in one unit of that axis (:attr:`rate`)."""

    num_input: int

    @property
    def rate(self) -> Fraction:
        raise NotImplementedError

    @property
    def end(self) -> Fraction:
        raise NotImplementedError

    def start(self, i: int) -> Fraction:
        raise NotImplementedError

    def _left_of(self, y: Fraction) -> int:
        """The last source frame starting at or before ``y`` (``start(0) <= y < start(N - 1)``)."""
        raise NotImplementedError

    @property
    def num_output(self) -> int:
        """ceil(end * rate): every output frame that starts before the clip ends."""
        return math.ceil(self.end * self.rate)

    def position(self, n: int) -> tuple[int, Fraction]:
        """``(left, t)`` for output frame ``n``; ``t == 0`` means a copy of source frame ``left``.

        Positions at or past the last source frame's start are copies of it (``left = N - 1``, ``t = 0``).
        """
        if not 0 <= n < self.num_output:
            raise IndexError(f"output frame {n} out of range 0..{self.num_output - 1}")
        y = n / self.rate
        if y >= self.start(self.num_input - 1):
            return self.num_input - 1, Fraction(0)
        if y < self.start(0):  # before the first frame (timestamps that start late): a copy of it
            return 0, Fraction(0)
        left = self._left_of(y)
        return left, self.between(n, left, left + 1)

    def between(self, n: int, left: int, right: int) -> Fraction:
        """How far output frame ``n`` lies from source frame ``left`` (0) towards ``right`` (1)."""
        return (n / self.rate - self.start(left)) / (self.start(right) - self.start(left))

    def spacing(self, before: int, a: int, b: int, after: int) -> tuple[Fraction, Fraction]:
        """How far frame ``before`` lies before ``a`` and ``after`` after ``b``, in units of the pair (a, b):
        quadratic motion's (τ0, τ1); (1, 1) for consecutive frames at a constant rate."""
        interval = self.start(b) - self.start(a)
        return (self.start(a) - self.start(before)) / interval, (self.start(after) - self.start(b)) / interval

    def pair_slot(self, n: int, left: int | None = None) -> int:
        """The index of output frame ``n``'s t in :meth:`pair_times` of the pair starting at source frame
        ``left`` (default: the frame before ``n``; ``n`` must lie strictly after ``left``)."""
        before, t = self.position(n)
        left = before if left is None else left
        if n / self.rate <= self.start(left) or (left == before and t == 0):
            raise ValueError(f"output frame {n} does not lie strictly after source frame {left}")
        return n - self._first_between(left)

    def _first_between(self, left: int) -> int:
        """The first output frame strictly after source frame ``left``."""
        return max(0, math.floor(self.start(left) * self.rate) + 1)

    def pair_count(self, left: int, right: int | None = None) -> int:
        """How many output frames fall strictly between source frames ``left`` and ``right`` (default
        ``left + 1``)."""
        right = left + 1 if right is None else right
        if not 0 <= left < right <= self.num_input - 1:
            return 0
        return max(0, math.ceil(self.start(right) * self.rate) - self._first_between(left))

    def pair_times(
        self, left: int, right: int | None = None, start: int = 0, stop: int | None = None
    ) -> list[Fraction]:
        """Every t in (0, 1) at which some output frame falls between source frames ``left`` and ``right``
        (default ``left + 1``), measured from ``left`` (0) to ``right`` (1), ascending; ``start``/``stop``
        select a slice of them without building the rest (factors up to 10^4)."""
        right = left + 1 if right is None else right
        first = self._first_between(left)
        indices = range(*slice(start, stop).indices(self.pair_count(left, right)))
        return [self.between(first + i, left, right) for i in indices]


@dataclass(frozen=True)
class Timing(_Placement):
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
    def rate(self) -> Fraction:
        return self.factor

    @property
    def end(self) -> Fraction:
        return Fraction(self.num_input)

    def start(self, i: int) -> Fraction:
        return Fraction(i)

    def _left_of(self, y: Fraction) -> int:
        return math.floor(y)

    def select_offsets(self) -> tuple[int, list[int]]:
        """``(cycle, offsets)`` such that ``std.SelectEvery(cycle, offsets)`` maps output n to source ``left``.

        With factor = a/b and n = q·a + r, floor(n·b/a) = q·b + floor(r·b/a): one cycle of b source
        frames yields a output frames. Unlike interleaving a copies of the clip, the intermediate clip
        never grows to N·a frames, so large fps-mode numerators cannot overflow a frame count.
        """
        a, b = self.factor.numerator, self.factor.denominator
        return b, [r * b // a for r in range(a)]


# Float timestamps become the nearest fraction with a denominator up to this: 0.48 is 12/25, and times
# counted in 1/90000 s or 1001/30000 s steps come back exact.
_FLOAT_DENOMINATOR = 10**6


def _seconds(value: object, index: int) -> Fraction:
    if isinstance(value, float) and math.isfinite(value):
        return Fraction(value).limit_denominator(_FLOAT_DENOMINATOR)
    if isinstance(value, Rational) and not isinstance(value, bool):
        return Fraction(value)
    raise TimingError(f"timestamps[{index}] must be a number of seconds (a Fraction or a float), got {value!r}")


@dataclass(frozen=True)
class TimestampTiming(_Placement):
    """Constant-rate output at ``fps`` over source frames with their own start times in seconds: output
    frame n sits at n / fps, between the source frames around that time; before the first frame's start
    it is a copy of the first frame.

    ``starts`` strictly increase; ``stop`` is the clip's end (the last frame's start plus its duration),
    after time 0.
    """

    starts: tuple[Fraction, ...]
    stop: Fraction
    fps: Fraction

    def __post_init__(self) -> None:
        if not self.starts or self.stop <= 0:
            raise TimingError("the clip needs at least one frame, and its end after time 0")
        if any(b <= a for a, b in itertools.pairwise(self.starts)) or self.stop <= self.starts[-1]:
            raise TimingError("starts must strictly increase and end before stop")
        if self.fps <= 0:
            raise TimingError(f"fps must be positive, got {self.fps}")
        # The factor path's bound, on average over the clip: an end time far past the last frame (a typo, or
        # seconds given as milliseconds) would otherwise ask for 10^9 frames.
        if self.num_output > MAX_FACTOR * len(self.starts):
            raise TimingError(
                f"{self.num_output} output frames for {len(self.starts)} source frames is above the limit of "
                f"{MAX_FACTOR} per source frame; check that the timestamps are in seconds and the end time is right"
            )

    @classmethod
    def from_timestamps(cls, timestamps: Sequence[object], num_input: int, fps: Fraction) -> TimestampTiming:
        """From each source frame's start time in seconds (Fractions, ints or floats), optionally followed by
        the clip's end; without it the last frame lasts as long as the one before it (1 / fps for a single
        frame). Raises :class:`TimingError` with the fix."""
        if isinstance(timestamps, (str, bytes)) or not isinstance(timestamps, Sequence):
            raise TimingError(f"timestamps must be a sequence of seconds, got {type(timestamps).__name__}")
        if num_input < 1:
            raise TimingError(f"the clip needs at least one frame, got {num_input}")
        if len(timestamps) not in (num_input, num_input + 1):
            raise TimingError(
                f"timestamps has {len(timestamps)} values for a clip of {num_input} frames; give one start time "
                f"per frame ({num_input}), optionally followed by the clip's end time ({num_input + 1})"
            )
        times = [_seconds(value, i) for i, value in enumerate(timestamps)]
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                raise TimingError(
                    f"timestamps must strictly increase, but timestamps[{i}] = {float(times[i]):g} s is not after "
                    f"timestamps[{i - 1}] = {float(times[i - 1]):g} s; give the frames' times in display order"
                )
        if len(times) == num_input:
            last = times[-1] - times[-2] if num_input > 1 else 1 / fps
            times.append(times[-1] + last)
        if times[-1] <= 0:
            raise TimingError(f"the clip ends at {float(times[-1]):g} s, before time 0, where output frame 0 sits")
        return cls(tuple(times[:-1]), times[-1], fps)

    @property
    def num_input(self) -> int:  # type: ignore[override]  # _Placement's field, computed here
        return len(self.starts)

    @property
    def rate(self) -> Fraction:
        return self.fps

    @property
    def end(self) -> Fraction:
        return self.stop

    def start(self, i: int) -> Fraction:
        return self.starts[i]

    def _left_of(self, y: Fraction) -> int:
        return bisect.bisect_right(self.starts, y) - 1


def fits_rate(starts: Sequence[Fraction], fps: Fraction, tolerance: Fraction) -> bool:
    """Whether every start lies within ``tolerance`` of ``starts[0] + i / fps``: a constant rate ``fps``, up to
    a container's rounding of timestamps (e.g. to whole milliseconds)."""
    return fps > 0 and all(abs(start - starts[0] - i / fps) <= tolerance for i, start in enumerate(starts))
