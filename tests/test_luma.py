"""BT.709 luma: the weighted sum of the channels, for single frames and stacks, in float32."""

from __future__ import annotations

import numpy as np
from helpers import random_frames

from vs_superslomo.luma import LUMA_WEIGHTS, luma


def test_luma_is_the_bt709_weighted_sum_for_frames_and_stacks() -> None:
    frames = np.stack(random_frames(2, 40, 56))
    y = luma(frames)
    assert y.shape == (2, 40, 56) and y.dtype == np.float32
    expected = sum(w * frames[:, c].astype(np.float64) for c, w in enumerate(LUMA_WEIGHTS))
    np.testing.assert_allclose(y, expected, atol=1e-6)
    np.testing.assert_array_equal(luma(frames[1]), y[1])
    white, red = np.ones((3, 4, 4), np.float32), np.zeros((3, 4, 4), np.float32)
    red[0] = 1
    assert np.allclose(luma(white), 1) and np.allclose(luma(red), LUMA_WEIGHTS[0])
