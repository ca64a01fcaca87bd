"""RGB ⇄ RGB around the filter changes the bit depth alone (vsutil.depth), exactly as resize.Point did."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from helpers import random_frames

from vs_superslomo.colour import from_rgb, to_rgb
from vs_superslomo.frames import clip_from_arrays, read_frame


@pytest.mark.parametrize("fmt", [vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH])
def test_rgb_bit_depths_convert_without_dither_as_resize_point(fmt: int) -> None:
    # Values over the range too: the filter's output is not clamped to it everywhere.
    rgbs = clip_from_arrays([1.2 * f - 0.1 for f in random_frames(2, 16, 24)])
    like = vs.core.resize.Point(rgbs, format=fmt)
    out = from_rgb(rgbs, like=like)
    assert out.format.id == fmt
    for n in range(2):
        assert np.array_equal(read_frame(out.get_frame(n)), read_frame(like.get_frame(n)))
    back = to_rgb(like)
    expected = vs.core.resize.Point(like, format=vs.RGBS)
    assert back.format.id == vs.RGBS
    for n in range(2):
        assert np.array_equal(read_frame(back.get_frame(n)), read_frame(expected.get_frame(n)))
    props = out.get_frame(0).props
    assert (props["_Matrix"], props["_Range"]) == (0, 1)  # RGB: identity matrix, full range
