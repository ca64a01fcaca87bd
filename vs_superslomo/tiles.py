"""Frames too large for the device, in overlapping tiles: each a whole pass, cross-faded where they overlap.

Plain PyTorch: the engine hands in the pass over one tile; nothing here knows the network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["MULTIPLE", "TilePass", "forward_tiled", "ramp", "tile_starts"]

MULTIPLE = 32  # the networks' frames are padded to multiples of this; tiles and overlaps are too

Pair = tuple[Tensor, Tensor]
# One tile's pass: (x0, x1, flows, accelerations) cropped to the tile -> (frames, confidence) for it.
TilePass = Callable[[Tensor, Tensor, Pair | None, Pair | None], Pair]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of ``tile`` covering ``size`` with at least ``overlap`` between neighbours."""
    if tile >= size:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return [*starts, size - tile]


def ramp(size: int, span: slice, overlap: int, device: torch.device) -> Tensor:
    """Weights along one axis of a tile: rising over ``overlap`` pixels at inner edges, 1 at frame edges."""
    n = span.stop - span.start
    pos = torch.arange(n, dtype=torch.float32, device=device) + 0.5
    weight = torch.ones(n, dtype=torch.float32, device=device)
    if span.start > 0:
        weight = torch.minimum(weight, pos / overlap)
    if span.stop < size:
        weight = torch.minimum(weight, (n - pos) / overlap)
    return weight


def forward_tiled(
    run: TilePass, x0: Tensor, x1: Tensor, count: int, tile: int, flows: Pair | None, accel: Pair | None
) -> Pair:
    """``count`` frames and their confidence (count, 2, H, W) from tiles of ``tile`` px, each through ``run``,
    cross-faded linearly where they overlap (the confidence too)."""
    h, w = x0.shape[-2:]
    device = x0.device
    overlap = max(MULTIPLE, tile // 4 // MULTIPLE * MULTIPLE)
    out = torch.zeros((count, *x0.shape[1:]), dtype=torch.float32, device=device)
    confidence = torch.zeros((count, 2, h, w), dtype=torch.float32, device=device)
    total = torch.zeros((1, 1, h, w), dtype=torch.float32, device=device)
    for top in tile_starts(h, tile, overlap):
        for left in tile_starts(w, tile, overlap):
            rows, cols = slice(top, top + min(tile, h)), slice(left, left + min(tile, w))

            def crop(pair: Pair | None, rows: slice = rows, cols: slice = cols) -> Pair | None:
                return None if pair is None else (pair[0][..., rows, cols], pair[1][..., rows, cols])

            part, trusted = run(x0[..., rows, cols], x1[..., rows, cols], crop(flows), crop(accel))
            weight = ramp(h, rows, overlap, device)[:, None] * ramp(w, cols, overlap, device)[None, :]
            out[..., rows, cols] += part * weight
            confidence[..., rows, cols] += trusted * weight
            total[..., rows, cols] += weight
    return out / total, confidence / total
