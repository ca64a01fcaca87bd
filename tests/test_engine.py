"""The inference engine alone: padding, tiling, the out-of-memory fallback and device selection."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import accelerating_frames, make_model, random_frames, zero_refinement_model
from torch import Tensor

from vs_superslomo import engine, flow
from vs_superslomo.engine import EngineError, Interpolator
from vs_superslomo.flow import FlowSource
from vs_superslomo.sizing import FAR_MARGIN, MARGIN, padded_size

CPU = torch.device("cpu")
TIMES = [0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def pair() -> list[np.ndarray]:
    return random_frames(2, 192, 256, seed=3)


@pytest.fixture(scope="module")
def whole(pair: list[np.ndarray]) -> Tensor:
    # The network's own frames (no fallback: a tiny random network's motion is trusted nowhere, and every
    # frame would be the blend, tiled or not).
    return Interpolator(make_model(), CPU, fallback=0.0).interpolate(pair[0], pair[1], TIMES)


def psnr(a: Tensor, b: Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize(("tile", "flow"), [(128, "net"), (160, "net"), (128, "dis")])
def test_tiles_leave_no_visible_seam(pair: list[np.ndarray], whole: Tensor, tile: int, flow: FlowSource) -> None:
    trust = Interpolator(make_model(), CPU, flow=flow, fallback=0.0).interpolate_with_confidence(
        pair[0], pair[1], TIMES
    )[1]
    if flow == "dis":  # each tile cuts its part out of the whole frame's DIS flows
        whole = Interpolator(make_model(), CPU, flow="dis", fallback=0.0).interpolate(pair[0], pair[1], TIMES)
    engine = Interpolator(make_model(), CPU, tile=tile, flow=flow, fallback=0.0)
    tiled, tiled_trust = engine.interpolate_with_confidence(pair[0], pair[1], TIMES)
    assert tiled.shape == whole.shape and tiled_trust.shape == trust.shape
    # Below two 8-bit code values everywhere, seams included, and far below anything visible on average.
    assert (tiled - whole).abs().max() < 2 / 255
    assert psnr(tiled, whole) > 60
    assert not torch.equal(tiled, whole)  # the tiled path really ran
    # The confidence is cross-faded like the frames: local means near a tile's edge see less, nothing more.
    assert float((tiled_trust - trust).abs().mean()) < 0.02


def test_frames_over_the_memory_budget_are_tiled_automatically(
    pair: list[np.ndarray], whole: Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = Interpolator(make_model(), CPU, fallback=0.0)
    per_sample = eng._bytes_per_sample(192, 256)
    monkeypatch.setattr(engine, "_CPU_BUDGET", per_sample / 2)
    assert eng.auto_tile(192, 256) == 128 and eng.auto_tile(64, 64) is None
    tiled = eng.interpolate(pair[0], pair[1], TIMES)
    assert psnr(tiled, whole) > 60 and not torch.equal(tiled, whole)


def test_out_of_memory_halves_batch_then_tile(
    pair: list[np.ndarray], whole: Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device that only fits one 128-pixel tile at a time: the engine gets there instead of failing."""
    eng = Interpolator(make_model(), CPU, batch_size=3, fallback=0.0)
    original = Interpolator._forward_whole
    seen: list[tuple[int, int, int]] = []

    def tight(
        self: Interpolator,
        x0: Tensor,
        x1: Tensor,
        times: list[float],
        batch: int,
        flows: tuple[Tensor, Tensor] | None,
        accel: tuple[Tensor, Tensor] | None = None,
        scale: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        seen.append((batch, *x0.shape[-2:]))
        if batch > 1 or max(x0.shape[-2:]) > 128:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(self, x0, x1, times, batch, flows, accel, scale)

    monkeypatch.setattr(Interpolator, "_forward_whole", tight)
    out = eng.interpolate(pair[0], pair[1], TIMES)
    h, w = eng.upload(pair[0], pair[1])[0].shape[-2:]  # 192×256 with its margin
    assert seen[:3] == [(3, h, w), (1, h, w), (1, 128, 128)]
    assert psnr(out, whole) > 60
    monkeypatch.setattr(Interpolator, "_forward_whole", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError()))
    with pytest.raises(torch.OutOfMemoryError):
        eng.interpolate(pair[0], pair[1], TIMES)


def test_empty_times_and_bad_arguments(pair: list[np.ndarray]) -> None:
    eng = Interpolator(make_model(), CPU)
    assert eng.interpolate(pair[0], pair[1], []).shape == (0, 3, 192, 256)
    with pytest.raises(EngineError, match=r"frames must both be \(3, H, W\)"):
        eng.interpolate(pair[0], pair[1][:, :10], TIMES)
    for bad in (0, 100, 48, True):
        with pytest.raises(EngineError, match="tile must be None"):
            Interpolator(make_model(), CPU, tile=bad)
    with pytest.raises(EngineError, match="device_index must be an int"):
        engine.select_device("0")  # type: ignore[arg-type]  # deliberately wrong: the error is tested
    assert engine.select_device(-1) == CPU


@pytest.mark.parametrize(("warp", "margin"), [("exact", MARGIN), ("legacy", 0)])
def test_frames_get_a_replicated_margin_with_the_exact_warp_only(warp: str, margin: int) -> None:
    frame = random_frames(1, 40, 70, seed=1)[0]
    eng = Interpolator(make_model(warp=warp), CPU)
    x0, _ = eng.upload(frame, frame)
    h, w = x0.shape[-2:]
    far = min(margin, FAR_MARGIN)
    assert h % 32 == w % 32 == 0 and h >= 40 + margin + far and w >= 70 + margin + far
    assert torch.equal(eng.unpad(x0, 40, 70)[0], torch.from_numpy(frame))
    if margin:  # the picture's first and last rows and columns, repeated outwards
        picture = x0[0, :, margin : margin + 40, margin : margin + 70]
        assert torch.equal(x0[0, :, :margin, margin : margin + 70], picture[:, :1].expand(-1, margin, -1))
        assert torch.equal(x0[0, :, margin : margin + 40, :margin], picture[:, :, :1].expand(-1, -1, margin))
        below, right = h - margin - 40, w - margin - 70
        assert torch.equal(x0[0, :, margin + 40 :, margin : margin + 70], picture[:, -1:].expand(-1, below, -1))
        assert torch.equal(x0[0, :, margin : margin + 40, margin + 70 :], picture[:, :, -1:].expand(-1, -1, right))


def test_the_padding_saves_a_block_where_a_smaller_far_margin_allows() -> None:
    assert padded_size(360, 640, MARGIN) == (384, 672)  # 360 + 16 + 8: not 416
    assert padded_size(380, 520, MARGIN) == (416, 544)
    assert padded_size(1080, 1920, MARGIN) == (1120, 1952)  # as before: 1080 + 32 and 1920 + 32 fit the same blocks
    assert padded_size(368, 640, MARGIN) == (416, 672)  # 368 + 24 passes 384: the next block
    assert padded_size(360, 640, 0) == (384, 640)  # no margin (the legacy warp): the multiple of 32 alone


def test_neighbour_frames_give_quadratic_motion_with_dis_flows() -> None:
    """A picture accelerating to the right (x = 8s + 4s² px at times s = -1, 0, 1, 2): with the frames before
    and after the pair, the frame at t = 1/2 lands where the picture is (5 px), not halfway (6 px)."""
    before, frame0, frame1, after, truth = accelerating_frames([-4, 0, 12, 32, 5])
    model = zero_refinement_model()
    dis = Interpolator(model, CPU, flow="dis")
    linear = dis.interpolate(frame0, frame1, [0.5])[0]
    quadratic = dis.interpolate(frame0, frame1, [0.5], before=before, after=after)[0]
    inside = (slice(None), slice(16, -16), slice(40, -40))  # away from what enters at the left edge
    scores = [psnr(x[inside], torch.from_numpy(truth)[inside]) for x in (linear, quadratic)]
    assert scores[0] < 40 < 60 < scores[1], scores  # linear is a pixel off; quadratic lands on it
    # One neighbour alone cannot be checked against the other end: the linear path exactly, as with none.
    for one_side in ((before, None), (None, after)):
        assert torch.equal(dis.interpolate(frame0, frame1, [0.5], *one_side)[0], linear)
    # The flow net stays linear.
    net = Interpolator(model, CPU, flow="net")
    quadratic_asked = net.interpolate(frame0, frame1, [0.5], before=before, after=after)
    assert torch.equal(quadratic_asked, net.interpolate(frame0, frame1, [0.5]))


def interp_inputs(engine: Interpolator) -> list[tuple[int, ...]]:
    """The shapes the engine's interpolation U-Net is given from now on, filled as it runs."""
    seen: list[tuple[int, ...]] = []
    run = engine.nets.interp_rest

    def spy(x: Tensor) -> Tensor:
        seen.append(tuple(x.shape))
        return run(x)

    engine.nets = replace(engine.nets, interp_rest=spy)
    return seen


def test_scale_runs_the_networks_small_and_warps_at_full_size() -> None:
    frames = accelerating_frames((0, 3, 6), 96, 128)  # a smooth picture moving right, 3 px a frame
    model = zero_refinement_model()  # the frames are the pair warped along the flows: the scale's effect alone
    full = Interpolator(model, CPU, flow="dis", fallback=0.0)
    half = Interpolator(model, CPU, flow="dis", fallback=0.0, scale=0.5)
    seen = interp_inputs(half)
    a, trust_a = full.interpolate_with_confidence(frames[0], frames[2], [0.5])
    b, trust_b = half.interpolate_with_confidence(frames[0], frames[2], [0.5])
    # Padded 96×128 is 128×160 (16 px margin, multiples of 32); half of it, rounded up to 32s, is 64×96.
    assert seen and all(shape[-2:] == (64, 96) for shape in seen)
    assert a.shape == b.shape == (1, 3, 96, 128) and trust_b.shape == trust_a.shape
    assert psnr(a, b) > 40 and not torch.equal(a, b)  # a uniform shift survives the round trip
    assert torch.equal(b, half.interpolate(frames[0], frames[2], [0.5]))  # deterministic
    truth = torch.from_numpy(frames[1])  # half way
    inner = (slice(None), slice(8, -8), slice(16, -16))  # away from what entered or left the picture
    assert psnr(b[0][inner], truth[inner]) > 35


def test_scale_none_halves_the_networks_from_1280x720_up_and_keeps_smaller_frames_whole() -> None:
    engine = Interpolator(make_model(), CPU)
    assert engine.scale is None
    assert engine.scale_for(768, 1312) == 0.5  # 1280×720 padded
    assert engine.scale_for(608, 800) == 1.0  # 768×576 padded
    assert Interpolator(make_model(), CPU, scale=1.0).scale_for(768, 1312) == 1.0  # asked for: kept
    seen = interp_inputs(engine)
    frames = accelerating_frames((0, 3), 720, 1280)
    out = engine.interpolate(frames[0], frames[1], [0.5])
    assert out.shape == (1, 3, 720, 1280) and seen == [(1, engine.model.interp.conv1.out_channels, 384, 672)]


@pytest.mark.parametrize(("scale", "dis_size"), [(0.5, (72, 96)), (None, (96, 128)), (1.0, (96, 128))])
def test_dis_runs_halfway_between_the_networks_size_and_the_frames(
    monkeypatch: pytest.MonkeyPatch, scale: float | None, dis_size: tuple[int, int]
) -> None:
    seen: list[tuple[int, ...]] = []
    seeded = flow.dis_seeded

    def spy(g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
        seen.append(g0.shape)
        return seeded(g0, g1)

    monkeypatch.setattr(flow, "dis_seeded", spy)
    frames = accelerating_frames((0, 3), 96, 128)
    engine = Interpolator(make_model(), CPU, flow="dis", scale=scale)
    flows = engine.flows(frames[0], frames[1])
    assert seen == [dis_size, dis_size]  # both directions, at 0.75 of the frame for networks at 0.5
    assert flows is not None and flows[0].shape[-2:] == (128, 160)  # brought back to the padded frame's size


@pytest.mark.parametrize("scale", [0.2, 1.5, True, "0.5"])
def test_scale_out_of_range_is_an_error_naming_it(scale: object) -> None:
    with pytest.raises(EngineError, match=r"scale must be a number from 0\.25 to 1\.0"):
        Interpolator(make_model(), CPU, scale=scale)  # type: ignore[arg-type]
