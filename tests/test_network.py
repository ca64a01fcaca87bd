"""The network against an independent implementation written from the reference formulas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs
from helpers import bias, make_model, random_frames, write_original_ckpt
from torch import Tensor

from vs_superslomo import superslomo
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.network import DEFAULT_MEAN, SuperSloMo, UNet, flows_at
from vs_superslomo.warp import backwarp

# --- an independent reference, from the formulas of the paper and the public port -----------------


def wide(x: Tensor) -> Tensor:
    """One pair's tensor as a batch of 3 (``synthesize`` takes a batch for its three times)."""
    return x.expand(3, -1, -1, -1)


def ref_unet(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """The U-Net as functional calls on a state dict (port's key names)."""

    def conv(x: Tensor, name: str) -> Tensor:
        w = sd[f"{name}.weight"]
        return F.leaky_relu(F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2), 0.1)

    x = conv(conv(x, "conv1"), "conv2")
    skips = [x]
    for i in range(1, 6):
        x = conv(conv(F.avg_pool2d(x, 2), f"down{i}.conv1"), f"down{i}.conv2")
        skips.append(x)
    x = skips.pop()
    for i in range(1, 6):
        x = conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), f"up{i}.conv1")
        x = conv(torch.cat((x, skips.pop()), 1), f"up{i}.conv2")
    return conv(x, "conv3")


def ref_legacy_warp(img: Tensor, flow: Tensor) -> Tensor:
    """The port's backWarp as PyTorch 0.4.1 ran it (grid_sample then meant align_corners=True)."""
    _, _, h, w = img.shape
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    x = torch.tensor(grid_x, dtype=torch.float32) + flow[:, 0]
    y = torch.tensor(grid_y, dtype=torch.float32) + flow[:, 1]
    grid = torch.stack((2 * (x / w - 0.5), 2 * (y / h - 0.5)), dim=3)
    return F.grid_sample(img, grid, align_corners=True)


def ref_interpolate(fc: dict[str, Tensor], at: dict[str, Tensor], f0: Tensor, f1: Tensor, t: float) -> Tensor:
    mean = torch.tensor(DEFAULT_MEAN).view(1, 3, 1, 1)
    i0, i1 = f0 - mean, f1 - mean
    flow = ref_unet(fc, torch.cat((i0, i1), 1))
    f01, f10 = flow[:, :2], flow[:, 2:]
    ft0 = -(1 - t) * t * f01 + t * t * f10
    ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
    g0, g1 = ref_legacy_warp(i0, ft0), ref_legacy_warp(i1, ft1)
    o = ref_unet(at, torch.cat((i0, i1, f01, f10, ft1, ft0, g1, g0), 1))
    ft0f, ft1f = o[:, :2] + ft0, o[:, 2:4] + ft1
    v0 = torch.sigmoid(o[:, 4:5])
    v1 = 1 - v0
    num = (1 - t) * v0 * ref_legacy_warp(i0, ft0f) + t * v1 * ref_legacy_warp(i1, ft1f)
    return (num / ((1 - t) * v0 + t * v1) + mean).clamp(0, 1)


# --- tests -------------------------------------------------------------------------------------------


def test_full_size_parameter_counts_and_port_keys() -> None:
    flow, interp = UNet(6, 4), UNet(20, 5)
    assert sum(p.numel() for p in flow.parameters()) == 19_794_116
    assert sum(p.numel() for p in interp.parameters()) == 19_816_357
    names = [
        "conv1",
        "conv2",
        *(f"{d}{i}.conv{j}" for d in ("down", "up") for i in range(1, 6) for j in (1, 2)),
        "conv3",
    ]
    assert set(flow.state_dict()) == {f"{n}.{p}" for n in names for p in ("weight", "bias")}


def test_width_multiplier_scales_channels() -> None:
    half = UNet(6, 4, width=0.5)
    assert half.conv1.out_channels == 16 and half.down5.conv2.out_channels == 256
    assert 9.5e6 < sum(p.numel() for p in SuperSloMo(width=0.5).parameters()) < 10.5e6


def test_output_has_leaky_relu() -> None:
    net = UNet(6, 4, width=0.0625)
    with torch.no_grad():
        net.conv3.weight.zero_()
        bias(net.conv3).fill_(-1.0)
    out = net(torch.rand(1, 6, 32, 32))
    assert torch.allclose(out, torch.full_like(out, -0.1))


def test_exact_warp_is_identity_at_zero_flow_and_legacy_is_not() -> None:
    img = torch.rand(2, 3, 32, 64)
    zero = torch.zeros(2, 2, 32, 64)
    assert torch.allclose(backwarp(img, zero, "exact"), img, atol=1e-6)
    legacy = backwarp(img, zero, "legacy")
    assert torch.allclose(legacy[..., 0, 0], img[..., 0, 0], atol=1e-6)  # only the top-left corner stays
    assert (legacy - img).abs().max() > 0.05
    assert torch.allclose(legacy, ref_legacy_warp(img, zero), atol=1e-6)


def test_exact_warp_moves_by_the_flow_with_zero_fill() -> None:
    img = torch.rand(1, 3, 32, 32)
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, 0] = 3.0  # sample 3 px to the right
    out = backwarp(img, flow, "exact")
    assert torch.allclose(out[..., :-3], img[..., 3:], atol=1e-6)
    assert out[..., -3:].abs().max() == 0
    with pytest.raises(ValueError, match="warp must be one of"):
        backwarp(img, flow, "bogus")  # type: ignore[arg-type]  # deliberately wrong: the error is tested


@pytest.mark.parametrize("resample", ["bilinear", "bicubic"])
@pytest.mark.parametrize("warp", ["exact", "legacy"])
def test_cpu_inference_warps_by_opencv_equal_grid_sample(
    warp: str, resample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without gradients the CPU warps go through OpenCV's remap; they equal grid_sample on the same grid (taps
    outside the picture 0), for any channel count, and with gradients wanted grid_sample runs (training)."""
    calls: list[int] = []
    remap = cv2.remap

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return remap(*args, **kwargs)

    monkeypatch.setattr(cv2, "remap", counted)
    torch.manual_seed(0)
    for channels in (1, 2, 3, 5):
        img = torch.rand(2, channels, 40, 56)
        flow = torch.randn(2, 2, 40, 56) * 3 + torch.tensor([9.0, -4.0]).view(1, 2, 1, 1)  # partly out of frame
        h, w = img.shape[-2:]
        x = torch.arange(w).view(1, 1, w) + flow[:, 0]
        y = torch.arange(h).view(1, h, 1) + flow[:, 1]
        grid = (
            torch.stack((2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1), 3)
            if warp == "exact"
            else torch.stack((2 * x / w - 1, 2 * y / h - 1), 3)
        )
        want = F.grid_sample(img, grid, mode=resample, padding_mode="zeros", align_corners=True)
        before = len(calls)
        with torch.no_grad():
            got = backwarp(img, flow, warp, resample)  # type: ignore[arg-type]
        assert len(calls) > before and (got - want).abs().max() < 1e-5
        assert (want - img).abs().max() > 0.3 and (want == 0).any()  # really moved, partly out of frame
        trained = backwarp(img.requires_grad_(), flow, warp, resample)  # type: ignore[arg-type]
        trained.sum().backward()
        assert img.grad is not None and (trained - want).abs().max() < 1e-6
    flow[1, 0, 5, 7] = float("nan")  # a broken flow stays visible (NaN) as grid_sample leaves it
    with torch.no_grad():
        broken = backwarp(img.detach(), flow, warp, resample)  # type: ignore[arg-type]
    assert broken[1, :, 5, 7].isnan().all() and broken.isnan().sum() == img.shape[1]


def test_model_matches_reference_formulas() -> None:
    """The module's forward (legacy warp) equals the functional reference, batched over three t."""
    model = make_model(width=0.125, warp="legacy")
    f0, f1 = (torch.tensor(a)[None] for a in random_frames(2, 64, 96))
    t = torch.tensor([0.25, 0.5, 0.8])
    with torch.no_grad():
        got = model(f0.expand(3, -1, -1, -1), f1.expand(3, -1, -1, -1), t)
        fc, at = model.flow.state_dict(), model.interp.state_dict()
        for k, tk in enumerate(t.tolist()):
            assert (got[k : k + 1] - ref_interpolate(fc, at, f0, f1, tk)).abs().max() < 2e-5


def test_original_checkpoint_reproduces_the_original_pipeline(tmp_path: Path) -> None:
    """Full-size original-format checkpoint through the VapourSynth filter vs the reference, within 2e-4."""
    model = make_model(width=1.0, warp="legacy", seed=3)
    path = tmp_path / "SuperSloMo.ckpt"
    write_original_ckpt(model, path)
    frames = random_frames(2, 64, 64, seed=5)
    out = superslomo(clip_from_arrays(frames), factor_num=4, model=str(path), sc=False)
    fc, at = model.flow.state_dict(), model.interp.state_dict()
    f0, f1 = (torch.tensor(a)[None] for a in frames)
    moved = 0.0
    for n, t in ((1, 0.25), (2, 0.5), (3, 0.75)):
        frame = out.get_frame(n)
        assert frame.props["SuperSloMoT"] == t
        with torch.no_grad():
            want = ref_interpolate(fc, at, f0, f1, t)[0].numpy()
        assert np.abs(read_frame(frame) - want).max() < 2e-4
        moved = max(moved, float(np.abs(want - frames[0]).max()))
    assert moved > 0.1  # the reference really differs from its inputs: the comparison can fail
    assert out.format.id == vs.RGBS


@pytest.mark.parametrize("warp", ["exact", "legacy"])
def test_prepared_pair_equals_the_plain_formulas(warp: str) -> None:
    """The engine's per-pair factorisation of the first convolution changes nothing but rounding."""
    model = make_model(width=0.125, warp=warp, seed=4)
    f0, f1 = (torch.tensor(a)[None] for a in random_frames(2, 64, 96, seed=2))
    t = torch.tensor([0.125, 0.5, 0.875])
    with torch.no_grad():
        i0, i1 = model.normalize(f0), model.normalize(f1)
        f01, f10 = model.compute_flow(i0, i1)
        plain = model.synthesize(wide(i0), wide(i1), wide(f01), wide(f10), t)
        prepared = model.synthesize_prepared(model.prepare(i0, i1), t)
    assert (plain - prepared).abs().max() < 1e-5
    assert (plain[0] - plain[2]).abs().max() > 1e-2  # different t really give different frames


def test_quadratic_motion_reduces_to_linear_and_the_prepared_pair_follows_it() -> None:
    """Acceleration terms: none under constant velocity; prepared and plain paths agree with them."""
    model = make_model(width=0.125, seed=4)
    f0, f1 = (torch.tensor(a)[None] for a in random_frames(2, 64, 96, seed=2))
    t = torch.tensor([0.25, 0.5, 0.75])
    tt = t.view(-1, 1, 1, 1)
    f01, f10 = torch.randn(1, 2, 64, 96), torch.randn(1, 2, 64, 96)
    zero = (torch.zeros_like(f01), torch.zeros_like(f10))
    assert all(torch.equal(q, lin) for q, lin in zip(flows_at(tt, f01, f10, zero), flows_at(tt, f01, f10), strict=True))
    # Constant acceleration along x: positions -1.5, 0, 2.5, 6 px at times -1, 0, 1, 2 (velocity 2 at 0, accel 1).
    # F01 = 2.5, F0,-1 = -1.5: A0 = 1; F10 = -2.5, F12 = 3.5: A1 = 1. The truth at t: Ft0 = -(2t + t²/2),
    # Ft1 = 2.5 - (2t + t²/2) (uniform motion, so the flow at x is the same everywhere).
    ones = torch.ones(1, 1, 1, 1)
    uniform = [torch.cat([v * ones, 0 * ones], 1) for v in (2.5, -2.5, 1.0, 1.0)]
    ft0, ft1 = flows_at(tt, uniform[0], uniform[1], (uniform[2], uniform[3]))
    travelled = 2 * tt + tt * tt / 2
    assert torch.allclose(ft0[:, 0:1], -travelled) and torch.allclose(ft1[:, 0:1], 2.5 - travelled)
    lin0, _ = flows_at(tt, uniform[0], uniform[1])
    assert not torch.allclose(lin0[:, 0:1], -travelled)  # the linear estimate misses it
    accel = (torch.randn(1, 2, 64, 96), torch.randn(1, 2, 64, 96))
    with torch.no_grad():
        i0, i1 = model.normalize(f0), model.normalize(f1)
        plain = model.synthesize(wide(i0), wide(i1), wide(f01), wide(f10), t, (wide(accel[0]), wide(accel[1])))
        prepared = model.synthesize_prepared(model.prepare(i0, i1, (f01, f10), accel=accel), t)
        linear = model.synthesize_prepared(model.prepare(i0, i1, (f01, f10)), t)
    assert (plain - prepared).abs().max() < 1e-5
    assert (prepared - linear).abs().max() > 1e-2


def test_splatted_flows_through_the_prepared_pair_equal_the_plain_formulas() -> None:
    """With ``splat`` the flows to t go through the per-t convolution; plain and prepared paths still agree,
    with and without quadratic motion, and the frames differ from the paper's estimate's."""
    model = make_model(width=0.125, seed=4)
    f0, f1 = (torch.tensor(a)[None] for a in random_frames(2, 64, 96, seed=2))
    t = torch.tensor([0.25, 0.5, 0.75])
    f01, f10 = 3 * torch.randn(1, 2, 64, 96), 3 * torch.randn(1, 2, 64, 96)
    with torch.no_grad():
        i0, i1 = model.normalize(f0), model.normalize(f1)
        for accel in (None, (torch.randn(1, 2, 64, 96), torch.randn(1, 2, 64, 96))):
            wide_accel = None if accel is None else (wide(accel[0]), wide(accel[1]))
            plain = model.synthesize(wide(i0), wide(i1), wide(f01), wide(f10), t, wide_accel, splat=True)
            prepared = model.synthesize_prepared(model.prepare(i0, i1, (f01, f10), accel=accel, splat=True), t)
            estimated = model.synthesize_prepared(model.prepare(i0, i1, (f01, f10), accel=accel), t)
            assert (plain - prepared).abs().max() < 1e-5
            assert (prepared - estimated).abs().max() > 1e-2
