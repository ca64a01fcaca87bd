"""The VapourSynth filter: timing and props, copies, scene cuts, order and thread independence, sizes,
precision, batching, and every argument error."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import accelerating_frames, bias, make_model, random_frames, zero_refinement_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vs_superslomo import SuperSloMo, scenechange, superslomo
from vs_superslomo.engine import Interpolator
from vs_superslomo.flow import dis_seeded
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.timing import Timing

MODEL = make_model()
core = vs.core


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 5),
    num=st.integers(1, 9),
    den=st.integers(1, 4),
    slowmo=st.booleans(),
)
def test_every_output_frame_follows_the_timing_rules(n: int, num: int, den: int, slowmo: bool) -> None:
    factor = Fraction(num, den)
    if factor < 1:
        with pytest.raises(vs.Error, match=r"superslomo: factor_num/factor_den = .*, which is < 1"):
            superslomo(clip_from_arrays(random_frames(n, 8, 12)), num, den, model=MODEL)
        return
    frames = random_frames(n, 8, 12)
    clip = clip_from_arrays(frames, props=[{"Index": i} for i in range(n)])
    out = superslomo(clip, num, den, slowmo=slowmo, model=MODEL)
    timing = Timing(n, factor)
    assert out.num_frames == math.ceil(n * factor)
    rate = Fraction(24000, 1001) * (1 if slowmo else factor)
    assert Fraction(out.fps_num, out.fps_den) == rate
    for i in range(out.num_frames):
        frame = out.get_frame(i)
        left, t = timing.position(i)
        props = frame.props
        assert props["SuperSloMoSource"] == left and props["SuperSloMoT"] == float(t)
        assert Fraction(props["_DurationNum"], props["_DurationDen"]) == 1 / rate
        assert props["Index"] == left  # props come from the left source frame
        data = read_frame(frame)
        if t == 0:
            assert np.array_equal(data, frames[left])  # bit-exact copy
        else:
            assert not np.array_equal(data, frames[left]) and data.min() >= 0 and data.max() <= 1


def test_fps_mode_and_slowmo() -> None:
    clip = clip_from_arrays(random_frames(4, 8, 8))
    out = superslomo(clip, fps_num=60000, fps_den=1001, model=MODEL)
    assert (out.num_frames, out.fps_num, out.fps_den) == (10, 60000, 1001)
    assert [out.get_frame(i).props["SuperSloMoT"] for i in range(3)] == [0.0, 0.4, 0.8]
    slow = superslomo(clip, 8, slowmo=True, model=MODEL)
    assert (slow.num_frames, slow.fps_num, slow.fps_den) == (32, 24000, 1001)
    assert (slow.get_frame(3).props["_DurationNum"], slow.get_frame(3).props["_DurationDen"]) == (1001, 24000)


def test_variable_rate_clip_scales_each_frame_duration() -> None:
    props = [{"_DurationNum": 1, "_DurationDen": 25}, {"_DurationNum": 1, "_DurationDen": 50}, {}]
    clip = clip_from_arrays(random_frames(3, 8, 8), fps=(0, 1), props=props)
    out = superslomo(clip, 2, model=MODEL)
    assert out.fps_num == 0
    durations = [
        Fraction(f.props["_DurationNum"], f.props["_DurationDen"]) for f in (out.get_frame(0), out.get_frame(3))
    ]
    assert durations == [Fraction(1, 50), Fraction(1, 100)]
    with pytest.raises(vs.Error, match="superslomo: fps mode needs a clip with a known frame rate"):
        superslomo(clip, fps_num=60, model=MODEL)


def cut_clip(
    props: list[dict[str, object]] | None = None, similar: bool = False
) -> tuple[vs.VideoNode, list[np.ndarray]]:
    a = random_frames(4, 16, 16, seed=3)
    frames = a if similar else [a[0], a[1], 1 - a[2], 1 - a[3]]  # a cut between frames 1 and 2
    return clip_from_arrays(frames, props=props), frames


def test_scene_cut_outputs_copy_the_nearest_source_frame() -> None:
    clip, frames = cut_clip()
    out = superslomo(clip, 4, model=MODEL)
    for n, (source, t) in {4: (1, 0.0), 5: (1, 0.0), 6: (1, 0.0), 7: (2, 0.0)}.items():
        frame = out.get_frame(n)
        assert (frame.props["SuperSloMoSource"], frame.props["SuperSloMoT"]) == (source, t)
        assert np.array_equal(read_frame(frame), frames[source])
    assert out.get_frame(1).props["SuperSloMoT"] == 0.25  # pairs without a cut are interpolated
    assert out.get_frame(9).props["SuperSloMoT"] == 0.25
    plain = superslomo(clip, 4, sc=False, model=MODEL)
    assert plain.get_frame(5).props["SuperSloMoT"] == 0.25
    lenient = superslomo(clip, 4, sc_threshold=1.0, model=MODEL)
    assert lenient.get_frame(5).props["SuperSloMoT"] == 0.25


def test_large_motion_is_not_a_cut() -> None:
    """A fine texture moving 8 px changes the picture more than the cut threshold, but motion compensation
    brings it back: interpolated. The same change as a new picture stays a cut."""
    big = random_frames(1, 96, 112, seed=6, grain=3)[0]
    moved = [np.ascontiguousarray(big[:, 8:88, s : s + 96]) for s in (12, 4)]
    other = random_frames(1, 80, 96, seed=7, grain=3)[0]
    for frames, interpolated in ((moved, True), ([moved[0], other], False)):
        diff = float(np.abs(scenechange.luma(frames[1]) - scenechange.luma(frames[0])).mean())
        assert diff > scenechange.DEFAULT_SC_THRESHOLD  # a cut by the plain difference
        out = superslomo(clip_from_arrays(frames), 2, model=MODEL)
        assert (out.get_frame(1).props["SuperSloMoT"] == 0.5) is interpolated


@pytest.mark.parametrize(("props", "pair"), [({0: {"_SceneChangeNext": 1}}, 0), ({2: {"_SceneChangePrev": 1}}, 1)])
def test_scene_change_props_on_the_input_are_honoured(props: dict[int, dict[str, object]], pair: int) -> None:
    clip, frames = cut_clip([props.get(i, {}) for i in range(4)], similar=True)
    out = superslomo(clip, 2, model=MODEL)
    for left in range(3):
        frame = out.get_frame(2 * left + 1)
        if left == pair:
            assert frame.props["SuperSloMoT"] == 0.0 and np.array_equal(read_frame(frame), frames[left])
        else:
            assert frame.props["SuperSloMoT"] == 0.5
    assert superslomo(clip, 2, sc=False, model=MODEL).get_frame(2 * pair + 1).props["SuperSloMoT"] == 0.5


class CountingModel(SuperSloMo):
    """Counts flow computations: one per source pair proves no pair is ever computed twice."""

    def __init__(self) -> None:
        super().__init__(width=MODEL.width, warp=MODEL.warp)
        self.load_state_dict(MODEL.state_dict())
        self.flows = 0
        self._count_lock = threading.Lock()

    def compute_flow(
        self, i0: torch.Tensor, i1: torch.Tensor, flow_net: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with self._count_lock:
            self.flows += 1
        return super().compute_flow(i0, i1, flow_net)


def all_frames(out: vs.VideoNode, order: list[int], concurrent: bool) -> dict[int, np.ndarray]:
    if not concurrent:
        return {n: read_frame(out.get_frame(n)) for n in order}
    futures: dict[int, Future[vs.VideoFrame]] = {n: out.get_frame_async(n) for n in order}
    return {n: read_frame(f.result()) for n, f in futures.items()}


@pytest.mark.parametrize(("order", "threads"), [("reversed", 1), ("shuffled", 4), ("shuffled", 2)])
def test_any_order_and_threads_give_identical_frames_computing_each_pair_once(order: str, threads: int) -> None:
    frames = random_frames(6, 24, 40, seed=9)
    clip = clip_from_arrays(frames)
    old = core.num_threads
    try:
        core.num_threads = 1
        sequential_model = CountingModel()
        reference = all_frames(superslomo(clip, 3, 1, model=sequential_model), list(range(18)), False)
        core.num_threads = threads
        model = CountingModel()
        order_list = list(range(18))[::-1] if order == "reversed" else random.Random(threads).sample(range(18), 18)
        got = all_frames(superslomo(clip, 3, 1, model=model), order_list, threads > 1)
    finally:
        core.num_threads = old
    assert all(np.array_equal(got[n], reference[n]) for n in range(18))
    assert sequential_model.flows == model.flows == 5  # five source pairs, each computed once


def test_small_cache_still_serves_identical_frames() -> None:
    clip = clip_from_arrays(random_frames(4, 8, 8))
    a = superslomo(clip, 4, model=MODEL)
    b = superslomo(clip, 4, cache_mb=0, model=MODEL)
    for n in (9, 1, 5, 2, 10):
        assert np.array_equal(read_frame(a.get_frame(n)), read_frame(b.get_frame(n)))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 5), (17, 33), (40, 70)])
def test_any_frame_size_is_padded_and_cropped_back(height: int, width: int) -> None:
    frames = random_frames(2, height, width)
    out = superslomo(clip_from_arrays(frames), 2, model=MODEL)
    assert (out.width, out.height, out.num_frames) == (width, height, 4)
    mid = read_frame(out.get_frame(1))
    assert mid.shape == (3, height, width) and np.isfinite(mid).all() and mid.min() >= 0 and mid.max() <= 1
    assert np.array_equal(read_frame(out.get_frame(2)), frames[1])


def test_rgbh_in_rgbh_out() -> None:
    frames = [f.astype(np.float16).astype(np.float32) for f in random_frames(3, 16, 24)]
    half = superslomo(clip_from_arrays(frames, fmt=vs.RGBH), 2, model=MODEL)
    full = superslomo(clip_from_arrays(frames), 2, model=MODEL)
    assert half.format.id == vs.RGBH
    assert np.array_equal(read_frame(half.get_frame(2)).astype(np.float32), frames[1])
    assert np.abs(read_frame(half.get_frame(1)).astype(np.float32) - read_frame(full.get_frame(1))).max() < 2e-3


def test_batched_equals_unbatched() -> None:
    clip = clip_from_arrays(random_frames(2, 24, 40))
    one = superslomo(clip, 8, batch_size=1, model=MODEL)
    many = superslomo(clip, 8, batch_size=3, model=MODEL)
    auto = superslomo(clip, 8, model=MODEL)
    for n in range(1, 8):
        ref = read_frame(one.get_frame(n))
        assert np.abs(read_frame(many.get_frame(n)) - ref).max() < 1e-6
        assert np.abs(read_frame(auto.get_frame(n)) - ref).max() < 1e-6


@pytest.mark.parametrize("warp", ["exact", "legacy"])
def test_zero_flow_is_identity_only_with_the_exact_warp(warp: str) -> None:
    """Networks that output zero flows: the exact warp returns the input frame, the legacy one shifts it."""
    model = make_model(warp=warp)
    with torch.no_grad():
        model.flow.conv3.weight.zero_()
        bias(model.flow.conv3).zero_()
        model.interp.conv3.weight[:4].zero_()
        bias(model.interp.conv3)[:4].zero_()
    frame = random_frames(1, 32, 32)[0]
    out = superslomo(clip_from_arrays([frame, frame]), 4, model=model, sc=False)
    errors = [np.abs(read_frame(out.get_frame(n)) - frame).max() for n in (1, 2, 3)]
    if warp == "exact":
        assert max(errors) < 1e-5
    else:
        assert min(errors) > 1e-2


@pytest.mark.parametrize(
    ("make_clip", "message"),
    [
        (
            lambda: core.std.BlankClip(format=vs.YUV420P8),
            r"got YUV420P8; convert with vs_superslomo\.colour\.to_rgb\(clip\)",
        ),
        (
            lambda: core.std.BlankClip(format=vs.RGB24),
            r"only RGBS and RGBH clips are accepted, got RGB24; convert with core\.resize\.Point",
        ),
        (lambda: core.std.BlankClip(format=vs.GRAYS), "only RGBS and RGBH"),
        (
            lambda: core.std.Splice(
                [core.std.BlankClip(format=vs.RGBS), core.std.BlankClip(format=vs.RGBH)], mismatch=True
            ),
            "constant format and size",
        ),
        (
            lambda: core.std.Splice(
                [core.std.BlankClip(format=vs.RGBS, width=8), core.std.BlankClip(format=vs.RGBS)], mismatch=True
            ),
            "constant format and size",
        ),
        (lambda: "clip.mp4", "clip must be a vapoursynth.VideoNode, got str"),
    ],
)
def test_bad_clips_are_refused_with_the_fix(make_clip: Callable[[], object], message: str) -> None:
    with pytest.raises(vs.Error, match=f"superslomo: .*{message}"):
        superslomo(make_clip(), model=MODEL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor_num": 0}, "factor_num must be a positive integer"),
        ({"factor_num": -2}, "factor_num must be a positive integer"),
        ({"factor_den": 0}, "factor_den must be a positive integer"),
        ({"factor_num": 2, "factor_den": 3}, "factor_num/factor_den = 2/3, which is < 1"),
        ({"fps_num": 10}, r"fps 10 over the clip's 24000/1001 gives a factor of 1001/2400, which is < 1"),
        ({"fps_num": 60, "fps_den": 0}, "fps_den must be a positive integer"),
        ({"sc_threshold": 0}, r"sc_threshold must be in \(0, 1\]"),
        ({"sc_threshold": 1.5}, r"sc_threshold must be in \(0, 1\]"),
        ({"cache_mb": -1}, "cache_mb must be a non-negative int"),
        ({"batch_size": 0}, "batch_size must be a positive int or None"),
        ({"tile": 50}, "tile must be None"),
        ({"model": "/no/such/weights.ckpt"}, "/no/such/weights.ckpt: no such weights file"),
        ({"motion": "cubic"}, "motion must be one of 'auto', 'linear', 'quadratic'"),
        ({"motion": "quadratic"}, "motion='quadratic' needs DIS flows; it does not work with flow='net': use motion="),
    ],
)
def test_bad_arguments_raise_vs_error(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("model", MODEL)
    with pytest.raises(vs.Error, match=f"^superslomo: {message}"):
        superslomo(clip_from_arrays(random_frames(2, 8, 8)), **kwargs)  # type: ignore[arg-type]  # bad arguments on purpose


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only messages")
def test_gpu_requests_without_cuda_are_refused() -> None:
    clip = clip_from_arrays(random_frames(2, 8, 8))
    with pytest.raises(vs.Error, match="superslomo: device_index=0 asks for a CUDA GPU but torch sees none"):
        superslomo(clip, device_index=0, model=MODEL)
    with pytest.raises(vs.Error, match="superslomo: fp16=True needs a CUDA device"):
        superslomo(clip, fp16=True, model=MODEL)


@pytest.mark.parametrize("factor", [10**6, 10**9])
def test_huge_factors_are_one_line_errors_at_once(factor: int) -> None:
    clip = clip_from_arrays(random_frames(2, 8, 8))
    started = time.perf_counter()
    with pytest.raises(vs.Error) as refused:
        superslomo(clip, factor, model=MODEL)
    assert time.perf_counter() - started < 1
    assert str(refused.value).startswith(f"superslomo: factor {factor} is above the limit of") and "\n" not in str(
        refused.value
    )


def test_a_pair_is_computed_in_chunks_bounded_by_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from vs_superslomo import engine, plugin

    clip = clip_from_arrays(random_frames(2, 24, 40))
    reference = superslomo(clip, 8, model=MODEL)
    expected = {n: read_frame(reference.get_frame(n)) for n in range(16)}
    calls: list[int] = []
    real = engine.Interpolator.interpolate_with_confidence

    def recording(
        self: engine.Interpolator, a: np.ndarray, b: np.ndarray, times: list[float], *around: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(times))
        return real(self, a, b, times, *around)

    monkeypatch.setattr(engine.Interpolator, "interpolate_with_confidence", recording)
    monkeypatch.setattr(plugin, "_MIN_CHUNK_BYTES", 3 * 3 * 24 * 40 * 4)  # three frames
    chunked = superslomo(clip, 8, cache_mb=0, model=MODEL)
    for n in (5, 1, 7, 2):
        assert np.abs(read_frame(chunked.get_frame(n)) - expected[n]).max() < 1e-6
    assert calls == [3, 3, 1, 3]  # chunks 1, 0, 2 of the 7 frames, then 0 again: cache_mb=0 keeps the latest

    # A large factor on large frames: one output frame computes one chunk, never the whole pair.
    calls.clear()

    def counting(
        self: engine.Interpolator, a: np.ndarray, b: np.ndarray, times: list[float], *_: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(times))
        return torch.zeros((len(times), *a.shape)), torch.zeros((len(times), *a.shape[1:]))

    monkeypatch.setattr(engine.Interpolator, "interpolate_with_confidence", counting)
    monkeypatch.setattr(plugin, "_MIN_CHUNK_BYTES", 0)
    big = clip_from_arrays(random_frames(2, 256, 256))
    superslomo(big, 1000, cache_mb=8, model=MODEL).get_frame(500)
    assert calls == [8 * 2**19 // (3 * 256 * 256 * 4)]  # half the cache's worth of frames


# --- per-frame timestamps (variable frame rate) --------------------------------------------------------

# The reproduction clip's timing, shortened: 4 frames at 25 fps, then 3 at 12.5 fps, and frames at odd times.
VFR_TIMES = [Fraction(0), Fraction(1, 25), Fraction(2, 25), Fraction(3, 25), Fraction(5, 25), Fraction(7, 25)]
VFR_TIMES += [Fraction(7, 25) + Fraction(1, 30)]  # a frame not on the output grid


def vfr_oracle(times: list[Fraction], fps: Fraction, count: int) -> list[tuple[int, Fraction]]:
    """(left, t) of output frames 0..count-1 by the definition: a linear scan over the source frames."""
    result, left = [], 0
    for n in range(count):
        while left + 1 < len(times) and times[left + 1] <= n / fps:
            left += 1
        nxt = times[left + 1] if left + 1 < len(times) else None
        result.append((left, Fraction(0) if nxt is None else (n / fps - times[left]) / (nxt - times[left])))
    return result


@pytest.mark.parametrize("dedup", [False, True])
def test_timestamps_place_every_output_frame_at_its_true_time(dedup: bool) -> None:
    frames = random_frames(len(VFR_TIMES), 8, 12, seed=4)
    clip = clip_from_arrays(frames, fps=(50, 3), props=[{"Index": i} for i in range(len(frames))])
    out = superslomo(clip, fps_num=50, timestamps=[float(t) for t in VFR_TIMES], dedup=dedup, model=MODEL)
    # The last frame lasts as long as the one before it: the clip ends at 7/25 + 2/30 s, 17.33 frames at 50.
    assert (out.num_frames, out.fps_num, out.fps_den) == (18, 50, 1)
    for n, (left, t) in enumerate(vfr_oracle(VFR_TIMES, Fraction(50), out.num_frames)):
        frame = out.get_frame(n)
        props = frame.props
        assert (props["SuperSloMoSource"], props["SuperSloMoT"]) == (left, float(t)), n
        assert props["Index"] == left and (props["_DurationNum"], props["_DurationDen"]) == (1, 50)
        data = read_frame(frame)
        if t == 0:
            assert np.array_equal(data, frames[left])  # a source frame's own time: bit-exact
        else:
            assert props["SuperSloMoNext"] == left + 1 and not np.array_equal(data, frames[left])


def test_timestamp_output_is_identical_in_any_order_and_thread_count_computing_each_pair_once() -> None:
    frames = random_frames(len(VFR_TIMES), 24, 40, seed=9)
    clip = clip_from_arrays(frames)
    times = [*VFR_TIMES, VFR_TIMES[-1] + Fraction(1, 10)]  # with the clip's end
    old = core.num_threads
    try:
        core.num_threads = 1
        sequential = CountingModel()
        out = superslomo(clip, fps_num=100, timestamps=times, model=sequential)
        count = out.num_frames
        reference = all_frames(out, list(range(count)), False)
        core.num_threads = 4
        model = CountingModel()
        shuffled = random.Random(5).sample(range(count), count)
        got = all_frames(superslomo(clip, fps_num=100, timestamps=times, model=model), shuffled, True)
    finally:
        core.num_threads = old
    assert count == 42 and all(np.array_equal(got[n], reference[n]) for n in range(count))
    assert sequential.flows == model.flows == 6  # six source pairs, each computed once


def test_even_timestamps_give_the_factor_modes_frames() -> None:
    frames = random_frames(4, 8, 8, seed=2)
    clip = clip_from_arrays(frames, fps=(25, 1))
    plain = superslomo(clip, 5, 2, model=MODEL)
    timed = superslomo(clip, fps_num=125, fps_den=2, timestamps=[Fraction(i, 25) for i in range(4)], model=MODEL)
    assert timed.num_frames == plain.num_frames == 10
    for n in range(10):
        a, b = plain.get_frame(n), timed.get_frame(n)
        assert np.array_equal(read_frame(a), read_frame(b))
        assert a.props["SuperSloMoT"] == b.props["SuperSloMoT"]


def test_timestamps_map_ten_thousand_frames_quickly() -> None:
    n = 10_000
    clip = core.std.BlankClip(format=vs.RGBS, width=8, height=8, length=n, fpsnum=30)
    times = [Fraction(i, 30) + Fraction(i % 3, 1000) for i in range(n)]  # jittered, as phones record
    started = time.perf_counter()
    out = superslomo(clip, fps_num=60, timestamps=times, sc=False, model=MODEL)
    assert time.perf_counter() - started < 5
    assert out.num_frames == math.ceil((times[-1] + times[-1] - times[-2]) * 60)
    expected = vfr_oracle(times, Fraction(60), out.num_frames)
    started = time.perf_counter()
    for k in range(0, out.num_frames, 97):
        props = out.get_frame(k).props
        assert (props["SuperSloMoSource"], props["SuperSloMoT"]) == (expected[k][0], float(expected[k][1]))
    assert time.perf_counter() - started < 20  # 207 frames, each looked up by bisection


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timestamps": [0, 0.04, 0.08]}, r"timestamps need fps_num \(and fps_den\): the constant output rate"),
        ({"timestamps": [0, 0.04, 0.08], "fps_num": 50, "slowmo": True}, "timestamps do not take slowmo"),
        ({"timestamps": [0, 0.04], "fps_num": 50}, "timestamps has 2 values for a clip of 3 frames"),
        ({"timestamps": [0, 0.08, 0.04], "fps_num": 50}, r"timestamps must strictly increase, but timestamps\[2\]"),
        ({"timestamps": [0, 0.04, 0.08], "fps_num": 50, "fps_den": 0}, "fps_den must be a positive integer"),
    ],
)
def test_bad_timestamps_raise_vs_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(vs.Error, match=f"^superslomo: {message}"):
        superslomo(clip_from_arrays(random_frames(3, 8, 8)), model=MODEL, **kwargs)  # type: ignore[arg-type]  # bad arguments on purpose


def test_quadratic_motion_takes_the_frames_around_each_pair_except_past_the_ends_and_cuts() -> None:
    """Accelerating motion (x = 8s + 4s² px): a pair with frames on both sides takes them; one at an end of
    the clip or next to a cut stays linear; ``motion="linear"`` and the flow net never take them."""
    frames = accelerating_frames([-4, 0, 12, 32])
    model = zero_refinement_model()
    engine = Interpolator(model, torch.device("cpu"), flow="dis", backend="torch")

    def middles(out: vs.VideoNode) -> list[np.ndarray]:
        return [read_frame(out.get_frame(n)) for n in (1, 3, 5)]  # t = 1/2 of pairs (0, 1), (1, 2), (2, 3)

    def expected(*pairs: tuple[int, int | None, int | None]) -> list[np.ndarray]:
        def around(i: int | None) -> np.ndarray | None:
            return None if i is None else frames[i]

        return [
            engine.interpolate(frames[a], frames[a + 1], [0.5], around(b), around(c))[0].numpy() for a, b, c in pairs
        ]

    clip = clip_from_arrays(frames)
    quadratic = middles(superslomo(clip, 2, model=model, flow="dis", backend="torch"))
    for got, want in zip(quadratic, expected((0, None, None), (1, 0, 3), (2, None, None)), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    linear = middles(superslomo(clip, 2, model=model, flow="dis", motion="linear", backend="torch"))
    for got, want in zip(linear, expected((0, None, None), (1, None, None), (2, None, None)), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(quadratic[1] - linear[1]).max() > 0.02  # a pixel apart on a smooth picture
    # A cut between frames 2 and 3 (a prop on frame 3): pair (1, 2) is next to it and stays linear.
    cut = clip_from_arrays(frames, props=[{}, {}, {}, {"_SceneChangePrev": 1}])
    across = middles(superslomo(cut, 2, model=model, flow="dis", backend="torch"))
    np.testing.assert_allclose(across[1], linear[1], atol=1e-6)
    net = superslomo(clip, 2, model=model, flow="net", backend="torch")
    net_linear = superslomo(clip, 2, model=model, flow="net", motion="linear", backend="torch")
    assert all(np.array_equal(a, b) for a, b in zip(middles(net), middles(net_linear), strict=True))


def test_splatting_is_the_default_with_dis_flows_only_and_either_way_on_request() -> None:
    """``splat=None`` splats the flows to t with DIS flows and keeps the paper's estimate with the flow net
    (the original checkpoint's path); True and False turn it on or off for either; anything else is an error."""
    frames = [0.3 * random_frames(1, 32, 64, seed=5, grain=4)[0] for _ in range(3)]
    for k, frame in enumerate(frames):  # a bright square moving 6 px a frame over a still background
        frame[:, 8:16, 10 + 6 * k : 18 + 6 * k] = 1.0
    clip = clip_from_arrays(frames)

    def middle(**kwargs: object) -> np.ndarray:
        return read_frame(superslomo(clip, 2, model=MODEL, backend="torch", sc=False, **kwargs).get_frame(1))  # type: ignore[arg-type]  # options of several types

    for flow, default in (("dis", True), ("net", False)):
        chosen = middle(flow=flow)
        assert np.array_equal(chosen, middle(flow=flow, splat=default))
        assert np.abs(chosen - middle(flow=flow, splat=not default)).max() > 1e-3
    assert Interpolator(MODEL, torch.device("cpu"), flow="dis", backend="torch").splat
    with pytest.raises(vs.Error, match=r"^superslomo: splat must be True, False or None"):
        superslomo(clip, model=MODEL, splat="yes")  # type: ignore[arg-type]  # deliberately wrong: the error is tested


def test_quadratic_motion_with_timestamps_takes_the_neighbours_at_their_real_distances() -> None:
    """x = 8s + 4s² px at s = -2, 0, 1 and 2 (a variable rate): the frame before the pair (1, 2) lies two pair
    intervals before it. At that distance both ends see A = 8 and the frame at s = 1/2 lands on the picture
    (5 px); read as evenly spaced, A0 would be 12 (a quarter pixel off), and linear motion is a pixel off."""
    *frames, truth = accelerating_frames([0, 0, 12, 32, 5])
    model = zero_refinement_model()
    engine = Interpolator(model, torch.device("cpu"), flow="dis", backend="torch")
    clip = clip_from_arrays(frames)
    out = superslomo(clip, fps_num=2, timestamps=[0, 2, 3, 4], model=model, flow="dis", backend="torch", sc=False)
    frame = out.get_frame(5)  # at 2.5 s: t = 1/2 between frames 1 and 2
    assert (frame.props["SuperSloMoT"], frame.props["SuperSloMoSource"]) == (0.5, 1)
    got = read_frame(frame)
    spaced = engine.interpolate(frames[1], frames[2], [0.5], frames[0], frames[3], spacing=(2.0, 1.0))[0].numpy()
    np.testing.assert_allclose(got, spaced, atol=1e-6)
    even = engine.interpolate(frames[1], frames[2], [0.5], frames[0], frames[3])[0].numpy()
    linear = engine.interpolate(frames[1], frames[2], [0.5])[0].numpy()
    inside = (slice(None), slice(16, -16), slice(40, -40))
    errors = [float(np.abs(x - truth)[inside].mean()) for x in (got, even, linear)]
    assert errors[0] < errors[1] / 2 < errors[2] / 4, errors


def test_each_dis_flow_is_computed_once_for_all_the_pairs_that_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With quadratic motion a pair's flows to its neighbours are the neighbouring pairs' own: in any order,
    five frames take the eight flows between consecutive frames, two a pair, as linear motion does."""
    calls: list[int] = []

    def counting(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        calls.append(1)
        return dis_seeded(a, b)

    monkeypatch.setattr("vs_superslomo.flow.dis_seeded", counting)
    clip = clip_from_arrays(accelerating_frames([-4, 0, 12, 32, 60]))
    out = superslomo(clip, 2, model=zero_refinement_model(), flow="dis", backend="torch", sc=False)
    for n in (5, 1, 7, 3):  # pairs 2, 0, 3, 1: every pair with both neighbours asks for four flows
        out.get_frame(n)
    assert len(calls) == 8


def test_a_vs_rife_call_runs_unchanged() -> None:
    """vs-rife's keywords with their no-op values, and ``sc_threshold=None``: no detection of the filter's own
    (the picture and its negative are interpolated), while the input's props still mark cuts."""
    clip, _ = cut_clip()
    device = 0 if torch.cuda.is_available() else None
    out = superslomo(
        clip,
        factor_num=2,
        factor_den=1,
        fps_num=None,
        fps_den=None,
        sc=True,
        sc_threshold=None,
        device_index=device,
        scale=1.0,
        ensemble=False,
        trt=False,
        auto_download=False,
        model=MODEL,
    )
    assert out.get_frame(3).props["SuperSloMoT"] == 0.5 and "SuperSloMoCut" not in out.get_frame(3).props
    assert superslomo(clip, 2, model=MODEL).get_frame(3).props["SuperSloMoCut"] == 1  # the default detects pair (1, 2)
    marked, _ = cut_clip([{}, {"_SceneChangeNext": 1}, {}, {}])
    frame = superslomo(marked, 2, sc=True, sc_threshold=None, model=MODEL).get_frame(3)
    assert frame.props["SuperSloMoT"] == 0.0 and frame.props["SuperSloMoCut"] == 1  # pair (1, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 2.0}, r"scale must be a number from 0\.25 to 1, or None \(by the frame's size\), got 2\.0"),
        ({"ensemble": True}, "ensemble=True .*leave it out"),
        ({"trt": True}, "trt=True: TensorRT is not a backend here; choose backend="),
        ({"trt_debug": False}, "trt_debug= is a TensorRT setting.*backend="),
        ({"trt_cache_dir": "/tmp"}, "trt_cache_dir= is a TensorRT setting"),
        ({"auto_download": True}, "auto_download: nothing is downloaded here"),
        ({"num_streams": 0}, r"num_streams must be an int from 1 to 16, or None \(by the frame's size\), got 0$"),
        ({"model": "4.22"}, r"model='4.22' looks like a vs-rife model version.*leave it out"),
    ],
)
def test_vs_rife_options_without_a_counterpart_are_one_line_each(options: dict[str, object], message: str) -> None:
    clip, _ = cut_clip()
    with pytest.raises(vs.Error, match=f"^superslomo: {message}") as caught:
        superslomo(clip, **({"model": MODEL} | options))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_vs_rife_positional_order_is_refused_not_misread() -> None:
    """vs-rife's ``rife(clip, device_index, model, factor_num)`` read in this filter's order would put the
    model name on factor_den and the factor on fps_num."""
    clip, _ = cut_clip()
    with pytest.raises(vs.Error, match=r"factor_den must be an int, got '4\.22'.*pass them by keyword"):
        superslomo(clip, 0, "4.22", 2, model=MODEL)  # type: ignore[arg-type]


def test_scale_reaches_the_engine_and_keeps_the_frame_size(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, ...]] = []
    original = Interpolator.network_size

    def spy(self: Interpolator, height: int, width: int, scale: float) -> tuple[int, int]:
        size = original(self, height, width, scale)
        sizes.append(size)
        return size

    monkeypatch.setattr(Interpolator, "network_size", spy)
    clip = clip_from_arrays(accelerating_frames((0, 4, 8), 96, 128))
    half = superslomo(clip, 2, model=zero_refinement_model(), scale=0.5, flow="dis", fallback=0)
    frame = half.get_frame(1)
    assert (frame.width, frame.height) == (128, 96) and frame.props["SuperSloMoT"] == 0.5
    assert sizes == [(64, 96)]  # padded 128×160, halved and rounded up to multiples of 32
