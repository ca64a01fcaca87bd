"""The training losses: the paper's (204·L1 + 102·warp + smoothness, + 0.005·VGG16 conv4_3 MSE when VGG
weights are given) plus a flow-supervision term on known flows (synthetic ground truth, DIS pseudo-labels)
that is strong early and fades out, so a small network learns motion in few steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import JobError
from ..network import SuperSloMo
from ..warp import backwarp
from .config import TrainConfig

__all__ = ["Forward", "VGG16Features", "compute_loss", "flow_supervision", "forward_parts", "load_vgg16", "smoothness"]


@dataclass
class Forward:
    """What the losses need from one forward pass; all frames mean-subtracted, flows in pixels."""

    f01: Tensor
    f10: Tensor
    g0: Tensor  # I0 warped by the approximate Ft0
    g1: Tensor
    out: Tensor  # the synthesized frame (mean-subtracted, not clamped)


def forward_parts(
    model: SuperSloMo,
    i0: Tensor,
    i1: Tensor,
    t: Tensor,
    flows: tuple[Tensor, Tensor] | None = None,
    accel: tuple[Tensor, Tensor] | None = None,
    splat: bool = False,
) -> Forward:
    """The network's forward (:meth:`SuperSloMo.synthesize_parts`) with what the losses need from it;
    ``flows`` (F01, F10) from elsewhere (DIS) replace the flow net's; ``accel`` (A0, A1) adds quadratic motion;
    ``splat`` splats the flows to t."""
    f01, f10 = (f.float() for f in (model.compute_flow(i0, i1) if flows is None else flows))
    g0, g1, out = model.synthesize_parts(i0, i1, f01, f10, t, accel, splat)
    return Forward(f01, f10, g0, g1, out)


def smoothness(flow: Tensor) -> Tensor:
    """Mean absolute horizontal plus vertical difference (the port's smoothness loss for one flow)."""
    dx = (flow[:, :, :, :-1] - flow[:, :, :, 1:]).abs().mean()
    dy = (flow[:, :, :-1, :] - flow[:, :, 1:, :]).abs().mean()
    return dx + dy


def flow_supervision(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 0.01) -> Tensor:
    """Masked mean Charbonnier endpoint error sqrt(|pred − target|² + eps²); mask (B, 1, H, W) in [0, 1]."""
    epe = torch.sqrt(((pred - target) ** 2).sum(1, keepdim=True) + eps * eps)
    return (epe * mask).sum() / mask.sum().clamp(min=1.0)


_VGG16_TO_CONV4_3: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)


class VGG16Features(nn.Module):
    """VGG16 ``features[:22]`` (up to conv4_3, before its ReLU) as the port uses it; torchvision's key names."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_TO_CONV4_3:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU()]
                cin = int(v)
        self.features = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor) -> Tensor:
        features: Tensor = self.features(x)
        return features


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise JobError(f"VGG16 weights {path}: no such file; give torchvision's vgg16 state dict (.pth)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JobError(f"VGG16 weights {path}: cannot be read safely ({exc}); give a plain state dict") from exc
    if not isinstance(state, dict):
        raise JobError(f"VGG16 weights {path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_vgg16(path: str | os.PathLike[str]) -> VGG16Features:
    """Frozen VGG16 features from a state dict with torchvision's keys (``features.N.weight``/``bias``)."""
    state = _read_state_dict(Path(path))
    net = VGG16Features()
    wanted = net.state_dict()
    for key, value in wanted.items():
        got = state.get(key)
        if got is None or tuple(got.shape) != tuple(value.shape):
            found = "missing" if got is None else f"shaped {tuple(got.shape)}"
            raise JobError(f"VGG16 weights {path}: {key} is {found}, expected {tuple(value.shape)}")
    net.load_state_dict({k: state[k].float() for k in wanted})
    net.requires_grad_(False)
    return net.eval()


def compute_loss(
    model: SuperSloMo,
    batch: dict[str, Tensor],
    config: TrainConfig,
    step: int,
    vgg: nn.Module | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The total loss of a batch (tensors already on the model's device) and its parts as floats."""
    i0, i1, it = (model.normalize(batch[k]) for k in ("i0", "i1", "it"))
    dis = config.flow == "dis"
    accel = (batch["accel"][:, :2], batch["accel"][:, 2:]) if config.motion == "quadratic" else None
    flows = (batch["flow01"], batch["flow10"]) if dis else None
    fw = forward_parts(model, i0, i1, batch["t"], flows, accel, config.splat)
    l1 = F.l1_loss
    rec = l1(fw.out, it)
    warp = l1(fw.g0, it) + l1(fw.g1, it)
    parts = {"l1": rec}
    total = config.l1_weight * rec
    if config.mse_weight:
        mse = F.mse_loss(fw.out, it)
        total = total + config.mse_weight * mse
        parts["mse"] = mse
    if not dis:  # terms of the flow net's flows; DIS flows are inputs, with nothing to learn in them
        warp = warp + l1(backwarp(i0, fw.f10, model.warp), i1) + l1(backwarp(i1, fw.f01, model.warp), i0)
        smooth = smoothness(fw.f01) + smoothness(fw.f10)
        total = total + config.smooth_weight * smooth
        parts["smooth"] = smooth
    total = total + config.warp_weight * warp
    parts["warp"] = warp
    if vgg is not None:
        # The port feeds VGG the mean-subtracted frames as they are (no ImageNet normalization).
        perceptual = F.mse_loss(vgg(fw.out), vgg(it))
        total = total + config.perceptual_weight * perceptual
        parts["perceptual"] = perceptual
    weight = 0.0 if dis else config.flow_weight_at(step)
    if weight > 0:
        mask = batch["flow_mask"] * batch["has_flow"].view(-1, 1, 1, 1)
        sup = flow_supervision(fw.f01, batch["flow01"], mask[:, 0:1]) + flow_supervision(
            fw.f10, batch["flow10"], mask[:, 1:2]
        )
        total = total + weight * sup
        parts["flow"] = sup
    parts["total"] = total
    # One device-to-host copy for all the numbers (each .item() would wait for the GPU).
    values = torch.stack([v.detach().float() for v in parts.values()]).tolist()
    return total, dict(zip(parts, values, strict=True))
