"""The Super SloMo network in plain PyTorch (Jiang et al., CVPR 2018), faithful to the public port.

Two U-Nets of one shape: the flow net ``UNet(6, 4)`` and the interpolation net ``UNet(20, 5)``. Module
and parameter names follow the public port's ``model.py`` so its state dicts load without renaming.
``width`` scales every channel count for smaller variants (1.0 is the published network); the flow net may
have its own (``flow_width``), so a thinner interpolation net can carry an existing flow net.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .convolution import SameConv2d, same_conv2d
from .flow import FlowSource
from .splatting import importance, splatted_flows
from .warp import Resample, Warp, backwarp

__all__ = [
    "DEFAULT_MEAN",
    "PreparedPair",
    "SuperSloMo",
    "Synthesis",
    "UNet",
    "acceleration_coefficients",
    "channels",
    "flow_coefficients",
    "flows_at",
    "intermediate_flows",
]

DEFAULT_MEAN: tuple[float, float, float] = (0.429, 0.431, 0.397)
_BASE_CHANNELS = (32, 64, 128, 256, 512)
_SLOPE = 0.1


def channels(width: float) -> tuple[int, ...]:
    """Channel counts of the five U-Net levels for a width multiplier."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return tuple(max(1, round(c * width)) for c in _BASE_CHANNELS)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _SLOPE)


class _Down(nn.Module):
    """Average-pool 2x2, then two k×k convolutions with LeakyReLU."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = SameConv2d(cin, cout, kernel)
        self.conv2 = SameConv2d(cout, cout, kernel)

    def forward(self, x: Tensor) -> Tensor:
        x = F.avg_pool2d(x, 2)
        return _lrelu(self.conv2(_lrelu(self.conv1(x))))


def _bilinear_kernel(channels: int) -> Tensor:
    """Depthwise 4×4 kernel of ×2 bilinear upsampling (align_corners=False): taps 1/4, 3/4, 3/4, 1/4.

    Made on the CPU whatever the default device: on the meta device (the weights loader's layout check) these
    few operations import torch's compiler, a second of start-up for a constant.
    """
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25], device="cpu")
    return (taps[:, None] * taps[None, :]).expand(channels, 1, 4, 4).contiguous()


class _Up(nn.Module):
    """Bilinear x2, conv in→out, concatenate the skip, conv 2·out→out."""

    bilinear: Tensor  # a buffer (typed here: nn.Module types attributes as Tensor | Module)

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = SameConv2d(cin, cout, 3)
        self.conv2 = SameConv2d(2 * cout, cout, 3)
        self.register_buffer("bilinear", _bilinear_kernel(cin), persistent=False)

    def upsample(self, x: Tensor) -> Tensor:
        """``F.interpolate(x, scale_factor=2, mode="bilinear")``; on the CPU as a transposed convolution.

        Equal to it within 1e-6 and three times faster on the CPU (measured at 64 channels, 448×256);
        CUDA keeps its native kernel, and ONNX graphs get a Resize (10-20% faster than the transposed
        convolution in onnxruntime, measured; as fast in OpenVINO; what TensorRT expects).
        """
        if x.is_cuda or torch.onnx.is_in_onnx_export():
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        kernel = self.bilinear.to(x.dtype)
        return F.conv_transpose2d(padded, kernel, stride=2, groups=x.shape[1])[..., 3:-3, 3:-3]

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = _lrelu(self.conv1(self.upsample(x)))
        return _lrelu(self.conv2(torch.cat((x, skip), 1)))


class UNet(nn.Module):
    """The port's U-Net; H and W of the input must be multiples of 32 (five poolings)."""

    def __init__(self, in_channels: int, out_channels: int, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels(width)
        self.conv1 = SameConv2d(in_channels, c1, 7)
        self.conv2 = SameConv2d(c1, c1, 7)
        self.down1 = _Down(c1, c2, 5)
        self.down2 = _Down(c2, c3, 3)
        self.down3 = _Down(c3, c4, 3)
        self.down4 = _Down(c4, c5, 3)
        self.down5 = _Down(c5, c5, 3)
        self.up1 = _Up(c5, c5)
        self.up2 = _Up(c5, c4)
        self.up3 = _Up(c4, c3)
        self.up4 = _Up(c3, c2)
        self.up5 = _Up(c2, c1)
        self.conv3 = SameConv2d(c1, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_from_conv1(self.conv1(x))

    def forward_from_conv1(self, c1: Tensor) -> Tensor:
        """The rest of the network from the first convolution's output (before its activation)."""
        s1 = _lrelu(self.conv2(_lrelu(c1)))
        s2 = self.down1(s1)
        s3 = self.down2(s2)
        s4 = self.down3(s3)
        s5 = self.down4(s4)
        x = self.down5(s5)
        x = self.up1(x, s5)
        x = self.up2(x, s4)
        x = self.up3(x, s3)
        x = self.up4(x, s2)
        x = self.up5(x, s1)
        # The public port applies LeakyReLU to the output too; its weights expect it.
        return _lrelu(self.conv3(x))


def flow_coefficients(t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Coefficients (a, b, c, d) with Ft0 = a·F01 + b·F10 and Ft1 = c·F01 + d·F10."""
    return -(1 - t) * t, t * t, (1 - t) * (1 - t), -t * (1 - t)


def acceleration_coefficients(t: Tensor) -> tuple[Tensor, Tensor]:
    """Coefficients (e0, e1) of the accelerations A0 = F01 + F0,-1 and A1 = F10 + F12 in Ft0 and Ft1.

    Quadratic motion through the frames before and after the pair (as in Xu et al., "Quadratic Video
    Interpolation", 2019), put into the paper's estimate: I0's estimate of the trajectory is
    -F0t = -(v0·t + A0·t²/2) with v0 = (F01 - F0,-1)/2, I1's likewise, and Ft0 = (1 - t)·I0's + t·I1's
    as in the paper. The linear terms come out as :func:`flow_coefficients`' and the rest is the same
    for Ft0 and Ft1: t(1 - t)/2 · ((1 - t)·A0 + t·A1). Under constant velocity A0 = A1 = 0.
    """
    half = t * (1 - t) / 2
    return half * (1 - t), half * t


def flows_at(t: Tensor, f01: Tensor, f10: Tensor, accel: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """``(Ft0, Ft1)``: the paper's linear estimate, plus the acceleration terms when ``accel`` = (A0, A1)."""
    a, b, c, d = flow_coefficients(t)
    ft0 = a * f01 + b * f10
    ft1 = c * f01 + d * f10
    if accel is not None:
        e0, e1 = acceleration_coefficients(t)
        correction = e0 * accel[0] + e1 * accel[1]
        ft0, ft1 = ft0 + correction, ft1 + correction
    return ft0, ft1


def intermediate_flows(
    t: Tensor,
    f01: Tensor,
    f10: Tensor,
    accel: tuple[Tensor, Tensor] | None = None,
    weights: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """``(Ft0, Ft1)``: :func:`flows_at`, or splatted (:func:`.splatting.splatted_flows`) when ``weights``
    (:func:`.splatting.importance`) are given, with :func:`flows_at` where nothing lands."""
    estimate = flows_at(t, f01, f10, accel)
    return estimate if weights is None else splatted_flows(t, f01, f10, weights, estimate, accel)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """``flow`` (B, 2, h, w) in pixels resized to ``size`` (H, W), its vectors scaled with it (x by W/w, y by H/h);
    smaller with antialiasing (an average, as the pictures are), larger bilinearly."""
    h, w = flow.shape[-2:]
    shrink = size[0] < h or size[1] < w
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return resized * torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)


# Input channels of the interpolation net, in the port's order: I0, I1, F01, F10, Ft1, Ft0, g1, g0.
_STATIC = slice(0, 10)  # I0, I1, F01, F10: the same for every t of a pair
_FT1, _FT0, _WARPED = slice(10, 12), slice(12, 14), slice(14, 20)
_PER_T_SPLATTED = slice(10, 20)  # Ft1, Ft0, g1, g0: splatted flows are not linear in t


@dataclass
class PreparedPair:
    """Everything about a pair that does not depend on t, computed once (see :meth:`SuperSloMo.prepare`).

    The interpolation net's first convolution is linear in its input, and its Ft0/Ft1 channels are
    t-weighted sums of F01 and F10, so its output for any t is ``a·P[0] + b·P[1] + c·P[2] + d·P[3] +
    P[4] + conv(g1, g0)`` with (a, b, c, d) from :func:`flow_coefficients`: only the warped frames need a
    per-t convolution, and the rest is one weighted sum. With ``accel`` (A0, A1), both go through the Ft0
    and Ft1 weights together (their terms are the same in both) as P[5] and P[6], weighted by
    :func:`acceleration_coefficients`. With ``splat`` (flows splatted to t, not linear in t), Ft0 and Ft1
    go through the per-t convolution with the warped frames, and P is the share alone.
    """

    i0: Tensor
    i1: Tensor
    f01: Tensor
    f10: Tensor
    # (5, C, H, W): F01 and F10 through the Ft0 weights, then through the Ft1 weights, then the share of the
    # I0, I1, F01, F10 channels and the bias (weight 1 for every t); with ``accel``, (7, C, H, W): A0 and A1
    # through the sum of the Ft0 and Ft1 weights follow. With ``splat``, the share alone (1, C, H, W).
    parts: Tensor
    # The slice of the weights convolved per t, contiguous once instead of sliced per t: g1, g0; with
    # ``splat``, Ft1, Ft0, g1, g0.
    warped_weight: Tensor
    accel: tuple[Tensor, Tensor] | None = None
    splat: tuple[Tensor, Tensor] | None = None  # importance weights (:func:`.splatting.importance`)


@dataclass
class Synthesis:
    """The network's output frames with what they were blended from (the confidence of :mod:`.confidence`
    reads them): ``frame`` (normalized, mean not added) = (weight0·warped0 + weight1·warped1) / (weight0 +
    weight1), where warped0/1 are I0 and I1 (``i0``, ``i1``, normalized) warped along the refined flows
    ``flow_t0``/``flow_t1`` to t and weight0/1 are (1 − t)·V0 and t·V1."""

    frame: Tensor
    i0: Tensor
    i1: Tensor
    warped0: Tensor
    warped1: Tensor
    weight0: Tensor
    weight1: Tensor
    flow_t0: Tensor
    flow_t1: Tensor


class SuperSloMo(nn.Module):
    """Flow net + interpolation net; frames in and out are RGB in [0, 1], shape (B, 3, H, W).

    ``warp`` is ``"legacy"`` for the original checkpoint, ``"exact"`` for weights trained here.
    ``flow_source`` is the flow the interpolation net was trained on: ``"net"`` (the flow U-Net, as in the
    paper) or ``"dis"`` (OpenCV DIS flows, given to :meth:`prepare`); the filter's ``flow="auto"`` follows it.
    ``width`` is the interpolation net's channel multiplier, ``flow_width`` the flow net's (None: the same).
    """

    mean: Tensor  # a buffer (typed here: nn.Module types attributes as Tensor | Module)

    def __init__(
        self,
        width: float = 1.0,
        warp: Warp = "exact",
        mean: Sequence[float] = DEFAULT_MEAN,
        flow_source: FlowSource = "net",
        flow_width: float | None = None,
    ) -> None:
        super().__init__()
        self.width = width
        self.flow_width = width if flow_width is None else flow_width
        self.warp: Warp = warp
        self.flow_source: FlowSource = flow_source
        self.flow = UNet(6, 4, self.flow_width)
        self.interp = UNet(20, 5, width)
        # Not persistent: the state dict keeps only the port's keys.
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def normalize(self, frames: Tensor) -> Tensor:
        return frames - self.mean

    def compute_flow(
        self, i0: Tensor, i1: Tensor, flow_net: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(F01, F10)`` in pixels for normalized frames; independent of t, so once per pair.

        ``flow_net`` runs the flow U-Net in place of :attr:`flow` (a compiled or exported copy of it).
        """
        out = (flow_net or self.flow)(torch.cat((i0, i1), 1))
        return out[:, 0:2], out[:, 2:4]

    def synthesize(
        self,
        i0: Tensor,
        i1: Tensor,
        f01: Tensor,
        f10: Tensor,
        t: Tensor,
        accel: tuple[Tensor, Tensor] | None = None,
        splat: bool = False,
    ) -> Tensor:
        """Intermediate frames at per-sample times ``t`` (shape (B,)) from normalized inputs and flows.

        All inputs have batch B (expand one pair to B times). Returns normalized frames (mean not added).
        This is the paper's computation step by step, as the port runs it for one t at a time; ``accel``
        adds quadratic motion (:func:`acceleration_coefficients`), ``splat`` splats the flows to t
        (:mod:`.splatting`) instead of the paper's estimate.
        """
        return self.synthesize_parts(i0, i1, f01, f10, t, accel, splat)[2]

    def synthesize_parts(
        self,
        i0: Tensor,
        i1: Tensor,
        f01: Tensor,
        f10: Tensor,
        t: Tensor,
        accel: tuple[Tensor, Tensor] | None = None,
        splat: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`synthesize` keeping the first warps: ``(g0, g1, frame)`` (the training's warp loss uses them)."""
        tt = t.view(-1, 1, 1, 1).float()
        i0, i1, f01, f10 = (x.float() for x in (i0, i1, f01, f10))
        weights = importance(i0, i1, f01, f10, self.warp) if splat else None
        accel = None if accel is None else (accel[0].float(), accel[1].float())
        ft0, ft1 = intermediate_flows(tt, f01, f10, accel, weights)
        g0 = backwarp(i0, ft0, self.warp)
        g1 = backwarp(i1, ft1, self.warp)
        o = self.interp(torch.cat((i0, i1, f01, f10, ft1, ft0, g1, g0), 1))
        return g0, g1, self._blend(i0, i1, ft0, ft1, o, tt).frame

    def _blend(
        self, i0: Tensor, i1: Tensor, ft0: Tensor, ft1: Tensor, o: Tensor, tt: Tensor, resample: Resample = "bilinear"
    ) -> Synthesis:
        """Refined flows and visibility to the output frame. In fp32 even under autocast: flows of
        hundreds of pixels and a division by small weights lose too much in half precision."""
        o = o.float()
        ft0f = o[:, 0:2] + ft0
        ft1f = o[:, 2:4] + ft1
        v0 = torch.sigmoid(o[:, 4:5])
        v1 = 1 - v0
        w0 = (1 - tt) * v0
        w1 = tt * v1
        warped0, warped1 = backwarp(i0, ft0f, self.warp, resample), backwarp(i1, ft1f, self.warp, resample)
        frame = (w0 * warped0 + w1 * warped1) / (w0 + w1)
        return Synthesis(frame, i0, i1, warped0, warped1, w0, w1, ft0f, ft1f)

    def prepare(
        self,
        i0: Tensor,
        i1: Tensor,
        flows: tuple[Tensor, Tensor] | None = None,
        flow_net: Callable[[Tensor], Tensor] | None = None,
        accel: tuple[Tensor, Tensor] | None = None,
        splat: bool = False,
    ) -> PreparedPair:
        """Flows and the t-independent part of the interpolation net's first convolution for one pair.

        ``flows`` = (F01, F10) from elsewhere (DIS) replaces the flow net's; ``flow_net`` as in
        :meth:`compute_flow`; ``accel`` = (A0, A1) adds quadratic motion (:func:`acceleration_coefficients`);
        ``splat`` splats the flows to each t (:mod:`.splatting`).
        """
        f01, f10 = self.compute_flow(i0, i1, flow_net) if flows is None else flows
        conv = self.interp.conv1
        weight = conv.weight
        static = same_conv2d(torch.cat((i0, i1, f01, f10), 1), weight[:, _STATIC].contiguous(), conv.bias)
        if accel is not None:
            accel = (accel[0].float(), accel[1].float())
        if splat:
            i0, i1, f01, f10 = (x.float() for x in (i0, i1, f01, f10))
            weights = importance(i0, i1, f01, f10, self.warp)
            per_t = weight[:, _PER_T_SPLATTED].contiguous()
            return PreparedPair(i0, i1, f01, f10, static, per_t, accel, weights)
        both = torch.cat((f01, f10))  # a batch of two: both go through the same weight slices
        flow_parts = [same_conv2d(both, weight[:, part].contiguous()) for part in (_FT0, _FT1)]
        parts = torch.cat([*flow_parts, static])
        if accel is not None:
            # A0 and A1 enter Ft0 and Ft1 alike: one convolution through the sum of both weight slices.
            both_slices = (weight[:, _FT0] + weight[:, _FT1]).contiguous()
            parts = torch.cat([parts, same_conv2d(torch.cat(accel), both_slices)])
        warped_weight = weight[:, _WARPED].contiguous()
        return PreparedPair(i0.float(), i1.float(), f01.float(), f10.float(), parts, warped_weight, accel)

    def synthesize_prepared(
        self,
        pair: PreparedPair,
        t: Tensor,
        interp_rest: Callable[[Tensor], Tensor] | None = None,
        resample: Resample = "bilinear",
    ) -> Tensor:
        """:meth:`synthesize` for many t of one prepared pair (batch B = len(t)), with less work per t.

        Equal to :meth:`synthesize` up to float rounding (the first convolution's sum is regrouped).
        ``interp_rest`` runs :meth:`UNet.forward_from_conv1` of the interpolation net in its place (a
        compiled or exported copy); the warps, flow formulas and blend stay here, the same for every backend.
        """
        return self.synthesize_prepared_parts(pair, t, interp_rest, resample).frame

    def synthesize_prepared_parts(
        self,
        pair: PreparedPair,
        t: Tensor,
        interp_rest: Callable[[Tensor], Tensor] | None = None,
        resample: Resample = "bilinear",
    ) -> Synthesis:
        """:meth:`synthesize_prepared` with the warped frames, weights and flows its frames were blended from;
        ``resample`` reads the final warps (those blended into the frame; the network's inputs stay bilinear,
        as it was trained)."""
        tt = t.view(-1, 1, 1, 1).float()
        ft0, ft1 = intermediate_flows(tt, pair.f01, pair.f10, pair.accel, pair.splat)
        n = tt.shape[0]
        i0, i1 = pair.i0.expand(n, -1, -1, -1), pair.i1.expand(n, -1, -1, -1)
        g0 = backwarp(i0, ft0, self.warp)
        g1 = backwarp(i1, ft1, self.warp)
        per_t = (g1, g0) if pair.splat is None else (ft1, ft0, g1, g0)
        warped = same_conv2d(torch.cat(per_t, 1), pair.warped_weight)
        rest = interp_rest or self.interp.forward_from_conv1
        if pair.splat is not None:
            return self._blend(i0, i1, ft0, ft1, rest(warped.add_(pair.parts)), tt, resample)
        coefficients = flow_coefficients(tt)
        # In place, one part at a time: no temporaries, faster than einsum on the CPU (measured).
        c1 = warped.add_(pair.parts[4])
        for coefficient, part in zip(coefficients, pair.parts[:4], strict=True):
            c1.addcmul_(coefficient.to(c1.dtype), part)
        if pair.accel is not None:
            for coefficient, part in zip(acceleration_coefficients(tt), pair.parts[5:], strict=True):
                c1.addcmul_(coefficient.to(c1.dtype), part)
        return self._blend(i0, i1, ft0, ft1, rest(c1), tt, resample)

    def blend_at(self, i0: Tensor, i1: Tensor, low: Synthesis, resample: Resample = "bilinear") -> Tensor:
        """The frames of a synthesis made from smaller copies of ``i0`` and ``i1`` (normalized, (1, 3, H, W)),
        warped and blended at full size: its refined flows and weights resized to H × W (RIFE's ``scale``)."""
        size = (i0.shape[-2], i0.shape[-1])
        ft0, ft1 = resize_flow(low.flow_t0, size), resize_flow(low.flow_t1, size)
        w0, w1 = (F.interpolate(w, size=size, mode="bilinear", align_corners=False) for w in (low.weight0, low.weight1))
        n = ft0.shape[0]
        warped0 = backwarp(i0.expand(n, -1, -1, -1), ft0, self.warp, resample)
        warped1 = backwarp(i1.expand(n, -1, -1, -1), ft1, self.warp, resample)
        return (w0 * warped0 + w1 * warped1) / (w0 + w1)

    def forward(self, frame0: Tensor, frame1: Tensor, t: Tensor) -> Tensor:
        """Frames in [0, 1] at times ``t`` (shape (B,)); inputs (B, 3, H, W) with H, W multiples of 32."""
        i0, i1 = self.normalize(frame0), self.normalize(frame1)
        f01, f10 = self.compute_flow(i0, i1)
        return (self.synthesize(i0, i1, f01, f10, t) + self.mean).clamp(0, 1)
