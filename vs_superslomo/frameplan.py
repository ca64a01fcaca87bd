"""The filter's per-frame plan: for output frame n, what it shows and what has to be computed for it.

Pure arithmetic over :mod:`.timing` and :mod:`.holds`, no VapourSynth or torch, so every decision is testable
alone. What the plan cannot know from arithmetic comes in as two callables asked lazily: ``repeats(i)`` (frame
i repeats frame i − 1, from the pictures; only with dedup) and ``is_cut(a, b)`` (a scene cut lies between
distinct frames a and b). Both are asked only for frames inside :attr:`FramePlan.window` around the output
frame's left source frame, so a caller requests exactly those frames and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from .holds import HoldRules, Position, flag_span, frame_span, locate, outer_frames
from .timing import TimestampTiming, Timing

__all__ = [
    "CUT_PROP",
    "HELD_PROP",
    "NEXT_PROP",
    "SOURCE_PROP",
    "T_PROP",
    "FramePlan",
    "OutputFrame",
    "Rates",
    "Window",
    "Work",
]

SOURCE_PROP = "SuperSloMoSource"
T_PROP = "SuperSloMoT"
NEXT_PROP = "SuperSloMoNext"
HELD_PROP = "SuperSloMoHeld"
CUT_PROP = "SuperSloMoCut"

Repeats = Callable[[int], bool]
IsCut = Callable[[int, int], bool]


def _distinct(_: int) -> bool:
    """Without dedup no frame counts as held."""
    return False


@dataclass(frozen=True)
class Window:
    """What one output frame may read, as offsets from its left source frame: ``frames`` (pictures),
    ``stats`` (the luma statistics of pair (i, i + 1), for the cut test) and ``flags`` (whether frame i
    repeats the one before)."""

    frames: range
    stats: range
    flags: range


@dataclass(frozen=True)
class Work:
    """What the engine computes for an output frame: chunk ``index`` of the frames between distinct frames
    ``a`` and ``b``, of which this frame is number ``offset``; ``outer`` (the frames before ``a`` and after
    ``b``) and ``spacing`` (how far they lie, in units of the pair) for quadratic motion, None for linear."""

    a: int
    b: int
    index: int
    offset: int
    outer: tuple[int, int] | None
    spacing: tuple[Fraction, Fraction] | None

    @property
    def key(self) -> tuple[int, int]:
        """The chunk's identity: every output frame with this key is served by one computation."""
        return self.a, self.index


@dataclass(frozen=True)
class OutputFrame:
    """What output frame ``n`` shows: source frame ``source`` as it is (``work`` None), or the frame the
    engine computes (``work``) between ``source`` and ``next`` at ``t``. ``held``: its position is a held
    frame (None without dedup); ``cut``: the first frame of the pair around it when a scene cut lies between
    the two, so that it copies the nearer one (None otherwise)."""

    n: int
    left: int
    source: int
    next: int | None
    t: Fraction
    held: bool | None
    cut: int | None
    work: Work | None

    def props(self) -> dict[str, int | float]:
        """The frame props the filter documents, for this frame."""
        props: dict[str, int | float] = {SOURCE_PROP: self.source, T_PROP: float(self.t)}
        if self.next is not None:
            props[NEXT_PROP] = self.next
        if self.held is not None:
            props[HELD_PROP] = int(self.held)
        if self.cut is not None:
            props[CUT_PROP] = self.cut
        return props


@dataclass(frozen=True)
class FramePlan:
    """The decisions for every output frame of ``timing``: held frames by ``rules`` when ``dedup``, scene
    cuts when ``sc`` (``stats`` when the cut test reads luma statistics too), quadratic motion's neighbours
    when ``quadratic``, and computed frames grouped in chunks of ``chunk`` per pair."""

    timing: Timing | TimestampTiming
    rules: HoldRules
    dedup: bool
    sc: bool
    stats: bool
    quadratic: bool
    chunk: int

    @property
    def reach(self) -> int:
        """How far (in source frames) the distinct frames around a position may lie: a run of held frames."""
        return self.rules.max_run if self.dedup else 0

    @property
    def window(self) -> Window:
        """Everything an output frame may read. With dedup, A and B lie up to ``reach`` frames away and which
        frames are held follows from flags up to twice that far; quadratic motion adds the distinct frames
        before A and after B, one more run away (:func:`.holds.frame_span`). The cut test of pair (a, b) reads
        the statistics of pair (b − 1, b): b − 1 within [0, reach], and with quadratic motion those of the
        neighbouring pairs too."""
        reach = self.reach
        first, last = frame_span(reach, self.quadratic)
        stats = range(0)
        if self.sc and self.stats:
            stats = range(-reach - 1, 2 * reach + 2) if self.quadratic else range(0, reach + 1)
        lowest, highest = flag_span(reach, self.quadratic)
        flags = range(lowest, highest + 1) if self.dedup else range(0)
        return Window(range(first, last + 1), stats, flags)

    def position(self, n: int, repeats: Repeats) -> Position:
        """The distinct frames around output frame n, and t between them."""
        left, t = self.timing.position(n)
        if self.dedup:
            return locate(left + t, repeats, self.timing.num_input, self.reach)
        return Position(left, left + 1 if t else None, t, False)

    def frame(self, n: int, repeats: Repeats, is_cut: IsCut) -> OutputFrame:
        """The plan for output frame ``n``."""
        left, t = self.timing.position(n)
        at = self.position(n, repeats)
        held = at.held if self.dedup else None
        if at.b is None:
            return OutputFrame(n, left, at.a, None, Fraction(0), held, None, None)
        a, b = at.a, at.b
        if self.sc and is_cut(a, b):  # the nearer frame around the position, as it is (the left one at 1/2)
            source = left if t <= Fraction(1, 2) else left + 1
            return OutputFrame(n, left, source, None, Fraction(0), held, a, None)
        index, offset = divmod(self.timing.pair_slot(n, a), self.chunk)
        outer, spacing = self.neighbours(a, b, repeats, is_cut)
        work = Work(a, b, index, offset, outer, spacing)
        return OutputFrame(n, left, a, b, self.timing.between(n, a, b), held, None, work)

    def neighbours(
        self, a: int, b: int, repeats: Repeats, is_cut: IsCut
    ) -> tuple[tuple[int, int] | None, tuple[Fraction, Fraction] | None]:
        """Quadratic motion's frames before ``a`` and after ``b`` and their spacing; none (linear motion)
        without quadratic motion, at an end of the clip or a still shot, or across a cut."""
        if not self.quadratic:
            return None, None
        outer = outer_frames(a, b, repeats if self.dedup else _distinct, self.timing.num_input, self.reach)
        if outer is None:
            return None, None
        before, after = outer
        if self.sc and (is_cut(before, a) or is_cut(b, after)):
            return None, None
        return outer, self.timing.spacing(before, a, b, after)

    def times(self, work: Work) -> list[Fraction]:
        """The t of every frame in ``work``'s chunk, in order: ``times(work)[work.offset]`` is the frame's own."""
        start = work.index * self.chunk
        return self.timing.pair_times(work.a, work.b, start=start, stop=start + self.chunk)


@dataclass(frozen=True)
class Rates:
    """The output clip's frame rate (0 when unknown) and how each output frame's duration follows from its
    source frame's when the rate is unknown (variable-rate clips in factor mode)."""

    fps: Fraction
    duration_scale: Fraction

    @classmethod
    def of(
        cls,
        timing: Timing | TimestampTiming,
        clip_fps: Fraction,
        slowmo: bool,
        fps_num: int | None,
        fps_den: int | None,
    ) -> Rates:
        if isinstance(timing, TimestampTiming):
            return cls(timing.fps, Fraction(1))
        if slowmo:
            return cls(clip_fps, Fraction(1))
        fps = Fraction(fps_num, fps_den or 1) if fps_num is not None else clip_fps * timing.factor
        return cls(fps, 1 / timing.factor)

    def duration(self, source: Mapping[str, object]) -> tuple[int, int] | None:
        """``(_DurationNum, _DurationDen)`` for an output frame whose source frame carries ``source``'s props;
        None when neither the rate nor the source's duration is known (the props stay as they are)."""
        if self.fps > 0:
            return self.fps.denominator, self.fps.numerator
        num, den = source.get("_DurationNum"), source.get("_DurationDen")
        if not isinstance(num, int) or not isinstance(den, int) or den <= 0:
            return None
        duration = Fraction(num, den) * self.duration_scale
        return duration.numerator, duration.denominator
