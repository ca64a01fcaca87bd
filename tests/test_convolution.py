"""Same-size convolutions in phases: equal to the plain convolution, and taken only where they pay."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vs_superslomo.convolution import SameConv2d, same_conv2d
from vs_superslomo.network import UNet


def _strides(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The strides of every ``F.conv2d`` run from now on (``nn.Conv2d`` passes its stride as a tuple, by position)."""
    seen: list[int] = []
    plain = F.conv2d

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        stride = kwargs.get("stride", args[3] if len(args) > 3 else 1)
        seen.append(stride[0] if isinstance(stride, tuple) else stride)
        return plain(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", spy)  # torch.nn.functional's: what convolution and nn.Conv2d both call
    return seen


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("outputs", [1, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_the_phase_form_equals_the_plain_convolution(
    kernel: int, outputs: int, bias: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = torch.Generator().manual_seed(kernel * 10 + outputs)
    x = torch.randn(2, 5, 12, 18, generator=g)
    weight = torch.randn(outputs, 5, kernel, kernel, generator=g)
    b = torch.randn(outputs, generator=g) if bias else None
    expected = F.conv2d(x, weight, b, padding=kernel // 2)
    strides = _strides(monkeypatch)
    got = same_conv2d(x, weight, b)
    assert strides == [2], "the phase form did not run"
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("outputs", "size"),
    [(5, (12, 18)), (16, (12, 18)), (4, (13, 18)), (4, (12, 17))],
    ids=["5 outputs", "16 outputs", "odd height", "odd width"],
)
def test_more_outputs_or_odd_sizes_take_the_plain_form(
    outputs: int, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(1, 3, *size)
    weight = torch.randn(outputs, 3, 3, 3)
    strides = _strides(monkeypatch)
    got = same_conv2d(x, weight)
    assert strides == [1]
    assert torch.allclose(got, torch.conv2d(x, weight, padding=1), atol=1e-5)


def test_same_conv2d_keeps_nn_conv2d_names_and_trains_on_the_plain_form(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = SameConv2d(6, 4, 7)
    assert set(conv.state_dict()) == set(torch.nn.Conv2d(6, 4, 7).state_dict()) == {"weight", "bias"}
    assert conv.padding == (3, 3)
    x = torch.randn(1, 6, 16, 16)
    strides = _strides(monkeypatch)
    with torch.no_grad():
        inference = conv(x)
    assert strides == [2]
    trained = conv(x)  # gradients on: nn.Conv2d's own forward
    trained.sum().backward()
    assert strides == [2, 1] and conv.weight.grad is not None
    assert torch.allclose(inference, trained.detach(), atol=1e-5)
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(3, 3, 4)


def test_a_thin_unet_gives_the_same_output_in_phases() -> None:
    torch.manual_seed(0)
    net = UNet(20, 5, width=0.125).eval()  # first level 4 channels: its convolutions take the phase form
    x = torch.randn(1, 20, 64, 96)
    with torch.no_grad():
        phased = net(x)
    plain = net(x).detach()  # with gradients: every convolution plain
    assert torch.allclose(phased, plain, atol=1e-5)
