"""PSNR and SSIM: capped for identical frames, exact otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from vs_superslomo import metrics


def test_psnr_is_capped_for_identical_frames_and_exact_otherwise() -> None:
    a = np.full((4, 5, 3), 0.5, np.float32)
    assert metrics.psnr(a, a) == metrics.PSNR_CAP_DB
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)
    b = np.random.default_rng(0).random((16, 16, 3))
    assert metrics.ssim(b, b) == pytest.approx(1.0) and metrics.ssim(b, 1 - b) < 0
