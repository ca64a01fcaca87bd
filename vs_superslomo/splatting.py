"""The flows from time t back to I0 and I1 by forward splatting (flow reversal), instead of the paper's estimate.

The paper estimates Ft0 and Ft1 from F01 and F10 *at the same pixel* (``network.flow_coefficients``), which
is right only where the flow is smooth: where an object moves over a background, the pixel at x at time t
takes the motion of whatever was at x in I0 or I1, not of what is there at t. Splatting moves each pixel of
I0 along its own trajectory to where it is at t and writes the flows back to I0 and on to I1 there (as in
Xu et al., "Quadratic Video Interpolation", 2019, for I0's; here I1's trajectories are splatted too and
both share one field, each weighted by its closeness in time). Where trajectories collide (occlusion), the
one whose pixel looks the same at both ends wins (softmax splatting's photometric importance, Niklaus and
Liu, CVPR 2020): a pixel about to be covered does not. Where none lands (disocclusion), the paper's estimate
is kept. Measured with the default weights on the held-out clips (frame-drop protocol): +0.10 dB on the k = 2
mean and +0.15 at k = 4 over the paper's estimate (weights/README.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .warp import Warp, backwarp

__all__ = ["IMPORTANCE_SHARPNESS", "importance", "splatted_flows"]

# exp(-sharpness · |I0 - I1 warped|) on frames in [0, 1]: 5, 20 and 60 measured within 0.03 dB of each other.
IMPORTANCE_SHARPNESS = 20.0
# Below this splatted weight a pixel counts as a hole: nothing lands there but slivers of bilinear shares
# or paths whose pixels did not look alike at both ends (importance near 0).
_HOLE = 1e-3


def importance(i0: Tensor, i1: Tensor, f01: Tensor, f10: Tensor, warp: Warp) -> tuple[Tensor, Tensor]:
    """Each frame's pixels' weight when trajectories collide, (B, 1, H, W) each: high where the pixel is
    seen alike at the other end of its flow. The same for every t of a pair, so computed once."""
    e0 = (i0 - backwarp(i1, f01, warp)).abs().mean(1, keepdim=True)
    e1 = (i1 - backwarp(i0, f10, warp)).abs().mean(1, keepdim=True)
    return torch.exp(-IMPORTANCE_SHARPNESS * e0), torch.exp(-IMPORTANCE_SHARPNESS * e1)


def _accumulate(out: Tensor, index: Tensor, values: Tensor) -> None:
    """``out[i, j, index[i, j, k]] += values[i, j, k]`` for ``out`` (N, C, H·W), adding colliding values in the
    same order every time. On the CPU ``scatter_add_`` along the last axis: each plane serially in index
    order, the planes in parallel. (One flat scatter of all the planes is serial: a 640×360 pair's splats
    took 23-55 ms for one t and 198-421 ms for 7 that way, 12-33 and 87-259 ms this way, 9 runs each on 2
    cores. ``index_put_`` with ``accumulate`` adds in parallel there, and its frames changed from run to
    run.) On CUDA :func:`_accumulate_flat`."""
    if out.device.type == "cuda":
        _accumulate_flat(out, index, values)
    else:
        out.scatter_add_(2, index, values)


def _accumulate_flat(out: Tensor, index: Tensor, values: Tensor) -> None:
    """:func:`_accumulate` by ``index_put_`` on the planes laid end to end: CUDA's way (PyTorch sorts the indices
    there before adding; the others add atomically, in no fixed order. Not yet measured on a GPU)."""
    n, c, size = out.shape
    planes = torch.arange(n * c, device=out.device).view(n, c, 1) * size
    out.view(-1).index_put_(((index + planes).view(-1),), values.reshape(-1), accumulate=True)


def _compiled(*inputs: Tensor) -> bool:
    """Whether splats of ``inputs`` run compiled (:func:`.kernels.splat_add`): all on the CPU in float32, and no
    gradient wanted."""
    wants_grad = torch.is_grad_enabled() and any(x.requires_grad for x in inputs)
    return not wants_grad and all(x.device.type == "cpu" and x.dtype == torch.float32 for x in inputs)


def _splat(out: Tensor, values: Tensor, offset: Tensor, weight: Tensor, compiled: bool) -> None:
    """Add ``values`` × ``weight`` (N, C, H, W; weight N, 1, H, W) bilinearly at x + ``offset`` into ``out``
    (N, C + 1, H, W), the weights themselves into its last channel. Pixels leaving the picture are dropped.

    ``compiled`` (:func:`_compiled`): ``out`` is laid out channels last and one compiled pass over the pixels adds
    all four corners (:func:`.kernels.splat_add`; 20-24 → 4-9 ms a frame at 672×416, measured); elsewhere, and
    for gradients, contiguous, and :func:`_accumulate` adds each corner's shares in turn."""
    n, c, h, w = values.shape
    if compiled:
        from .kernels import splat_add  # imports numba: only when the CPU first splats

        planes = out.permute(0, 2, 3, 1).numpy()
        arrays = [x.detach().contiguous().numpy() for x in (values, offset, weight)]
        for b in range(n):
            splat_add(planes[b], arrays[0][b], arrays[1][b], arrays[2][b, 0])
        return
    xs = torch.arange(w, dtype=offset.dtype, device=offset.device).view(1, 1, w)
    ys = torch.arange(h, dtype=offset.dtype, device=offset.device).view(1, h, 1)
    x, y = xs + offset[:, 0], ys + offset[:, 1]
    left, top = torch.floor(x), torch.floor(y)
    fx, fy = x - left, y - top
    # Each corner's share along each axis, zero where that column or row lies outside the picture; its index
    # is clamped into the picture, where a zero share adds nothing (every call adds the same number of terms,
    # with no sync on a GPU).
    columns = [
        ((1 - fx) * ((left >= 0) & (left < w)), left.clamp(0, w - 1).long()),
        (fx * ((left >= -1) & (left < w - 1)), (left + 1).clamp(0, w - 1).long()),
    ]
    rows = [
        ((1 - fy) * ((top >= 0) & (top < h)), top.clamp(0, h - 1).long() * w),
        (fy * ((top >= -1) & (top < h - 1)), (top + 1).clamp(0, h - 1).long() * w),
    ]
    source = torch.cat((values * weight, weight), 1).view(n, c + 1, h * w)
    flat = out.view(n, c + 1, h * w)
    for share_y, row in rows:
        for share_x, col in columns:
            index = (row + col).view(n, 1, h * w).expand(n, c + 1, h * w)  # the same pixel in every channel
            _accumulate(flat, index, source * (share_x * share_y).view(n, 1, h * w))


def splatted_flows(
    t: Tensor,
    f01: Tensor,
    f10: Tensor,
    weights: tuple[Tensor, Tensor],
    estimate: tuple[Tensor, Tensor],
    accel: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """``(Ft0, Ft1)`` at times ``t`` (N, 1, 1, 1) by splatting I0's and I1's trajectories to t.

    ``weights`` from :func:`importance`; ``estimate`` (the paper's Ft0, Ft1) where nothing lands; ``accel``
    (A0, A1) bends the trajectories as in :func:`.network.acceleration_coefficients` (the same correction,
    t(1 - t)/2 · A, at both ends of a trajectory). Flows and weights of batch 1 serve every t.
    """
    n = t.shape[0]
    bend = t * (1 - t) / 2
    # Where each frame's pixel is at t, relative to where it starts.
    d0, d1 = t * f01, (1 - t) * f10
    if accel is not None:
        d0, d1 = d0 - bend * accel[0], d1 - bend * accel[1]
    # I0's pixel is back at I0 after -d0 and reaches I1 after F01 - d0; I1's likewise the other way.
    h, w = f01.shape[-2:]
    dtype = torch.promote_types(d0.dtype, weights[0].dtype)
    splats = [
        (torch.cat((-d0, f01 - d0), 1), d0, weights[0].expand(n, -1, -1, -1) * (1 - t)),
        (torch.cat((f10 - d1, -d1), 1), d1, weights[1].expand(n, -1, -1, -1) * t),
    ]
    # Both flows, then the weight; channels last for the compiled splat (:func:`_splat`).
    compiled = _compiled(t, f01, f10, *weights, *(accel or ()))
    if compiled:
        total = torch.zeros((n, h, w, 5), dtype=dtype).permute(0, 3, 1, 2)
    else:
        total = torch.zeros((n, 5, h, w), dtype=dtype, device=f01.device)
    for values, offset, weight in splats:
        _splat(total, values, offset, weight, compiled)
    weight = total[:, 4:5]
    flows = total[:, :4] / weight.clamp(min=_HOLE)
    landed = weight > _HOLE
    return torch.where(landed, flows[:, 0:2], estimate[0]), torch.where(landed, flows[:, 2:4], estimate[1])
