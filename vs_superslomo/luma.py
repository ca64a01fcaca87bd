"""BT.709 luma of RGB arrays: one definition for cut detection, DIS flow and training data.

Plain numpy: the engine uses it through :mod:`flow`, which must not import VapourSynth.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LUMA_WEIGHTS", "luma"]

# A cut is a change of picture and DIS matches structure: luma shows both without colour noise.
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)


def luma(frames: np.ndarray) -> np.ndarray:
    """Luma of RGB arrays shaped (..., 3, H, W) → (..., H, W), float32."""
    return np.tensordot(np.asarray(LUMA_WEIGHTS, np.float32), frames, axes=([0], [-3])).astype(np.float32)
