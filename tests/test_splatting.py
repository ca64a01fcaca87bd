"""Flows to t by splatting: right where an object moves over a background, the paper's estimate elsewhere."""

from __future__ import annotations

import pytest
import torch

from vs_superslomo import splatting
from vs_superslomo.network import flows_at, intermediate_flows
from vs_superslomo.splatting import importance, splatted_flows

H, W = 24, 48
LEFT, SIDE, MOVE = 10, 8, 6  # a square at x = 10..17 in I0 and 16..23 in I1


def _square_pair() -> tuple[torch.Tensor, ...]:
    """I0, I1 (a bright square moving MOVE px right over a dark textured background) and their true flows."""
    background = 0.3 * torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    i0, i1 = background.clone(), background.clone()
    i0[..., 8:16, LEFT : LEFT + SIDE] = 1.0
    i1[..., 8:16, LEFT + MOVE : LEFT + MOVE + SIDE] = 1.0
    f01, f10 = torch.zeros(1, 2, H, W), torch.zeros(1, 2, H, W)
    f01[:, 0, 8:16, LEFT : LEFT + SIDE] = MOVE
    f10[:, 0, 8:16, LEFT + MOVE : LEFT + MOVE + SIDE] = -MOVE
    return i0, i1, f01, f10


def test_an_object_over_a_background_gets_its_own_motion_where_it_is_at_t() -> None:
    """At t = 1/2 the square is at x = 13..20: splatting gives it Ft0 = -3 and Ft1 = +3 px there, as the truth
    is; the paper's estimate reads the flows at the same spot in I0 and I1 and is off by up to 3 px."""
    i0, i1, f01, f10 = _square_pair()
    t = torch.full((1, 1, 1, 1), 0.5)
    estimate = flows_at(t, f01, f10)
    ft0, ft1 = splatted_flows(t, f01, f10, importance(i0, i1, f01, f10, "exact"), estimate)
    at_t = (slice(None), 0, slice(8, 16), slice(LEFT + MOVE // 2, LEFT + MOVE // 2 + SIDE))
    torch.testing.assert_close(ft0[at_t], torch.full_like(ft0[at_t], -MOVE / 2), atol=1e-3, rtol=0)
    torch.testing.assert_close(ft1[at_t], torch.full_like(ft1[at_t], MOVE / 2), atol=1e-3, rtol=0)
    assert (estimate[0][at_t] + MOVE / 2).abs().max() >= 1.5  # the estimate misses: the test can fail
    # Background that nothing covers keeps zero motion.
    assert ft0[:, :, :, :8].abs().max() < 1e-3 and ft1[:, :, 18:, :].abs().max() < 1e-3


def test_where_nothing_lands_the_paper_estimate_is_kept_and_batches_equal_single_times() -> None:
    """Everything leaves the picture by t = 1/2 (±40 px on a 48 px picture): all holes, so the estimate
    itself comes back. Several t at once give what each alone gives."""
    f01 = torch.zeros(1, 2, H, W)
    f01[:, 0] = 40.0
    f10 = -f01
    ones = torch.ones(1, 1, H, W)
    t = torch.full((1, 1, 1, 1), 0.5)
    estimate = flows_at(t, f01, f10)
    assert all(
        torch.equal(a, b) for a, b in zip(splatted_flows(t, f01, f10, (ones, ones), estimate), estimate, strict=True)
    )
    i0, i1, f01, f10 = _square_pair()
    weights = importance(i0, i1, f01, f10, "exact")
    accel = (torch.randn(1, 2, H, W), torch.randn(1, 2, H, W))
    times = torch.tensor([0.25, 0.5, 0.75]).view(-1, 1, 1, 1)
    batched = intermediate_flows(times, f01, f10, accel, weights)
    for j in range(3):
        single = intermediate_flows(times[j : j + 1], f01, f10, accel, weights)
        for got, want in zip((b[j : j + 1] for b in batched), single, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (batched[0][0] - batched[0][2]).abs().max() > 1  # different t really differ


def test_uniform_accelerating_motion_splats_to_the_quadratic_answer() -> None:
    """Uniform motion with acceleration (the example of test_network's quadratic test: F01 = 2.5 px, A = 1):
    every pixel lands where its neighbour's started, so inside the picture splatting agrees with the
    quadratic formula, the truth for uniform motion."""

    def field(v: float) -> torch.Tensor:
        return torch.cat([torch.full((1, 1, H, W), v), torch.zeros(1, 1, H, W)], 1)

    f01, f10, a = field(2.5), field(-2.5), field(1.0)
    ones = torch.ones(1, 1, H, W)
    t = torch.tensor([0.25, 0.5, 0.75]).view(-1, 1, 1, 1)
    estimate = flows_at(t, f01, f10, (a, a))
    got = splatted_flows(t, f01, f10, (ones, ones), estimate, (a, a))
    inside = (slice(None), slice(None), slice(None), slice(4, W - 4))
    for g, e in zip(got, estimate, strict=True):
        torch.testing.assert_close(g[inside], e[inside], atol=1e-4, rtol=0)
    travelled = 2 * t + t * t / 2
    torch.testing.assert_close(got[0][:, 0:1][inside], (-travelled).expand(-1, 1, H, W)[inside], atol=1e-4, rtol=0)


def test_the_cuda_way_of_adding_gives_the_cpu_ways_sums() -> None:
    # CUDA adds by index_put_ on the flat planes: checked here on the CPU, where it runs too (not in order).
    g = torch.Generator().manual_seed(3)
    index = torch.randint(0, 50, (2, 1, 400), generator=g).expand(2, 3, 400)  # collisions in every plane
    values = torch.rand(2, 3, 400, generator=g)
    cpu, flat = torch.zeros(2, 3, 50), torch.zeros(2, 3, 50)
    splatting._accumulate(cpu, index, values)
    splatting._accumulate_flat(flat, index, values)
    expected = torch.zeros(2, 3, 50)
    for i in range(2):
        for j in range(3):
            for k in range(400):
                expected[i, j, index[i, j, k]] += values[i, j, k]
    assert torch.allclose(cpu, expected, atol=1e-5) and torch.allclose(flat, expected, atol=1e-5)


def _random_splat(n: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(n)
    values = torch.randn(n, 4, 20, 30, generator=g)
    offset = torch.randn(n, 2, 20, 30, generator=g) * 6  # many corners leave the picture
    weight = torch.rand(n, 1, 20, 30, generator=g)
    return values, offset, weight


def _splat_both_ways(values: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, ...]:
    n, _, h, w = values.shape
    compiled = torch.zeros(n, h, w, 5).permute(0, 3, 1, 2)  # the compiled splat's layout
    plain = torch.zeros(n, 5, h, w)
    splatting._splat(compiled, values, offset, weight, compiled=True)
    splatting._splat(plain, values, offset, weight, compiled=False)
    return compiled, plain


def test_the_compiled_splat_adds_what_scatter_add_does() -> None:
    compiled, plain = _splat_both_ways(*_random_splat(2))
    assert plain.abs().sum() > 0
    assert torch.allclose(compiled, plain, atol=1e-5)
    # Equal sums in the same order every run: frames never depend on the run.
    again, _ = _splat_both_ways(*_random_splat(2))
    assert torch.equal(compiled, again)


def test_a_pixel_with_a_broken_position_lands_nowhere_in_the_compiled_splat() -> None:
    values, offset, weight = _random_splat(1)
    offset[0, 0, 3, 4] = float("nan")
    offset[0, 1, 5, 6] = float("inf")
    compiled = torch.zeros(1, 20, 30, 5).permute(0, 3, 1, 2)
    splatting._splat(compiled, values, offset, weight, compiled=True)
    assert torch.isfinite(compiled).all()
    kept = weight.clone()
    kept[0, 0, 3, 4] = kept[0, 0, 5, 6] = 0  # the same pixels adding nothing
    offset[0, 0, 3, 4] = offset[0, 1, 5, 6] = 0
    assert torch.allclose(compiled, _splat_both_ways(values, offset, kept)[1], atol=1e-5)


def test_splatted_flows_run_compiled_on_the_cpu_and_plain_for_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    i0, i1, f01, f10 = _square_pair()
    weights = importance(i0, i1, f01, f10, "exact")
    t = torch.tensor([0.25, 0.5]).view(-1, 1, 1, 1)
    ways: list[bool] = []
    plain_splat = splatting._splat

    def spy(*args: object, **kwargs: object) -> None:
        ways.append(bool(args[-1]))
        plain_splat(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(splatting, "_splat", spy)
    with torch.inference_mode():
        fast = splatted_flows(t, f01, f10, weights, flows_at(t, f01, f10))
    assert ways == [True, True]
    f01.requires_grad_(True)
    slow = splatted_flows(t, f01, f10, weights, flows_at(t, f01, f10))
    assert ways[2:] == [False, False]
    slow[0].sum().backward()
    assert f01.grad is not None
    for a, b in zip(fast, slow, strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-4)
