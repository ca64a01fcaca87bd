"""Timing rules, property-based: length, positions, pair times and the SelectEvery mapping."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vs_superslomo.timing import MAX_CYCLE, MAX_FACTOR, Timing, TimingError, resolve_factor

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
            assert (left, t) == (n - 1, 0)
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
def test_bad_factors_raise(args: tuple, message: str) -> None:
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
