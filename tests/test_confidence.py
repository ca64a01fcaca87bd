"""Confidence in the interpolated frames, the fallback to blending where it is low, and their props."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import accelerating_frames, make_model, random_frames, zero_refinement_model
from torch import Tensor

from vs_superslomo import confidence
from vs_superslomo.engine import EngineError, Interpolator
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.plugin import CONFIDENCE_MAP_PROP, CONFIDENCE_PROP, T_PROP, superslomo

CPU = torch.device("cpu")
SHIFT = 6  # px to the right between the two frames


def _confidence(flow01: Tensor, flow10: Tensor) -> Tensor:
    """The confidence and the trust in the motion (2, H, W) at t = 1/2 of a smooth picture shifted SHIFT px,
    with the given flows (a network that only warps along them)."""
    model = zero_refinement_model()
    frames = accelerating_frames([0, SHIFT], height=96, width=128)
    i0, i1 = (model.normalize(torch.from_numpy(f)[None]) for f in frames)
    with torch.inference_mode():
        pair = model.prepare(i0, i1, (flow01, flow10))
        synthesis = model.synthesize_prepared_parts(pair, torch.tensor([0.5]))
        return confidence.confidence_at(synthesis, confidence.flow_trust(pair.f01, pair.f10, "exact"), "exact")[0]


def _shift(dx: float, dy: float = 0.0) -> Tensor:
    return torch.tensor([dx, dy], dtype=torch.float32).view(1, 2, 1, 1).expand(1, 2, 96, 128).clone()


def test_confidence_is_high_on_an_exact_shift_and_low_where_a_flow_is_made_wrong() -> None:
    inside = (slice(16, -16), slice(16, -16))
    exact = _confidence(_shift(SHIFT), _shift(-SHIFT))
    assert float(exact[(slice(None), *inside)].min()) > 0.9
    # Wrong in a box, the two flows still undoing each other (a wrong motion, not noise): the frames warped
    # to t disagree there, and the motion is not trusted.
    flow01, flow10 = _shift(SHIFT), _shift(-SHIFT)
    flow01[..., 32:80, 40:100] = torch.tensor([-3.0, 5.0]).view(1, 2, 1, 1)
    flow10[..., 32:80, 40:100] = torch.tensor([3.0, -5.0]).view(1, 2, 1, 1)
    motion = _confidence(flow01, flow10)[1]
    box = motion[44:68, 56:84]
    assert float(box.mean()) < 0.2 and float(box.quantile(0.9)) < 0.4  # a smooth picture looks alike here and there
    assert float(motion[inside][:, :12].min()) > 0.9  # far from the box nothing changed
    # Each flow wrong on its own (they no longer undo each other): not trusted either.
    assert float(_confidence(_shift(SHIFT), _shift(SHIFT))[1][inside].max()) < 0.2


def test_fallback_is_exactly_blend_at_confidence_0_and_exactly_the_frame_at_1() -> None:
    x0, x1, *made = (torch.from_numpy(f)[None] for f in random_frames(4, 32, 48, seed=9))
    frames = torch.cat(made)  # two "network" frames
    times = torch.tensor([0.25, 0.75])
    blend = torch.stack([(1 - t) * x0[0] + t * x1[0] for t in times])
    zeros, ones = torch.zeros(2, 1, 32, 48), torch.ones(2, 1, 32, 48)
    got, used = confidence.fall_back(frames, torch.cat((zeros, ones), 1), x0, x1, times, 0.5, pixels=True)
    assert torch.equal(got, blend) and torch.equal(used, zeros)
    got, used = confidence.fall_back(frames, torch.cat((ones, ones), 1), x0, x1, times, 0.5, pixels=True)
    assert torch.equal(got, frames) and torch.equal(used, ones)
    # Per frame only: the frame itself wherever its motion is trusted enough, whatever its pixels' confidence.
    got, used = confidence.fall_back(frames, torch.cat((zeros, ones), 1), x0, x1, times, 0.5)
    assert torch.equal(got, frames) and torch.equal(used, zeros)
    # Confidence 0.4 on every pixel, the motion trusted at 0.4: in between with a lower threshold, the blend
    # (and confidence 0) with a higher one.
    partly = torch.full((2, 1, 32, 48), 0.4)
    got, used = confidence.fall_back(frames, torch.cat((partly, partly), 1), x0, x1, times, 0.3, pixels=True)
    assert torch.allclose(got, blend + 0.4 * (frames - blend), atol=1e-6) and torch.equal(used, partly)
    for pixels in (False, True):
        got, used = confidence.fall_back(frames, torch.cat((partly, partly), 1), x0, x1, times, 0.5, pixels)
        assert torch.equal(got, blend) and torch.equal(used, zeros)


def test_a_still_pair_becomes_its_blend_and_a_small_moving_spot_does_not() -> None:
    x0, *made = (torch.from_numpy(f)[None] for f in random_frames(3, 32, 48, seed=4))
    frames = torch.cat(made)
    times = torch.tensor([0.25, 0.75])
    trusted = torch.ones(2, 2, 32, 48)
    nearly = x0.clone()
    nearly[..., 8:20, 10:30] += 0.09  # a faint change: under STILL everywhere
    got, used = confidence.fall_back(frames, trusted, x0, nearly, times, 0.35)
    assert torch.equal(got, torch.stack([(1 - t) * x0[0] + t * nearly[0] for t in times]))
    assert float(used.max()) == 0.0
    spot = x0.clone()
    spot[..., 14:18, 20:24] = 1 - spot[..., 14:18, 20:24]  # a 4×4 px ball in a high contrast: motion to keep
    got, used = confidence.fall_back(frames, trusted, x0, spot, times, 0.35)
    assert torch.equal(got, frames) and torch.equal(used, trusted[:, :1])


def test_engine_returns_confidence_and_the_fallback_changes_only_what_it_should() -> None:
    frames = random_frames(2, 64, 96, seed=3)
    times = [0.25, 0.5]
    model = make_model(warp="legacy")
    off = Interpolator(model, CPU, flow="net", backend="torch", fallback=0.0)
    got, trust = off.interpolate_with_confidence(frames[0], frames[1], times)
    assert got.shape == (2, 3, 64, 96) and trust.shape == (2, 64, 96) and trust.dtype == torch.float32
    assert float(trust.min()) >= 0 and float(trust.max()) <= 1
    assert torch.equal(off.interpolate(frames[0], frames[1], times), got)
    # Off, the original checkpoint's path is the network's own forward, as before.
    with torch.inference_mode():
        x0, x1 = (torch.from_numpy(f)[None].expand(2, -1, -1, -1) for f in frames)
        reference = model(x0, x1, torch.tensor(times))
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=0)
    on = Interpolator(model, CPU, flow="net", backend="torch", fallback=1.0)
    fallen, used = on.interpolate_with_confidence(frames[0], frames[1], times)
    blend = [(1 - t) * frames[0] + t * frames[1] for t in times]
    for i in range(2):  # a random network is trusted nowhere near fully: each frame is the blend
        assert float(used[i].max()) == 0.0
        np.testing.assert_allclose(fallen[i].numpy(), blend[i], atol=1e-6)
    with pytest.raises(EngineError, match="fallback must be a number from 0"):
        Interpolator(model, CPU, fallback=1.5)


def test_props_are_on_every_frame_and_the_map_comes_out_as_a_clip() -> None:
    frames = accelerating_frames([0, 3, 6, 9], height=64, width=96)
    clip = clip_from_arrays(frames)
    out = superslomo(clip, 3, model=zero_refinement_model(), flow="dis", backend="torch", confidence_map=True)
    maps = vs.core.std.PropToClip(out, CONFIDENCE_MAP_PROP)
    assert maps.format.id == vs.GRAYS and (maps.width, maps.height) == (96, 64)
    interpolated = 0
    for n in range(out.num_frames):
        frame = out.get_frame(n)
        share = frame.props[CONFIDENCE_PROP]
        trusted = np.asarray(maps.get_frame(n)[0])
        assert 0 <= share <= 1 and abs(share - float(trusted.mean())) < 1e-6
        if frame.props[T_PROP] > 0:
            interpolated += 1
            assert share > 0.5  # an exact shift, warped along DIS's flows: trusted
        else:
            assert share == 1.0 and np.array_equal(read_frame(frame), frames[n // 3])
    assert interpolated == 6


def test_local_mean_on_the_cpu_equals_torch_pooling_over_the_inside() -> None:
    """The CPU's box sums (OpenCV) divided by the count inside the picture give avg_pool2d's means without the
    padding, at the picture's edges and on pictures smaller than the window too."""
    torch.manual_seed(0)
    for shape in ((1, 1, 48, 80), (3, 2, 5, 7), (1, 1, 1, 1), (2, 1, 9, 3)):
        x = torch.rand(*shape)
        want = torch.nn.functional.avg_pool2d(x, 9, stride=1, padding=4, count_include_pad=False)
        got = confidence.local_mean(x, 9)
        assert got.shape == x.shape and (got - want).abs().max() < 1e-6
    x = torch.rand(1, 1, 48, 80)
    assert (confidence.local_mean(x, 9) - x).abs().max() > 0.1  # it really averages
