"""Held frames (dedup): the rules on flags alone, the block difference, and the filter end to end."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import accelerating_frames, make_model, random_frames, zero_refinement_model
from hypothesis import given, settings
from hypothesis import strategies as st

from vs_superslomo import superslomo
from vs_superslomo.engine import Interpolator
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.holds import HoldRules, flag_span, frame_span, locate, outer_frames, worst_block_difference
from vs_superslomo.timing import Timing

MODEL = make_model()
core = vs.core


def expected(p: Fraction, repeats: list[bool], max_run: int) -> tuple[int, int | None, Fraction, bool]:
    """(A, B, t, held) from the whole clip's flags at once: runs measured globally, then a plain search."""
    last = len(repeats) - 1
    held = [False] * len(repeats)
    for value, group in itertools.groupby(range(len(repeats)), key=lambda i: repeats[i] and i > 0):
        run = list(group)
        if value and len(run) <= max_run:
            for i in run:
                held[i] = True
    p = min(p, Fraction(last))
    left = math.floor(p)
    a = max(i for i in range(left + 1) if not held[i])
    later = [i for i in range(left + 1, last + 1) if not held[i]]
    if p == a or not later or (later[0] == a + 1 and repeats[a + 1]):
        return a, None, Fraction(0), held[left]
    return a, later[0], (p - a) / (later[0] - a), held[left]


def cadence_flags(pattern: list[int], length: int) -> list[bool]:
    """Flags of a clip whose drawings are held for pattern[0], pattern[1], ... frames (cycling)."""
    flags: list[bool] = []
    for hold in itertools.cycle(pattern):
        flags += [False] + [True] * (hold - 1)
        if len(flags) >= length:
            return flags[:length]
    raise AssertionError  # unreachable: cycle is endless


def expected_outer(a: int, b: int, repeats: list[bool], max_run: int) -> tuple[int, int] | None:
    """The ends of the pairs next to (a, b) by the global rule: the pair of positions just before a must end
    at a, and the pair just after b must exist."""
    if a == 0:
        return None
    before, end, _, _ = expected(Fraction(2 * a - 1, 2), repeats, max_run)
    after = expected(Fraction(2 * b + 1, 2), repeats, max_run)[1]
    return None if end != a or after is None else (before, after)


def check_locate(flags: list[bool], factor: Fraction, max_run: int) -> None:
    timing = Timing(len(flags), factor)
    lowest, highest = flag_span(max_run)
    wider = flag_span(max_run, outer=True)
    frames = frame_span(max_run, outer=True)
    for n in range(timing.num_output):
        p = min(n / factor, Fraction(len(flags) - 1))
        left = math.floor(p)
        asked: list[int] = []

        def repeats(i: int, left: int = left, asked: list[int] = asked) -> bool:
            asked.append(i - left)
            return flags[i]

        got = locate(p, repeats, len(flags), max_run)
        assert (got.a, got.b, got.t, got.held) == expected(p, flags, max_run), (n, p)
        assert all(lowest <= o <= highest for o in asked)  # a bounded neighbourhood: order independence
        if got.b is not None:
            assert frame_span(max_run)[0] <= got.a - left and got.b - left <= frame_span(max_run)[1]
            asked.clear()
            outer = outer_frames(got.a, got.b, repeats, len(flags), max_run)
            assert outer == expected_outer(got.a, got.b, flags, max_run), (n, p)
            assert all(wider[0] <= o <= wider[1] for o in asked)
            assert outer is None or (frames[0] <= outer[0] - left and outer[1] - left <= frames[1])


@pytest.mark.parametrize("pattern", [[2], [3], [2, 2, 3], [1, 2, 1, 3]])
@pytest.mark.parametrize("factor", [Fraction(1), Fraction(2), Fraction(5, 2)])
def test_cadences_give_the_distinct_frames_around_each_position(pattern: list[int], factor: Fraction) -> None:
    check_locate(cadence_flags(pattern, 23), factor, max_run=3)


@settings(max_examples=100, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=30),
    num=st.integers(1, 7),
    den=st.integers(1, 3),
    max_run=st.integers(1, 4),
)
def test_any_flags_any_factor_match_the_global_rule(flags: list[bool], num: int, den: int, max_run: int) -> None:
    if Fraction(num, den) >= 1:
        check_locate(flags, Fraction(num, den), max_run)


def test_a_run_longer_than_the_cap_is_a_still_shot() -> None:
    flags = [False, False, True, True, True, True, True, False, True, False]  # 5 repeats after frame 1
    for p in (Fraction(3, 2), Fraction(4), Fraction(9, 2)):
        assert locate(p, flags.__getitem__, 10, 3).b is None  # copies: exactly still
    assert locate(Fraction(13, 2), flags.__getitem__, 10, 3).b == 7  # from the last still frame to the next
    held = locate(Fraction(8), flags.__getitem__, 10, 3)  # a single repeat: held, between 7 and 9
    assert (held.a, held.b, held.t, held.held) == (7, 9, Fraction(1, 2), True)


def test_worst_block_decides_not_the_mean() -> None:
    still = random_frames(1, 64, 96, seed=3)[0]
    rng = np.random.default_rng(0)
    noisy = np.clip(still + rng.normal(0, 1.5 / 255, still.shape), 0, 1).astype(np.float32)
    mouth = still.copy()
    mouth[:, 20:28, 40:48] = 1 - mouth[:, 20:28, 40:48]  # a small patch changes, the rest is still
    threshold = HoldRules().threshold
    assert worst_block_difference(noisy, still) < threshold  # encoder-like noise: a copy
    assert float(np.abs(mouth - still).mean()) < threshold < worst_block_difference(mouth, still)
    # Edge blocks of their own size: a change in the last, partial column of blocks still counts fully.
    wide = random_frames(1, 64, 100, seed=3)[0]  # 100 = 6 × 16 + a partial block 4 px wide
    edge = wide.copy()
    edge[:, :, 96:] += 0.2
    assert worst_block_difference(edge, wide, 16) == pytest.approx(0.2, abs=1e-4)


# --- the filter ----------------------------------------------------------------------------------------


def held_clip(
    pattern: list[int], drawings: int, *, noise: float = 1 / 255, height: int = 32, width: int = 48
) -> vs.VideoNode:
    """Drawings of a moving texture, each held as the pattern says, every copy with fresh noise."""
    pictures = random_frames(drawings, height, width, seed=8, grain=4)
    rng = np.random.default_rng(1)
    frames, holds = [], itertools.cycle(pattern)
    for picture in pictures:
        hold = next(holds)
        frames.append(picture)
        frames += [
            np.clip(picture + rng.normal(0, noise, picture.shape), 0, 1).astype(np.float32) for _ in range(hold - 1)
        ]
    return clip_from_arrays(frames), frames, pictures


@pytest.mark.parametrize("pattern", [[2], [3], [2, 2, 3]])
@pytest.mark.parametrize(("num", "den"), [(1, 1), (2, 1), (5, 2)])
def test_filter_interpolates_held_frames_between_distinct_ones(pattern: list[int], num: int, den: int) -> None:
    clip, frames, _ = held_clip(pattern, 6)
    flags = cadence_flags(pattern, len(frames))
    out = superslomo(clip, num, den, model=MODEL, dedup=True)
    factor = Fraction(num, den)
    plain = superslomo(clip, num, den, model=MODEL)
    for n in range(out.num_frames):
        frame = out.get_frame(n)
        a, b, t, held = expected(n / factor, flags, 3)
        props = frame.props
        assert (props["SuperSloMoSource"], props.get("SuperSloMoNext"), props["SuperSloMoHeld"]) == (a, b, int(held))
        assert props["SuperSloMoT"] == float(t)
        if b is None:
            assert np.array_equal(read_frame(frame), frames[a])  # bit-exact copies of distinct frames
        elif b == a + 1:  # a pair of neighbours: what the plain filter gives
            assert np.array_equal(read_frame(frame), read_frame(plain.get_frame(n)))


def test_on_twos_at_factor_1_equals_the_distinct_frames_at_factor_2() -> None:
    clip, frames, pictures = held_clip([2], 6)
    deduped = superslomo(clip, 1, model=MODEL, dedup=True)
    distinct = superslomo(clip_from_arrays(pictures), 2, model=MODEL)
    assert deduped.num_frames == clip.num_frames
    for n in range(len(frames) - 1):  # the last copy is the tail: it repeats the last drawing
        assert np.array_equal(read_frame(deduped.get_frame(n)), read_frame(distinct.get_frame(n)))


@pytest.mark.parametrize("motion", ["pan", "patch"])
def test_clips_without_held_frames_are_unchanged(motion: str) -> None:
    if motion == "pan":  # 1 px a frame
        frames = random_frames(6, 32, 48, seed=2, grain=4)
        frames = [np.ascontiguousarray(np.roll(frames[0], i, axis=2)) for i in range(6)]
    else:  # a small patch moving on a still picture
        still = random_frames(1, 32, 48, seed=2, grain=4)[0]
        frames = []
        for i in range(6):
            f = still.copy()
            f[:, 10:16, 5 + 2 * i : 11 + 2 * i] = 0.9
            frames.append(f)
    clip = clip_from_arrays(frames)
    a, b = superslomo(clip, 3, model=MODEL, dedup=True), superslomo(clip, 3, model=MODEL)
    for n in range(a.num_frames):
        fa, fb = a.get_frame(n), b.get_frame(n)
        assert np.array_equal(read_frame(fa), read_frame(fb)) and fa.props["SuperSloMoHeld"] == 0


def test_a_still_shot_longer_than_the_cap_stays_exactly_still() -> None:
    clip, frames, _ = held_clip([6, 2], 3, noise=0.5 / 255)
    out = superslomo(clip, 2, model=MODEL, dedup=True)
    for n in range(0, 10):  # frames 0..5: one drawing held six times, longer than max_run 3
        assert np.array_equal(read_frame(out.get_frame(n)), frames[n // 2])
    assert out.get_frame(11).props["SuperSloMoNext"] == 6  # from the last still frame to the next drawing


def test_cut_inside_a_held_run_is_never_interpolated_across() -> None:
    clip, frames, _ = held_clip([3], 3)
    marked = core.std.SetFrameProp(clip, prop="_SceneChangePrev", intval=1)
    marked = core.std.Splice([clip[:3], marked[3:4], clip[4:]])  # a cut between drawing 0 and drawing 1
    out = superslomo(marked, 1, model=MODEL, dedup=True)
    for n in (1, 2):  # held copies before the cut: themselves, not motion towards the next shot
        frame = out.get_frame(n)
        assert np.array_equal(read_frame(frame), frames[n]) and frame.props["SuperSloMoT"] == 0.0
    assert out.get_frame(4).props["SuperSloMoNext"] == 6  # after the cut, held frames move again


def test_held_frames_take_quadratic_motion_through_the_distinct_frames_around_them() -> None:
    """Drawings held 2, 3, 2, 3 frames, at x = s(s + 1)/2 px for frame s (1 px a frame²): the pair of drawings
    (2, 5) takes the drawings at 0 and 7 as its neighbours, at their distances (two thirds of the pair each
    side), where both ends see the same acceleration (9 px a pair²), and moves 1 px off the linear path."""
    pictures = accelerating_frames([0, 3, 15, 28, 55])
    holds = [2, 3, 2, 3, 1]
    frames = [picture for picture, hold in zip(pictures, holds, strict=True) for _ in range(hold)]
    model = zero_refinement_model()
    clip = clip_from_arrays(frames)
    out = superslomo(clip, 1, model=model, flow="dis", backend="torch", dedup=True)
    frame = out.get_frame(3)  # a copy of drawing 1 (frame 2): a third of the way from frame 2 to frame 5
    assert (frame.props["SuperSloMoSource"], frame.props["SuperSloMoNext"]) == (2, 5)
    engine = Interpolator(model, torch.device("cpu"), flow="dis", backend="torch")
    t = [float(frame.props["SuperSloMoT"])]
    want = engine.interpolate(frames[2], frames[5], t, frames[0], frames[7], spacing=(2 / 3, 2 / 3))[0].numpy()
    np.testing.assert_allclose(read_frame(frame), want, atol=1e-6)
    linear = superslomo(clip, 1, model=model, flow="dis", backend="torch", dedup=True, motion="linear")
    plain = engine.interpolate(frames[2], frames[5], t)[0].numpy()
    np.testing.assert_allclose(read_frame(linear.get_frame(3)), plain, atol=1e-6)
    assert np.abs(want - plain).max() > 0.02
    # The first pair of drawings has none before it: linear.
    first = out.get_frame(1)
    np.testing.assert_allclose(read_frame(first), read_frame(linear.get_frame(1)), atol=1e-6)


@pytest.mark.parametrize(
    ("order", "threads", "flow"), [("reversed", 1, "net"), ("shuffled", 4, "net"), ("shuffled", 4, "dis")]
)
def test_dedup_frames_do_not_depend_on_request_order_or_threads(order: str, threads: int, flow: str) -> None:
    clip, _, _ = held_clip([2, 3], 5)
    old = core.num_threads
    try:
        core.num_threads = 1
        # flow="dis": quadratic motion, with the distinct frames around each pair (flags further out).
        reference = [read_frame(f) for f in superslomo(clip, 2, model=MODEL, dedup=True, flow=flow).frames()]
        core.num_threads = threads
        out = superslomo(clip, 2, model=MODEL, dedup=True, flow=flow)
        picks = list(range(out.num_frames))
        picks = picks[::-1] if order == "reversed" else random.Random(threads).sample(picks, len(picks))
        futures = {n: out.get_frame_async(n) for n in picks}
        got = {n: read_frame(f.result()) for n, f in futures.items()}
    finally:
        core.num_threads = old
    assert all(np.array_equal(got[n], reference[n]) for n in range(len(reference)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dedup_threshold": 0}, r"dedup_threshold must be in \(0, 1\]"),
        ({"dedup_max_run": 0}, "dedup_max_run must be an int from 1 to 16"),
        ({"dedup_max_run": 2.5}, "dedup_max_run must be an int from 1 to 16"),
    ],
)
def test_bad_dedup_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(vs.Error, match=f"^superslomo: {message}"):
        superslomo(clip_from_arrays(random_frames(2, 8, 8)), model=MODEL, dedup=True, **kwargs)  # type: ignore[arg-type]  # bad arguments on purpose


def test_each_frames_block_difference_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags are read at 4 × max_run + 2 offsets around every position: from one node, not one each."""
    import vs_superslomo.plugin as plugin

    calls: list[int] = []

    def counted(frame: np.ndarray, previous: np.ndarray, block: int = 16) -> float:
        calls.append(1)
        return worst_block_difference(frame, previous, block)

    monkeypatch.setattr(plugin, "worst_block_difference", counted)
    clip, frames, _ = held_clip([2], 4)
    list(superslomo(clip, 2, model=MODEL, dedup=True).frames())
    assert len(calls) == len(frames)
