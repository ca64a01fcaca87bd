"""Compiled CPU loops (numba) for the per-pixel work torch has no fast operator for.

Forward splatting adds each pixel's values at the four pixels around where it lands. torch does it as eight
``scatter_add_`` calls over whole planes, each reading and writing every plane again: 20-24 ms per t for a
640×360 pair on 2 cores. One pass over the pixels that adds all four corners at once takes a few milliseconds
on one core (:mod:`.splatting`). Compiled on first use and cached on disk by numba, so later processes load it
in milliseconds. Importing this module imports numba (a fifth of a second): its users import it when they first
need it, not with the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

__all__ = ["splat_add"]


def splat_add(out: np.ndarray, values: np.ndarray, offset: np.ndarray, weight: np.ndarray) -> None:
    """Add ``values`` × ``weight`` (C, H, W; weight H, W) bilinearly at x + ``offset`` (2, H, W: x then y, in
    pixels) into ``out`` (H, W, C + 1: channels last, so a corner's sums share a cache line), and the weights
    themselves into its last channel; float32, C-contiguous. Corners outside the picture, and pixels whose
    position is not finite, add nothing. Serial, in pixel order: the same sums every run."""
    _splat_add_compiled(out, values, offset, weight)


def _jit(function: Callable[..., None]) -> Callable[..., None]:
    """``function`` compiled without the GIL, cached on disk where numba finds a folder it may write (beside this
    file, or the user's cache); where it finds none, compiled again in each process instead of failing."""
    try:
        compiled: Callable[..., None] = numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        compiled = numba.njit(nogil=True)(function)
    return compiled


def _splat_add(out: np.ndarray, values: np.ndarray, offset: np.ndarray, weight: np.ndarray) -> None:
    channels, h, w = values.shape
    shares = np.empty(channels + 1, np.float32)
    for y in range(h):
        for x in range(w):
            px = x + offset[0, y, x]
            py = y + offset[1, y, x]
            # Also false for NaN: a broken flow's pixel lands nowhere (the engine's finite check names it).
            if not (-1.0 < px < w and -1.0 < py < h):
                continue
            left, top = math.floor(px), math.floor(py)
            fx, fy = px - left, py - top
            col, row = int(left), int(top)  # from -1 to w - 1 and h - 1: the corner after is checked, not this
            weight_here = weight[y, x]
            for c in range(channels):
                shares[c] = values[c, y, x] * weight_here
            shares[channels] = weight_here
            # The four corners written out: as loops over tuples numba's code took twice as long (measured).
            if row >= 0:
                if col >= 0:
                    _add(out[row, col], shares, (1 - fx) * (1 - fy))
                if col + 1 < w:
                    _add(out[row, col + 1], shares, fx * (1 - fy))
            if row + 1 < h:
                if col >= 0:
                    _add(out[row + 1, col], shares, (1 - fx) * fy)
                if col + 1 < w:
                    _add(out[row + 1, col + 1], shares, fx * fy)


@numba.njit(inline="always")  # compiled into its callers
def _add(into: np.ndarray, shares: np.ndarray, corner: float) -> None:
    for c in range(shares.shape[0]):
        into[c] += shares[c] * corner


_splat_add_compiled = _jit(_splat_add)
