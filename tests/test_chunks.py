"""Chunk planning: edges at scene cuts or every target, carried exactly to output frames; concat durations."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vs_superslomo.chunks import (
    Chunk,
    chunk_target,
    concat_durations_us,
    first_output_at,
    longest_first,
    plan_chunks,
    source_edges,
)
from vs_superslomo.timing import TimestampTiming, Timing


@given(
    num_source=st.integers(1, 400),
    target=st.integers(1, 60),
    cuts=st.lists(st.integers(0, 400), max_size=20),
)
def test_edges_lie_at_cuts_or_every_target_and_no_chunk_is_out_of_bounds(
    num_source: int, target: int, cuts: list[int]
) -> None:
    edges = source_edges(num_source, target, cuts)
    bounds = [0, *edges, num_source]
    assert bounds == sorted(set(bounds)), "edges strictly increase inside the clip"
    lengths = [b - a for a, b in itertools.pairwise(bounds)]
    if len(lengths) > 1:
        assert all(max(1, target // 2) <= n <= target + target // 2 for n in lengths)
    else:
        assert num_source <= target + target // 2
    scene_starts = {c + 1 for c in cuts}
    for start, edge in zip(bounds, edges, strict=False):
        # Cuts in reach that leave at least half a target for the rest of the clip.
        near = [
            s
            for s in scene_starts
            if max(1, target // 2) <= s - start <= target + target // 2 and num_source - s >= max(1, target // 2)
        ]
        if edge not in scene_starts:  # no such cut
            assert edge == start + target
            assert not near
        else:  # the cut nearest the target length
            assert all(abs(edge - start - target) <= abs(s - start - target) for s in near)


def test_a_cut_that_would_leave_too_short_a_last_chunk_is_passed_over() -> None:
    # Found by hypothesis: from 300, the cut at 332 is nearer the target but leaves 14 frames (< 15).
    assert source_edges(346, 30, [315, 331])[-1] == 316


def test_edges_prefer_the_cut_nearest_the_target() -> None:
    # Cuts between 9|10 and 13|14: the scene starting at 10 is nearer 10 frames on than 14.
    assert source_edges(40, 10, [9, 13]) == [10, 20, 30]
    assert source_edges(40, 10, [12, 27]) == [13, 23 + 5]  # 13, then the cut at 27|28 (5 from 23)
    assert source_edges(12, 10, [5]) == []  # 12 <= 1.5 targets: one chunk, cuts or not


@given(
    num_source=st.integers(2, 60),
    factor=st.fractions(min_value=1, max_value=12).map(lambda f: f.limit_denominator(7)).filter(lambda f: f >= 1),
)
def test_first_output_at_is_the_first_frame_at_or_after_the_source_frame(num_source: int, factor: Fraction) -> None:
    timing = Timing(num_source, factor)
    for source in range(num_source):
        n = first_output_at(timing, source)
        assert n == next(k for k in range(timing.num_output + 1) if k == timing.num_output or k / factor >= source)
        if 0 < n < timing.num_output:  # frames before it start from source frames before `source`: no shared pair
            left, t = timing.position(n - 1)
            assert left < source and left + (t > 0) <= source


def test_first_output_at_follows_timestamps() -> None:
    starts = [Fraction(0), Fraction(1, 25), Fraction(9, 100), Fraction(1, 10), Fraction(3, 10)]
    timing = TimestampTiming.from_timestamps(starts, len(starts), Fraction(50))
    # 50 fps output frames at 0, 0.02, 0.04, ...: 0.04 is frame 2; 0.09 -> frame 5 (0.10); 0.3 -> frame 15.
    assert [first_output_at(timing, i) for i in range(5)] == [0, 2, 5, 5, 15]


def test_plan_merges_edges_on_one_output_frame_and_covers_the_output() -> None:
    to_output = {3: 5, 4: 5, 8: 9}.__getitem__
    chunks = plan_chunks([3, 4, 8], to_output, 12)
    assert chunks == [Chunk(0, 0, 5), Chunk(1, 5, 9), Chunk(2, 9, 12)]
    assert plan_chunks([], to_output, 7) == [Chunk(0, 0, 7)]
    assert plan_chunks([], to_output, 0) == []
    assert [c.index for c in longest_first(chunks)] == [0, 1, 2]  # 5, 4, 3 frames
    assert [c.index for c in longest_first([Chunk(0, 0, 2), Chunk(1, 2, 9), Chunk(2, 9, 12)])] == [1, 2, 0]


def test_chunk_target_is_output_seconds_on_the_source_axis() -> None:
    # 8x: 10 s at 200 fps output = 2000 output frames = 250 source frames.
    assert chunk_target(10, Fraction(200), 2500, 20000, None) == 250
    assert chunk_target(10, Fraction(200), 48, 384, 2) == 12  # short: two chunks per worker
    assert chunk_target(0.001, Fraction(200), 48, 384, None) == 1


@given(
    ends=st.lists(st.integers(1, 10_000), min_size=1, max_size=30, unique=True),
    fps=st.sampled_from([Fraction(24000, 1001), Fraction(480000, 1001), Fraction(200), Fraction(7, 3)]),
)
def test_concat_durations_add_up_to_every_exact_start(ends: list[int], fps: Fraction) -> None:
    bounds = [0, *sorted(ends)]
    chunks = [Chunk(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    durations = concat_durations_us(chunks, fps)
    total = 0
    for chunk, duration in zip(chunks, durations, strict=True):
        total += duration
        assert abs(total - Fraction(chunk.end) / fps * 1_000_000) <= Fraction(1, 2)


def test_bad_target_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        source_edges(10, 0)
