"""The generated cartoon clips: the camera moves as declared, and the same clip is drawn every time."""

from __future__ import annotations

import cv2
import numpy as np

from vs_superslomo.cartoon import CARTOON_CLIPS, CartoonClip, cartoon_frames, line_art, outlined_shapes
from vs_superslomo.luma import luma


def test_a_pan_moves_the_picture_by_the_declared_pixels_and_clips_are_drawn_the_same_every_time() -> None:
    clip = CartoonClip("pan", outlined_shapes, pan=(7.5, -2.0), width=256, height=160, seed=4)
    frames = cartoon_frames(clip, 3)
    assert [f.shape for f in frames] == [(3, 160, 256)] * 3 and all(f.dtype == np.float32 for f in frames)
    assert min(float(f.min()) for f in frames) >= 0 and max(float(f.max()) for f in frames) <= 1
    (dx, dy), _ = cv2.phaseCorrelate(luma(frames[0]).astype(np.float64), luma(frames[2]).astype(np.float64))
    assert abs(dx + 15) < 0.3 and abs(dy - 4) < 0.3  # the camera pans right: the picture moves left
    assert all(np.array_equal(a, b) for a, b in zip(frames, cartoon_frames(clip, 3), strict=True))
    other = cartoon_frames(CartoonClip("pan", outlined_shapes, pan=(7.5, -2.0), width=256, height=160, seed=5), 1)
    assert not np.array_equal(frames[0], other[0])


def test_line_art_is_thin_dark_strokes_and_the_set_holds_its_three_kinds() -> None:
    frame = cartoon_frames(CartoonClip("lines", line_art, width=256, height=160), 1)[0]
    ink = luma(frame) < 0.5
    assert 0.02 < float(ink.mean()) < 0.3  # strokes on paper, not a filled picture
    assert {c.name for c in CARTOON_CLIPS} == {"cartoon_pan", "cartoon_zoom", "lineart_subpixel"}
