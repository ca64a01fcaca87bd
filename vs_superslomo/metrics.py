"""Picture quality scores: PSNR and SSIM of frames in [0, 1], for evaluation and for training's validation.

Identical pictures have an infinite PSNR; it is capped at :data:`PSNR_CAP_DB` (the MSE floored at 1e-10), so
means stay finite.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["PSNR_CAP_DB", "batch_psnr", "psnr", "ssim"]

PSNR_CAP_DB = 100.0
_MSE_FLOOR = 1e-10  # 10 ** (-PSNR_CAP_DB / 10)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1], computed in float64; identical images give :data:`PSNR_CAP_DB`."""
    mse = float(np.mean(np.square(a.astype(np.float64) - b.astype(np.float64))))
    return min(PSNR_CAP_DB, -10.0 * math.log10(max(mse, _MSE_FLOOR)))


def batch_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample PSNR in dB of batches of frames in [0, 1] (N, ...), in their own precision, on their device."""
    mse = ((pred - target) ** 2).flatten(1).mean(1).clamp(min=_MSE_FLOOR)
    return -10 * torch.log10(mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two H×W×3 images in [0, 1] (scikit-image, per channel, averaged)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))
