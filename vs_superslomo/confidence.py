"""Where an interpolated frame can be trusted, and plain blending where it cannot.

The network warps both frames along its flows and blends them; where the flows are wrong (flat colour that
optical flow cannot follow, motion larger than it searches, thin lines moving by less than a pixel) it tears
shapes apart or draws lines in the wrong place, and plain blending of the pair would have been better. The
pair itself tells where that happens, per pixel and per t, from what is computed anyway:

- *the flows undo each other* (forward-backward consistency, Sundaram et al. 2010): F01 followed by F10 at
  its target returns home. Checked once per pair at each frame and carried to t along the flow each side's
  pixel came from, weighted by the network's visibility, so a pixel seen from one frame only (occlusion)
  is judged by that frame's flow alone.
- *the two frames warped to t agree*, and agree better than the pair does unwarped: motion compensation
  that explains nothing the plain pair does not has no business moving pixels. Local means over a
  window, so one noisy pixel decides nothing; a disagreement the network's visibility has resolved (one
  side hidden) counts less.

:func:`fall_back` turns a whole frame into the plain blend of the pair when too little of its motion is
trusted, and on request moves each pixel toward the blend by its confidence. (Per pixel it measured worse on
every clip tried: a mix of a right pixel with a ghost is worse than either, and the network's worst frames were
whole frames of wrong motion; weights/README.md.)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .network import Synthesis
from .warp import Warp, backwarp

__all__ = ["DEFAULT_FALLBACK", "MOVING", "STILL", "check_fallback", "confidence_at", "fall_back", "flow_trust"]

# The forward-backward test of flow.consistency_mask, made soft: exp(-|F + B|² / (REL·(|F|² + |B|²) + SLACK²)).
_FB_RELATIVE = 0.01
_FB_SLACK_PX = 0.7
# Warped frames count as agreeing while their local mean absolute difference (RGB in [0, 1]) is at most
# _PHOTO_RATIO of the unwarped pair's plus _PHOTO_SLACK; trust falls by e every _PHOTO_SCALE beyond that.
_PHOTO_RATIO = 0.5
_PHOTO_SLACK = 0.01
_PHOTO_SCALE = 0.02
_WINDOW = 9  # px, the side of the local means
# Where the pair differs by this much (local mean), blending it shows two ghosts: trust falls only by
# exp(-gap / _BLEND_GAP) of the motion's distrust.
_BLEND_GAP = 0.03
# A pixel is changing where the pair differs by more than this mean absolute RGB difference: the frame's
# trusted share is taken over changing pixels (a still background would vouch for any frame).
MOVING = 0.02
# Frames whose changing pixels' motion is trusted less than this on average become plain blends (measured:
# weights/README.md, "Confidence and fallback").
DEFAULT_FALLBACK = 0.35
# A pair whose largest local difference (3×3 mean of the mean absolute RGB difference) stays below this is still
# to the eye: its blend is off by at most this·max(t, 1 − t) anywhere, all that motion could gain, while the
# network's errors on it are not bounded (an animation's stills and the last pixels of a slowing zoom: 0.8 to
# 3.6 dB under the blend, which scored 50-57 dB). Natural footage never measured below 0.15 (compression noise,
# grain): 9 real clips, every pair at k = 2 (k = 8 at 187 fps); animation pairs held or nearly held did.
STILL = 0.1


def check_fallback(fallback: object) -> float:
    """``fallback`` as a float in [0, 1], or ValueError naming what is wrong."""
    if isinstance(fallback, bool) or not isinstance(fallback, int | float) or not 0 <= fallback <= 1:
        raise ValueError(f"fallback must be a number from 0 (off) to 1, or None (the default), got {fallback!r}")
    return float(fallback)


def _squared(flow: Tensor) -> Tensor:
    return flow[:, 0:1] ** 2 + flow[:, 1:2] ** 2


def _agreement(forward: Tensor, backward: Tensor) -> Tensor:
    miss = _squared(forward + backward)
    return torch.exp(-miss / (_FB_RELATIVE * (_squared(forward) + _squared(backward)) + _FB_SLACK_PX**2))


def flow_trust(f01: Tensor, f10: Tensor, warp: Warp) -> tuple[Tensor, Tensor]:
    """Once per pair: how far each frame's flow is undone by the other's at its target, as trust in [0, 1]
    at I0 and at I1, (B, 1, H, W) each."""
    return _agreement(f01, backwarp(f10, f01, warp)), _agreement(f10, backwarp(f01, f10, warp))


def _local_gap(a: Tensor, b: Tensor) -> Tensor:
    return local_mean((a - b).abs().mean(1, keepdim=True), _WINDOW)


def local_mean(x: Tensor, window: int) -> Tensor:
    """The mean of each ``window`` × ``window`` neighbourhood of ``x`` (B, C, H, W), over the part inside the
    picture (``avg_pool2d`` with ``count_include_pad=False``). On the CPU by OpenCV's running box sums, 20 times
    faster than torch's pooling at 9 × 9 (0.6 against 12 ms at 672×416, measured); a float32 sum of 81 terms in
    another order, so equal to it within 1e-6."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.avg_pool2d(x, window, stride=1, padding=window // 2, count_include_pad=False)
    h, w = x.shape[-2:]
    reach = window // 2

    def counts(size: int) -> np.ndarray:
        at = np.arange(size)
        return (np.minimum(at + reach, size - 1) - np.maximum(at - reach, 0) + 1).astype(np.float32)

    inside = np.outer(counts(h), counts(w))
    planes = x.detach().reshape(-1, h, w).numpy()
    out = np.empty(planes.shape, np.float32)
    for i, plane in enumerate(planes):
        cv2.boxFilter(plane, -1, (window, window), out[i], normalize=False, borderType=cv2.BORDER_CONSTANT)
    return torch.from_numpy(out / inside).view(x.shape)


def confidence_at(synthesis: Synthesis, trust: tuple[Tensor, Tensor], warp: Warp) -> Tensor:
    """Per t: (n, 2, H, W) in [0, 1]: the confidence in each pixel of the network's frame, then the trust in
    its motion there.

    ``synthesis`` is the network's blend (:class:`.network.Synthesis`), ``trust`` the pair's :func:`flow_trust`.
    The motion is trusted where both frames' flows hold and the frames warped to t agree (better than the pair
    does unwarped), or where one frame's flow holds and the other's fails (an occlusion: the pixel is seen
    from one frame only, and the network takes it from there). The confidence is the chance that the
    network's pixel beats the plain blend's: its motion's trust, raised where the pair differs so much that the
    blend would show two ghosts (``_BLEND_GAP``).
    """
    s = synthesis
    n = s.weight0.shape[0]
    c0, c1 = (
        backwarp(side.expand(n, -1, -1, -1), flow, warp)
        for side, flow in zip(trust, (s.flow_t0, s.flow_t1), strict=True)
    )
    both = c0 * c1
    plain = _local_gap(s.i0, s.i1)
    excess = (_local_gap(s.warped0, s.warped1) - _PHOTO_RATIO * plain - _PHOTO_SLACK).clamp(min=0)
    motion = both * torch.exp(-excess / _PHOTO_SCALE) + (torch.maximum(c0, c1) - both)
    return torch.cat((1 - (1 - motion) * torch.exp(-plain / _BLEND_GAP), motion), 1)


def fall_back(
    frames: Tensor,
    confidence: Tensor,
    x0: Tensor,
    x1: Tensor,
    times: Tensor,
    fallback: float,
    pixels: bool = False,
) -> tuple[Tensor, Tensor]:
    """``frames`` (n, 3, H, W) where the network is trusted, else the plain blend of ``x0`` and ``x1`` (1, 3, H, W,
    in [0, 1]) at ``times`` (n,).

    A frame whose changing pixels (:data:`MOVING`) have their motion (the second channel of ``confidence``,
    :func:`confidence_at`) trusted less than ``fallback`` on average becomes the blend, and so does every frame
    of a still pair (:data:`STILL`). With ``pixels``, every
    other frame moves toward the blend by its confidence (the first channel) too: exactly the blend where it is
    0, exactly the frame where it is 1. Returns the frames and the confidence, (n, 1, H, W) (0 on frames that
    fell back)."""
    trusted, motion = confidence[:, 0:1], confidence[:, 1:2]
    difference = (x0 - x1).abs().mean(1, keepdim=True)
    moving = (difference > MOVING).to(confidence.dtype)
    changing = moving.sum()
    kept = torch.ones_like(times, dtype=confidence.dtype).view(-1, 1, 1, 1)
    if changing > 0:
        kept = ((motion * moving).sum((1, 2, 3)) / changing >= fallback).to(confidence.dtype).view(-1, 1, 1, 1)
    if float(F.avg_pool2d(difference, 3, 1, 1).max()) < STILL:
        kept = torch.zeros_like(kept)
    trusted = trusted * kept
    if not pixels and bool(kept.all()):
        return frames, trusted  # what the lerp below gives at 1, without making the blend
    tt = times.view(-1, 1, 1, 1).to(frames.dtype)
    blend = (1 - tt) * x0 + tt * x1
    # lerp is exact at both ends: start + w·(end − start) below w = 0.5, end − (1 − w)·(end − start) above.
    return torch.lerp(blend, frames, trusted if pixels else kept.expand_as(trusted)), trusted
