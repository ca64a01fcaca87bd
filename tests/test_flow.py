"""Flow sources: DIS flows, the filter's flow="net" | "dis" | "auto", and the weights' flow metadata."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import bias, make_model, random_frames
from safetensors import safe_open
from safetensors.torch import save_file

from vs_superslomo import superslomo
from vs_superslomo.cartoon import CartoonClip, cartoon_frames, outlined_shapes
from vs_superslomo.engine import Interpolator
from vs_superslomo.flow import dis_flow_labels, dis_flows, dis_gray, dis_scaled, dis_seeded, gray8
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.sizing import MARGIN
from vs_superslomo.weights import WeightsError, load_model, save_model

core = vs.core


def shifted_pair(dx: int, dy: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Two views of one smooth texture; the content moves by (dx, dy) from the first to the second."""
    big = random_frames(1, size + 16, size + 16, seed=4, grain=4)[0]
    return (
        np.ascontiguousarray(big[:, 8 : 8 + size, 8 : 8 + size]),
        np.ascontiguousarray(big[:, 8 - dy : 8 - dy + size, 8 - dx : 8 - dx + size]),
    )


def test_dis_flows_point_from_i0_to_i1() -> None:
    i0, i1 = shifted_pair(3, -2)
    f01, f10 = dis_flows(i0, i1)
    inner = (slice(None), slice(16, 80), slice(16, 80))
    assert np.median(f01[inner], axis=(1, 2)) == pytest.approx([3, -2], abs=0.3)
    assert np.median(f10[inner], axis=(1, 2)) == pytest.approx([-3, 2], abs=0.3)


@pytest.mark.parametrize("scale", [0.75, 0.5])
def test_dis_scaled_gives_full_size_flows_in_full_size_pixels(scale: float) -> None:
    i0, i1 = shifted_pair(6, -4, size=128)
    g0, g1 = gray8(i0), gray8(i1)
    assert np.array_equal(dis_scaled(g0, g1, 1.0), dis_seeded(g0, g1))  # the full size is plain DIS
    flow = dis_scaled(g0, g1, scale)
    assert flow.shape == (2, 128, 128) and flow.dtype == np.float32
    inner = (slice(None), slice(24, 104), slice(24, 104))
    assert np.median(flow[inner], axis=(1, 2)) == pytest.approx([6, -4], abs=0.4)
    assert not np.array_equal(flow, dis_seeded(g0, g1))  # computed small, not at the full size


def test_engine_gives_the_network_dis_flows_padded_like_the_frames() -> None:
    i0, i1 = shifted_pair(3, -2, size=40)
    engine = Interpolator(make_model(), torch.device("cpu"), flow="dis")
    flows = engine.flows(i0, i1)
    assert flows is not None  # None only for the flow net
    f01, f10 = flows
    x0, _ = engine.upload(i0, i1)
    assert f01.shape[-2:] == f10.shape[-2:] == x0.shape[-2:]
    raw01, _ = dis_flows(i0, i1)
    assert torch.equal(engine.unpad(f01, 40, 40)[0], torch.from_numpy(raw01))  # DIS of the picture itself
    assert torch.equal(f01[0, :, :MARGIN, MARGIN], f01[0, :, MARGIN, MARGIN, None].expand(2, MARGIN))  # replicated
    assert Interpolator(make_model(), torch.device("cpu")).flows(i0, i1) is None  # the flow net's job


def test_dis_and_net_both_run_through_the_filter_and_auto_follows_the_weights() -> None:
    clip = clip_from_arrays(list(shifted_pair(3, -2, size=48)))
    net_model, dis_model = make_model(), make_model()
    dis_model.flow_source = "dis"
    frames = {
        name: read_frame(superslomo(clip, 4, model=model, flow=flow).get_frame(2))
        for name, model, flow in (
            ("net", net_model, "net"),
            ("dis", net_model, "dis"),
            ("auto-net", net_model, "auto"),
            ("auto-dis", dis_model, "auto"),
        )
    }
    assert np.array_equal(frames["auto-net"], frames["net"])
    assert np.array_equal(frames["auto-dis"], frames["dis"])
    assert not np.allclose(frames["net"], frames["dis"], atol=1e-3)  # really two different flows


def test_dis_frames_follow_the_motion() -> None:
    """With the interpolation net adding nothing (zero output layer: no residuals, equal visibility), DIS
    flows put the content of a moving texture where it is at t: far closer than the cross-fade."""
    model = make_model()
    torch.nn.init.zeros_(model.interp.conv3.weight)
    torch.nn.init.zeros_(bias(model.interp.conv3))
    i0, i1 = shifted_pair(4, 2, size=64)
    _, truth = shifted_pair(2, 1, size=64)  # moved half way
    mid_frame = superslomo(clip_from_arrays([i0, i1]), 2, model=model, flow="dis").get_frame(1)
    assert mid_frame.props["SuperSloMoT"] == 0.5  # interpolated: 4 px of fine grain is motion, not a cut
    mid = read_frame(mid_frame)
    inner = (slice(None), slice(8, 56), slice(8, 56))
    error, blend_error = (np.abs(x - truth)[inner].mean() for x in (mid, (i0 + i1) / 2))
    assert error < blend_error / 3


@pytest.mark.parametrize(("order", "threads"), [("reversed", 1), ("shuffled", 4)])
def test_dis_frames_do_not_depend_on_request_order_or_threads(order: str, threads: int) -> None:
    clip = clip_from_arrays(random_frames(5, 40, 56, seed=2, grain=4))
    model = make_model()
    old = core.num_threads
    try:
        core.num_threads = 1
        reference = [read_frame(f) for f in superslomo(clip, 3, model=model, flow="dis").frames()]
        core.num_threads = threads
        out = superslomo(clip, 3, model=model, flow="dis")
        picks = list(range(15))[::-1] if order == "reversed" else random.Random(threads).sample(range(15), 15)
        futures = {n: out.get_frame_async(n) for n in picks}
        got = {n: read_frame(f.result()) for n, f in futures.items()}
    finally:
        core.num_threads = old
    assert all(np.array_equal(got[n], reference[n]) for n in range(15))


def test_bad_flow_is_refused_with_the_choices() -> None:
    with pytest.raises(vs.Error, match=r"^superslomo: flow must be 'auto', 'net' or 'dis', got 'raft'"):
        superslomo(clip_from_arrays(random_frames(2, 8, 8)), model=make_model(), flow="raft")


def test_weights_carry_their_flow_source_and_older_files_load_as_net(tmp_path: Path) -> None:
    model = make_model()
    model.flow_source = "dis"
    save_model(model, tmp_path / "dis.safetensors")
    loaded, info = load_model(tmp_path / "dis.safetensors")
    assert info.flow == loaded.flow_source == "dis"
    # A file written before the flow metadata existed: the same tensors and metadata without "flow".
    with safe_open(str(tmp_path / "dis.safetensors"), framework="pt") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != "flow"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    old, old_info = load_model(tmp_path / "old.safetensors")
    assert old_info.flow == old.flow_source == "net"
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), loaded.state_dict().values(), strict=True))
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta | {"flow": "raft"})
    with pytest.raises(WeightsError, match=r"metadata flow must be one of \('net', 'dis'\), got 'raft'"):
        load_model(tmp_path / "bad.safetensors")


def test_dis_pseudo_flow_has_the_f01_sign() -> None:
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((112, 112, 3)).astype(np.float32), (0, 0), 1.5).transpose(2, 0, 1)
    big = (big - big.min()) / (big.max() - big.min())
    i0 = np.ascontiguousarray(big[:, 8:104, 8:104])
    i1 = np.ascontiguousarray(big[:, 10:106, 5:101])  # I1(x) = I0(x − (3, −2)): content moved right 3, up 2
    f01, f10, mask = dis_flow_labels(i0, i1)
    inner = (slice(None), slice(16, 80), slice(16, 80))
    assert np.median(f01[inner], axis=(1, 2)) == pytest.approx([3, -2], abs=0.3)
    assert np.median(f10[inner], axis=(1, 2)) == pytest.approx([-3, 2], abs=0.3)
    assert mask[inner].mean() > 0.9


def test_dis_seeded_by_the_global_shift_follows_a_pan_plain_dis_loses() -> None:
    """Outlined flat shapes panning 43 px a frame (86 px two frames apart): plain DIS loses most of the
    picture, DIS started from the phase-correlation shift finds it; a small shift keeps plain DIS exactly."""
    frames = cartoon_frames(CartoonClip("pan", outlined_shapes, pan=(43.0, 0.0), width=320, height=192), 3)
    g0, g2 = gray8(frames[0]), gray8(frames[2])
    changing = np.abs(frames[0] - frames[2]).mean(0) > 0.02
    changing[:, :96] = False  # what is there in I0 has left I1's picture: no flow is right

    def share_right(flow: np.ndarray) -> float:
        return float((np.hypot(flow[0] + 86, flow[1])[changing] < 2).mean())

    assert share_right(dis_gray(g0, g2)) < 0.05
    assert share_right(dis_seeded(g0, g2)) > 0.6
    small = cartoon_frames(CartoonClip("slow", outlined_shapes, pan=(3.0, 0.0), width=320, height=192), 2)
    g0, g1 = gray8(small[0]), gray8(small[1])
    assert np.array_equal(dis_seeded(g0, g1), dis_gray(g0, g1))
