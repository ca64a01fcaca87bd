"""Same-size convolutions with few output channels, computed the way the CPU does them fastest.

oneDNN, torch's CPU convolution, computes output channels 16 at a time: a convolution into 4 channels (the
first level of the width-0.125 U-Nets) costs as much as one into 16. The same convolution as a stride-2
convolution into 4× the channels, one per output pixel of each 2×2 block (its phase), followed by a pixel
shuffle, fills the block and reads a quarter of the positions. The sums are the same terms in the same places,
so the results agree within float rounding (they came out identical on every layer tried).

Measured at 672×416 on 2 cores (AVX-512), milliseconds native → phase form, shuffle included: 10 into 4
channels 7×7 10.4 → 4.4, 4 into 4 7×7 4.7 → 2.9, 8 into 4 3×3 2.4 → 1.9; 4 into 5 3×3 1.5 → 1.9 and 10 into 8
7×7 10.4 → 9.6, so only convolutions into at most 4 channels (whose four phases fill one block) take it. The
width-0.125 interpolation U-Net after its first convolution: 65 → 42 ms on torch, 18.1 → 15.9 ms exported to
OpenVINO.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SameConv2d", "phase_weight", "same_conv2d"]

# oneDNN's block of output channels on the CPU: convolutions into at most a quarter of it take the phase form.
_BLOCK = 16


def phase_weight(weight: Tensor) -> Tensor:
    """A k×k kernel (O, I, k, k) as the (k + 1)×(k + 1) stride-2 kernel (4·O, I, k + 1, k + 1) of its four phases:
    output channel 4·o + 2·py + px is channel o at the pixel (py, px) of each 2×2 block, ``pixel_shuffle``'s
    order."""
    o, i, k, _ = weight.shape
    phases = weight.new_zeros((o, 2, 2, i, k + 1, k + 1))
    for py in range(2):
        for px in range(2):
            phases[:, py, px, :, py : py + k, px : px + k] = weight
    return phases.view(4 * o, i, k + 1, k + 1)


def _phased(x: Tensor, weight: Tensor) -> bool:
    out, _, kh, kw = weight.shape
    h, w = x.shape[-2:]
    return x.device.type == "cpu" and 4 * out <= _BLOCK and kh == kw and kh % 2 == 1 and h % 2 == 0 and w % 2 == 0


def same_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=k // 2)`` for an odd k×k kernel; on the CPU with at most 4 output
    channels and an even size, by the phase form (:func:`phase_weight`; making it takes microseconds)."""
    k = weight.shape[-1]
    if not _phased(x, weight):
        return F.conv2d(x, weight, bias, padding=k // 2)
    biases = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, phase_weight(weight), biases, stride=2, padding=k // 2), 2)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with an odd square kernel and "same" padding that runs :func:`same_conv2d` at inference and in
    exported graphs: the same parameters under the same names, so state dicts load unchanged."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        if kernel % 2 == 0:
            raise ValueError(f"SameConv2d needs an odd kernel, got {kernel}")
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():  # training differentiates the plain form, as it always has
            return super().forward(x)
        return same_conv2d(x, self.weight, self.bias)
