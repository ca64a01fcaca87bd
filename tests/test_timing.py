"""Timing rules, property-based: length, positions, pair times and the SelectEvery mapping; per-frame timestamps."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vs_superslomo.timing import (
    MAX_CYCLE,
    MAX_FACTOR,
    TimestampTiming,
    Timing,
    TimingError,
    fits_rate,
    resolve_factor,
)

factors = st.builds(Fraction, st.integers(1, 40), st.integers(1, 12)).filter(lambda f: f >= 1)
lengths = st.integers(1, 60)


@given(lengths, factors)
def test_output_length_is_ceil_n_times_factor(n: int, factor: Fraction) -> None:
    assert Timing(n, factor).num_output == math.ceil(n * factor)


@given(lengths, factors)
def test_positions_follow_the_rules(n: int, factor: Fraction) -> None:
    timing = Timing(n, factor)
    for out in range(timing.num_output):
        left, t = timing.position(out)
        p = Fraction(out) / factor
        if p >= n - 1:
            assert (left, t) == (n - 1, Fraction(0))
        else:
            assert left == math.floor(p) and t == p - left and 0 <= t < 1


@given(lengths, factors)
def test_pair_times_are_exactly_the_interpolated_outputs(n: int, factor: Fraction) -> None:
    timing = Timing(n, factor)
    wanted: dict[int, list[Fraction]] = {}
    for out in range(timing.num_output):
        left, t = timing.position(out)
        if t:
            wanted.setdefault(left, []).append(t)
    for left in range(-1, n + 1):
        assert timing.pair_times(left) == wanted.get(left, [])


@given(lengths, factors)
def test_select_every_maps_output_to_left_source(n: int, factor: Fraction) -> None:
    timing = Timing(n, factor)
    cycle, offsets = timing.select_offsets()
    # std.SelectEvery's own length rule: whole cycles, then the offsets that exist in the last part.
    count = (n // cycle) * len(offsets) + sum(1 for o in offsets if o < n % cycle)
    assert count == timing.num_output
    for out in range(timing.num_output):
        source = (out // len(offsets)) * cycle + offsets[out % len(offsets)]
        assert source == min(math.floor(out / factor), n - 1) == timing.position(out)[0]


def test_fps_mode_factor() -> None:
    assert resolve_factor(2, 1, 60000, 1001, Fraction(24000, 1001)) == Fraction(5, 2)
    assert resolve_factor(2, 1, 60, None, Fraction(25)) == Fraction(12, 5)
    assert resolve_factor(5, 2, None, None, Fraction(0)) == Fraction(5, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, None, None), "factor_num must be a positive integer"),
        ((-2, 1, None, None), "factor_num must be a positive integer"),
        ((2, 0, None, None), "factor_den must be a positive integer"),
        ((1, 2, None, None), "= 1/2, which is < 1"),
        ((True, 1, None, None), "factor_num must be a positive integer"),
        ((2, 1, 0, 1, Fraction(25)), "fps_num must be a positive integer"),
        ((2, 1, 60, -1, Fraction(25)), "fps_den must be a positive integer"),
        ((2, 1, 24, 1, Fraction(25)), "gives a factor of 24/25, which is < 1"),
        ((2, 1, 60, 1, Fraction(0)), "needs a clip with a known frame rate"),
    ],
)
def test_bad_factors_raise(args: tuple[Any, ...], message: str) -> None:  # bad values on purpose
    full = (*args, Fraction(25)) if len(args) == 4 else args
    with pytest.raises(TimingError, match=message):
        resolve_factor(*full)


def test_timing_rejects_empty_clip_and_small_factor() -> None:
    with pytest.raises(TimingError):
        Timing(0, Fraction(2))
    with pytest.raises(TimingError):
        Timing(3, Fraction(1, 2))
    with pytest.raises(IndexError):
        Timing(3, Fraction(2)).position(6)


@given(lengths, factors, st.integers(0, 40), st.integers(0, 40))
def test_pair_slices_and_slots_without_building_the_whole_pair(n: int, factor: Fraction, a: int, b: int) -> None:
    timing = Timing(n, factor)
    for left in range(n - 1):
        times = timing.pair_times(left)
        assert timing.pair_count(left) == len(times) and timing.pair_times(left, start=a, stop=b) == times[a:b]
    for out in range(timing.num_output):
        left, t = timing.position(out)
        if t:
            assert timing.pair_times(left)[timing.pair_slot(out)] == t


@pytest.mark.parametrize("factor", [Fraction(MAX_FACTOR + 1), Fraction(10**6), Fraction(10**9), Fraction(10**18, 3)])
def test_factors_above_the_bound_are_refused_at_once(factor: Fraction) -> None:
    with pytest.raises(TimingError, match=f"above the limit of {MAX_FACTOR} output frames per source frame"):
        Timing(2, factor)
    assert Timing(2, Fraction(MAX_FACTOR)).num_output == 2 * MAX_FACTOR


def test_factors_that_repeat_too_rarely_are_refused_at_once() -> None:
    # e.g. a target rate over an unusual clip rate: a factor near 1 whose reduced numerator is huge.
    factor = Fraction(MAX_CYCLE + 3, MAX_CYCLE)
    with pytest.raises(TimingError, match=f"repeats only every {MAX_CYCLE + 3} output frames"):
        Timing(2, factor)
    cycle, offsets = Timing(2, Fraction(MAX_CYCLE - 1, MAX_CYCLE - 2)).select_offsets()
    assert len(offsets) == MAX_CYCLE - 1 and cycle == MAX_CYCLE - 2


# --- per-frame timestamps -----------------------------------------------------------------------------

durations = st.lists(
    st.builds(Fraction, st.integers(1, 9), st.sampled_from([25, 30, 50, 1000])), min_size=1, max_size=30
)
rates = st.builds(Fraction, st.integers(1, 120), st.integers(1, 3))


def oracle(starts: list[Fraction], end: Fraction, fps: Fraction) -> list[tuple[int, Fraction]]:
    """(left, t) of every output frame, by the definition: a linear scan over the source frames."""
    positions = []
    n = 0
    while n / fps < end:
        time = n / fps
        left = max(i for i, s in enumerate(starts) if s <= time)
        if left == len(starts) - 1:
            positions.append((left, Fraction(0)))
        else:
            positions.append((left, (time - starts[left]) / (starts[left + 1] - starts[left])))
        n += 1
    return positions


@given(durations, rates)
def test_timestamp_positions_follow_the_definition(spans: list[Fraction], fps: Fraction) -> None:
    times = [sum(spans[:i], Fraction(0)) for i in range(len(spans) + 1)]  # starts, then the end
    timing = TimestampTiming.from_timestamps(times, len(spans), fps)
    expected = oracle(times[:-1], times[-1], fps)
    assert timing.num_output == len(expected) == math.ceil(times[-1] * fps)
    assert [timing.position(n) for n in range(timing.num_output)] == expected
    for left in range(len(spans) - 1):
        wanted = [t for i, t in expected if i == left and t]
        assert timing.pair_times(left) == wanted and timing.pair_count(left) == len(wanted)
    for n, (left, t) in enumerate(expected):
        if t:
            assert timing.pair_times(left)[timing.pair_slot(n)] == t
        # Across held frames (dedup), t runs in time from A to B, not in frame counts.
        if left >= 1 and left + 1 < len(spans):
            assert timing.between(n, left - 1, left + 1) == (n / fps - times[left - 1]) / (
                times[left + 1] - times[left - 1]
            )


def test_spacing_of_the_frames_around_a_pair_is_in_units_of_the_pair() -> None:
    assert Timing(10, Fraction(2)).spacing(3, 4, 5, 6) == (Fraction(1), Fraction(1))
    assert Timing(10, Fraction(2)).spacing(1, 3, 5, 6) == (Fraction(1), Fraction(1, 2))  # held frames: 2 apart, then 1
    # 25 fps, then 12.5 fps from frame 2: the pair (1, 2) lasts 0.04 s, the frame after lies 0.08 s on.
    timing = TimestampTiming.from_timestamps([0, 0.04, 0.08, 0.16, 0.24], 5, Fraction(50))
    assert timing.spacing(0, 1, 2, 3) == (Fraction(1), Fraction(2))
    assert timing.spacing(1, 2, 3, 4) == (Fraction(1, 2), Fraction(1))


@given(lengths, factors)
def test_even_timestamps_place_frames_as_the_factor_does(n: int, factor: Fraction) -> None:
    fps = Fraction(24000, 1001)
    timing = TimestampTiming.from_timestamps([i / fps for i in range(n + 1)], n, fps * factor)
    plain = Timing(n, factor)
    assert timing.num_output == plain.num_output
    assert [timing.position(i) for i in range(plain.num_output)] == [plain.position(i) for i in range(plain.num_output)]


def test_timestamps_in_floats_starting_late_and_without_an_end() -> None:
    # The reproduction file's timing, 12 frames at 25 fps, then 13 at 12.5 fps, as floats, from 0.1 s on.
    starts = [0.1 + (i * 0.04 if i < 12 else 0.48 + (i - 12) * 0.08) for i in range(25)]
    timing = TimestampTiming.from_timestamps(starts, 25, Fraction(50))
    assert timing.starts[12] == Fraction(58, 100) and timing.end == Fraction(162, 100)  # last lasts 0.08 s
    assert timing.num_output == 81
    assert [timing.position(n) for n in range(6)] == [(0, 0)] * 5 + [(0, Fraction(0))]  # copies until 0.1 s
    assert timing.position(29) == (12, Fraction(0)) and timing.position(30) == (12, Fraction(1, 4))
    assert timing.pair_times(0) == [Fraction(1, 2)] and timing.pair_slot(6) == 0
    assert timing.position(79) == (24, Fraction(0)) and timing.position(80) == (24, Fraction(0))
    early = TimestampTiming.from_timestamps([Fraction(-1, 10), Fraction(1, 10)], 2, Fraction(10))
    assert early.num_output == 3 and [early.position(n) for n in range(3)] == [(0, Fraction(1, 2)), (1, 0), (1, 0)]
    assert early.pair_times(0) == [Fraction(1, 2)] and early.pair_slot(0) == 0
    single = TimestampTiming.from_timestamps([Fraction(3)], 1, Fraction(30))
    assert single.num_output == 91 and single.position(90) == (0, Fraction(0))


@pytest.mark.parametrize(
    ("timestamps", "message"),
    [
        ([0, 1], "timestamps has 2 values for a clip of 3 frames; give one start time per frame"),
        ([0, 1, 2, 3, 4], "timestamps has 5 values for a clip of 3 frames"),
        ([0, 0.5, 0.5], r"timestamps must strictly increase, but timestamps\[2\] = 0.5 s is not after"),
        ([0, 2, 1], r"timestamps\[2\] = 1 s is not after timestamps\[1\] = 2 s"),
        ([0, 1, 2, 2], r"timestamps\[3\] = 2 s is not after"),
        ([0, "1", 2], r"timestamps\[1\] must be a number of seconds"),
        ([0, 1, float("nan")], r"timestamps\[2\] must be a number of seconds"),
        ([0, True, 2], r"timestamps\[1\] must be a number of seconds"),
        ("012", "timestamps must be a sequence of seconds, got str"),
        ([-3, -2, -1, 0], "the clip ends at 0 s, before time 0"),
    ],
)
def test_bad_timestamps_are_refused(timestamps: object, message: str) -> None:
    with pytest.raises(TimingError, match=message):
        TimestampTiming.from_timestamps(timestamps, 3, Fraction(30))  # type: ignore[arg-type]  # bad on purpose


def test_a_constant_rate_allows_only_a_containers_rounding() -> None:
    fps = Fraction(30000, 1001)
    rounded = [Fraction(round(i * 1000 / fps), 1000) for i in range(3000)]  # whole milliseconds, as in Matroska
    assert fits_rate(rounded, fps, Fraction(1, 1000))
    assert not fits_rate([*rounded[:100], *(s + Fraction(2, 1000) for s in rounded[100:])], fps, Fraction(1, 1000))
    assert not fits_rate([Fraction(0), Fraction(1, 25)], Fraction(0), Fraction(1, 1000))  # no stated rate


def test_timestamps_far_apart_are_capped_as_factors_are() -> None:
    """An end time of 10^7 s after three frames would be 6·10^8 frames at 60 fps: refused like a factor over
    the limit, in one line."""
    with pytest.raises(TimingError, match="above the limit of 10000 per source frame"):
        TimestampTiming.from_timestamps([0, Fraction(1, 25), Fraction(2, 25), 10**7], 3, Fraction(60))
    assert TimestampTiming.from_timestamps([0, Fraction(1, 25), Fraction(2, 25), 3], 3, Fraction(60)).num_output == 180
