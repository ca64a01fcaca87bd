"""The per-frame plan on its own: no VapourSynth, no torch, every factor, cadence of held frames and set of cuts."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from vs_superslomo.frameplan import CUT_PROP, HELD_PROP, NEXT_PROP, SOURCE_PROP, T_PROP, FramePlan, Rates
from vs_superslomo.holds import HoldRules
from vs_superslomo.timing import TimestampTiming, Timing


@st.composite
def plans(draw: st.DrawFn) -> tuple[FramePlan, list[bool], set[int]]:
    """A plan, the raw repeat flags of its clip and the frames after which a cut lies."""
    num_input = draw(st.integers(1, 14))
    factor = Fraction(draw(st.integers(1, 9)), draw(st.integers(1, 3)))
    dedup, quadratic, sc = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    rules = HoldRules(max_run=draw(st.integers(1, 3)))
    plan = FramePlan(
        Timing(num_input, max(factor, Fraction(1))), rules, dedup, sc, True, quadratic, draw(st.integers(1, 4))
    )
    flags = [False, *draw(st.lists(st.booleans(), min_size=num_input - 1, max_size=num_input - 1))]
    cuts = set(draw(st.lists(st.integers(0, max(0, num_input - 2)), max_size=3)))
    return plan, flags, cuts


@given(plans())
def test_every_frame_reads_inside_the_window_and_its_chunk_holds_its_t(
    case: tuple[FramePlan, list[bool], set[int]],
) -> None:
    plan, flags, cuts = case
    window = plan.window
    served: dict[tuple[int, int], tuple[object, ...]] = {}
    for n in range(plan.timing.num_output):
        left = plan.timing.position(n)[0]

        def repeats(i: int, left: int = left, n: int = n) -> bool:
            assert i - left in window.flags, (n, i)
            return flags[i]

        def is_cut(a: int, b: int, left: int = left, n: int = n) -> bool:
            assert a < b and a - left in window.frames and b - left in window.frames, (n, a, b)
            assert b - 1 - left in window.stats or not plan.sc  # the cut test's statistics are requested
            return any(a <= c < b for c in cuts)

        frame = plan.frame(n, repeats, is_cut)
        assert frame.source - left in window.frames
        work = frame.work
        if work is None:
            assert frame.next is None and frame.t == 0
            continue
        assert (frame.source, frame.next) == (work.a, work.b) and 0 < frame.t < 1
        assert not any(work.a <= c < work.b for c in cuts) or not plan.sc
        assert plan.times(work)[work.offset] == frame.t
        for i in work.outer or ():
            assert i - left in window.frames
        if work.outer is not None:
            assert plan.quadratic and work.outer[0] < work.a and work.b < work.outer[1]
        # Every frame of one chunk agrees on what the chunk is: it is computed once, by whichever asks first.
        assert served.setdefault(work.key, (work.b, work.outer, work.spacing)) == (work.b, work.outer, work.spacing)


@given(st.integers(2, 12), st.integers(2, 8))
def test_without_dedup_or_cuts_whole_positions_are_copies_and_the_rest_computed(num_input: int, k: int) -> None:
    plan = FramePlan(Timing(num_input, Fraction(k)), HoldRules(), False, False, True, False, 64)
    for n in range(plan.timing.num_output):
        frame = plan.frame(n, lambda i: False, lambda a, b: True)  # cuts are not asked for with sc off
        whole = n % k == 0 or n // k >= num_input - 1
        assert (frame.work is None) == whole
        assert frame.source == min(n // k, num_input - 1) and frame.held is None and frame.cut is None


def test_a_cut_copies_the_nearer_frame_and_says_so() -> None:
    plan = FramePlan(Timing(3, Fraction(4)), HoldRules(), False, True, True, True, 8)
    frames = [plan.frame(n, lambda i: False, lambda a, b: a == 0) for n in range(12)]
    assert [f.source for f in frames[:5]] == [0, 0, 0, 1, 1]  # t = 1/2 keeps the left frame
    assert [f.props().get(CUT_PROP) for f in frames[:5]] == [None, 0, 0, 0, None]  # the cut pair's first frame
    # Pair (1, 2) is interpolated, and linearly: its neighbour before lies across the cut.
    assert frames[5].work is not None and frames[5].work.outer is None


def test_held_frames_move_between_the_distinct_frames_around_them() -> None:
    # Frames 0 1 1 2 (frame 2 holds frame 1): at 2x, positions 1.5 and 2 lie between distinct frames 1 and 3.
    flags = [False, False, True, False]
    plan = FramePlan(Timing(4, Fraction(2)), HoldRules(), True, False, True, False, 8)
    frame = plan.frame(4, flags.__getitem__, lambda a, b: False)
    assert (frame.source, frame.next, frame.t, frame.held) == (1, 3, Fraction(1, 2), True)
    assert frame.props() == {SOURCE_PROP: 1, T_PROP: 0.5, NEXT_PROP: 3, HELD_PROP: 1}


def test_rates_and_durations() -> None:
    timing = Timing(4, Fraction(5, 2))
    assert Rates.of(timing, Fraction(24000, 1001), False, None, None).fps == Fraction(60000, 1001)
    assert Rates.of(timing, Fraction(25), True, None, None).fps == 25
    variable = Rates.of(timing, Fraction(0), False, None, None)
    assert variable.duration({"_DurationNum": 1, "_DurationDen": 10}) == (1, 25)
    assert variable.duration({}) is None
    assert Rates.of(timing, Fraction(0), False, 50, None).duration({}) == (1, 50)
    stamps = TimestampTiming.from_timestamps([0, Fraction(1, 10), Fraction(3, 10)], 3, Fraction(30))
    assert Rates.of(stamps, Fraction(0), False, 30, 1).duration({"_DurationNum": 1, "_DurationDen": 5}) == (1, 30)


def test_the_plan_imports_without_vapoursynth_or_torch() -> None:
    code = (
        "import sys; sys.modules['vapoursynth'] = None; sys.modules['torch'] = None\nimport vs_superslomo.frameplan\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
