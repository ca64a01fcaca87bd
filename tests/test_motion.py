"""Quadratic motion's accelerations: kept where both ends of a pair agree on them, zero where they do not."""

from __future__ import annotations

import torch

from vs_superslomo.motion import SLACK_PX, accelerations


def uniform(x: float, y: float = 0.0, size: tuple[int, int] = (24, 32)) -> torch.Tensor:
    return torch.tensor([x, y]).view(1, 2, 1, 1).expand(1, 2, *size).contiguous()


def test_constant_acceleration_is_kept_and_motion_that_starts_or_stops_is_not() -> None:
    # x = 8s + 4s² at s = -1, 0, 1, 2: F01 = 12, F0,-1 = -4, F10 = -12, F12 = 20; both ends see A = 8
    # (each where the other end lies inside the picture: the engine pads the flows, so that is everywhere).
    a0, a1 = accelerations(uniform(12), uniform(-12), uniform(-4), uniform(20), "exact")
    assert torch.allclose(a0[..., :20], uniform(8)[..., :20]) and torch.allclose(a1[..., 12:], uniform(8)[..., 12:])
    assert not a0[..., 20:].any() and not a1[..., :12].any()
    # Still until frame 0, then 12 px a frame: I0 sees A0 = 12, I1 sees A1 = 0. Neither is trusted.
    a0, a1 = accelerations(uniform(12), uniform(-12), uniform(0), uniform(12), "exact")
    assert not a0.any() and not a1.any()
    # Jitter of a fraction of a pixel (within the slack) passes as it is: it changes the frame by less.
    small = SLACK_PX / 2
    a0, a1 = accelerations(uniform(6), uniform(-6), uniform(-6 + small), uniform(6), "exact")
    assert torch.allclose(a0[..., :26], uniform(small)[..., :26]) and not a1.any()


def test_the_test_is_per_pixel() -> None:
    """Half the picture accelerates, half moves at a constant rate then stops: each half on its own."""
    f01, f10 = uniform(12), uniform(-12)
    f0m, f12 = uniform(-4), uniform(20)
    f12[..., 16:] = 0  # the right half stops after I1: A1 = -12 there
    a0, a1 = accelerations(f01, f10, f0m, f12, "exact")
    assert torch.allclose(a1[..., 12:16], uniform(8)[..., 12:16]) and not a1[..., 16:].any()
    assert torch.allclose(a0[..., :4], uniform(8)[..., :4]) and not a0[..., 8:].any()


def test_unevenly_spaced_neighbours_give_the_same_acceleration() -> None:
    # x = 8s + 4s² again, with the frame before at s = -1/2 (τ0 = 1/2) and the one after at s = 4 (τ1 = 3):
    # F0,-1 = -4 + 1 = -3 and F12 = 96 - 12 = 84. Read as evenly spaced they would be wrong.
    f01, f10, f0m, f12 = uniform(12), uniform(-12), uniform(-3), uniform(84)
    a0, a1 = accelerations(f01, f10, f0m, f12, "exact", spacing=(0.5, 3.0))
    assert torch.allclose(a0[..., :20], uniform(8)[..., :20]) and torch.allclose(a1[..., 12:], uniform(8)[..., 12:])
    assert not accelerations(f01, f10, f0m, f12, "exact")[0].any()  # 9 against 72: no agreement
