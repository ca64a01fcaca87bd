"""The sizes the networks see: frames padded by a replicated margin to a multiple of 32, and ``scale``.

Plain PyTorch: the engine pads every pair here and, below ``scale=1``, shrinks what the networks read;
``scale=None`` picks it by the frame's size (:func:`auto_scale`).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .network import resize_flow
from .tiles import MULTIPLE

__all__ = [
    "AUTO_SCALE_PIXELS",
    "FAR_MARGIN",
    "MARGIN",
    "SCALES",
    "auto_scale",
    "check_scale",
    "flow_scale",
    "network_size",
    "pad",
    "padded_size",
    "shrunk",
]

# Replicated border around every frame. Trained on crops from inside pictures, the networks never saw a
# picture's edge; there, the interpolation net's flow residuals go wrong (a 187 fps clip with a black top
# row and an arm leaving the picture: 36.0 dB without a margin, 40.4 dB with 8 or 16 px, blend 40.3).
# At 1080p, 16 px costs nothing over 8: both pad 1920×1080 to 1952×1120. Only for the exact warp: the
# legacy warp's sub-pixel shift depends on the position in the frame, so a margin would move the picture
# and the original checkpoint would no longer reproduce the original pipeline.
MARGIN = 16
# On the right and bottom the margin may be as small as this where that saves a block of 32: those rows and columns
# are the padding up to the multiple anyway, and the picture keeps its place. 640×360 pads to 672×384 instead of
# 672×416 (8 % fewer pixels for every warp, blend and convolution; the command line 7.06 → 6.92 s, medians of 6
# alternating runs, 2026-12-07); the 640×360 and 520×380 default evaluation windows scored the same or up to
# 0.03 dB better, and the held-out clips' sizes pad as before.
FAR_MARGIN = 8

# The networks' resolution as a share of the frame's (vs-rife's ``scale``, here only downward): from a quarter.
SCALES = (0.25, 1.0)
# scale=None: the networks at half size from this many pixels of padded frame up (1280×720 pads to 1312×768).
# Measured on the held-out 1280×720 clips (2026-12-06, width-0.125 default): cockatoo 28.82 / 23.02 dB at k = 2 / 4
# against 28.76 / 22.88 at full size, Big Buck Bunny 36.06 / 31.06 against 36.06 / 31.05, in 41 % less time at
# 1280×720 2×; smaller frames lose (a 480×352 animation 0.46 dB), so they keep the full size.
AUTO_SCALE_PIXELS = 1280 * 720

Pair = tuple[Tensor, Tensor]


def check_scale(scale: object) -> float | None:
    """``scale`` as a float in [0.25, 1], None (by the frame's size), or ValueError saying what it must be."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not SCALES[0] <= scale <= SCALES[1]:
        raise ValueError(
            f"scale must be a number from {SCALES[0]} to {SCALES[1]} (the networks' share of the size), or None "
            f"(by the frame's size), got {scale!r}"
        )
    return float(scale)


def auto_scale(height: int, width: int) -> float:
    """``scale=None``'s choice for padded frames of ``height`` × ``width``: 0.5 from :data:`AUTO_SCALE_PIXELS` up,
    else 1."""
    return 0.5 if height * width >= AUTO_SCALE_PIXELS else 1.0


def padded_size(height: int, width: int, margin: int) -> tuple[int, int]:
    """The size :func:`pad` gives a ``height`` × ``width`` picture: ``margin`` before it, at least
    :data:`FAR_MARGIN` (or ``margin`` if smaller) after it, up to a multiple of 32."""
    far = min(margin, FAR_MARGIN)
    return _round_up(height + margin + far), _round_up(width + margin + far)


def flow_scale(scale: float) -> float:
    """The size DIS computes flows at, as a share of the frame's, for networks at ``scale``: halfway to the full
    size. DIS (medium) computes its finest flow at half the size it reads, so at the networks' own size their flows
    come out coarser: the held-out 1280×720 clips at ``scale`` 0.5 (2026-12-06, eval --only cockatoo,bigbuckbunny),
    mean of both 32.44 / 27.04 dB at k = 2 / 4 with full-size DIS, 32.42 / 27.06 with DIS at 0.75 and 32.32 / 26.97
    at 0.5 (Big Buck Bunny -0.28 dB at k = 2). DIS at 0.75 takes 35 ms a direction on one core against 65 at full
    size."""
    return (1 + scale) / 2


def pad(x: Tensor, margin: int) -> Tensor:
    """``margin`` replicated pixels on the top and left, and on the right and bottom up to :func:`padded_size`."""
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = padded_size(h, w, margin)
    return F.pad(x, (margin, pw - w - margin, margin, ph - h - margin), mode="replicate")


def network_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size the networks run at for padded frames of ``height`` × ``width``: ``scale`` of it, rounded up
    to the networks' multiple of 32."""
    if scale == 1:
        return height, width
    return _round_up(height * scale), _round_up(width * scale)


def _round_up(n: float) -> int:
    return max(MULTIPLE, -(-round(n) // MULTIPLE) * MULTIPLE)


def shrunk(size: tuple[int, int], i0: Tensor, i1: Tensor, flows: Pair | None, accel: Pair | None) -> Any:
    """The frames (antialiased, as an average) and the flows and accelerations (vectors scaled too) at ``size``."""
    small = (F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True) for x in (i0, i1))
    vectors = (None if p is None else (resize_flow(p[0], size), resize_flow(p[1], size)) for p in (flows, accel))
    return (*small, *vectors)
