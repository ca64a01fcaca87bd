"""Synthetic cartoon clips with known motion: outlined flat-colour shapes and text, and thin line art.

The content the filter is for and real clips rarely isolate: a large pan or a fast zoom with a turn over flat
colour and outlines (where optical flow fails and tears shapes apart) and a drawn pan of sub-pixel steps
(where warping loses to plain blending). Each clip is one picture seen through a camera that moves by an
affine map per frame, rendered supersampled and area-filtered so that edges are anti-aliased as drawn
animation is. Plain numpy and OpenCV: the evaluation scores on these clips, training can draw from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CARTOON_CLIPS", "CartoonClip", "cartoon_frames", "line_art", "outlined_shapes"]

_SUPERSAMPLE = 4  # the camera renders at 4× and averages down: edges come out anti-aliased


@dataclass(frozen=True)
class CartoonClip:
    """A camera move over a picture: ``pan`` px per frame (x, y), ``zoom`` (scale per frame), ``turn``
    (degrees per frame) about the frame's centre, at ``width`` × ``height``; ``picture`` draws the scene."""

    name: str
    picture: Callable[[int, int, np.random.Generator], np.ndarray]
    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0
    turn: float = 0.0
    width: int = 640
    height: int = 360
    seed: int = 0

    def camera(self, s: float) -> np.ndarray:
        """The 2×3 map from output pixels at frame ``s`` to picture pixels (the picture's centre at frame 0 is
        the output's centre)."""
        angle = math.radians(self.turn * s)
        scale = self.zoom**-s  # zooming in: each output pixel covers less of the picture
        c, d = scale * math.cos(angle), scale * math.sin(angle)
        cx, cy = self.width / 2, self.height / 2
        px, py = _PICTURE_SCALE * cx + self.pan[0] * s, _PICTURE_SCALE * cy + self.pan[1] * s
        return np.array([[c, -d, px - c * cx + d * cy], [d, c, py - d * cx - c * cy]])


# The picture is drawn this many times the frame's size, so a long pan or a turn never leaves it.
_PICTURE_SCALE = 3


def _palette(rng: np.random.Generator, count: int) -> np.ndarray:
    """Flat, saturated fill colours (BGR bytes), as cel animation paints."""
    hues = rng.uniform(0, 180, count)
    hsv = np.stack([hues, rng.uniform(120, 230, count), rng.uniform(150, 250, count)], 1)
    colours: np.ndarray = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2BGR)[0].astype(int)
    return colours


def outlined_shapes(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A flat grey-blue ground with ellipses, rectangles and polygons filled with flat colours and outlined in
    black, and words in black; (H, W, 3) uint8 BGR."""
    image = np.full((height, width, 3), (205, 190, 170), np.uint8)
    scale = _SUPERSAMPLE
    count = width * height // (160 * 160 * scale * scale)
    colours = _palette(rng, count)
    for colour in colours:
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        size = int(rng.uniform(20, 70) * scale)
        fill, line = tuple(int(c) for c in colour), (20, 20, 20)
        kind = rng.integers(3)
        if kind == 0:
            axes, angle = (size, int(size * rng.uniform(0.4, 1))), float(rng.uniform(0, 180))
            cv2.ellipse(image, (x, y), axes, angle, 0, 360, fill, -1, cv2.LINE_AA)
            cv2.ellipse(image, (x, y), axes, angle, 0, 360, line, 3 * scale, cv2.LINE_AA)
        else:
            corners = 4 if kind == 1 else int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners)) if kind == 2 else np.arange(4) * np.pi / 2 + 0.3
            points = np.stack([x + size * np.cos(angles), y + size * np.sin(angles)], 1).astype(np.int32)
            cv2.fillPoly(image, [points], fill, cv2.LINE_AA)
            cv2.polylines(image, [points], True, line, 3 * scale, cv2.LINE_AA)
    words = ("POW!", "Hello", "SLOMO", "frame", "42", "Zoom", "text")
    for _ in range(count // 2):
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        word = words[int(rng.integers(len(words)))]
        cv2.putText(image, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (15, 15, 15), 2 * scale, cv2.LINE_AA)
    return image


def line_art(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Thin dark strokes on white paper: curves, circles and hatching about one output pixel wide; (H, W, 3)
    uint8 BGR."""
    image = np.full((height, width, 3), 245, np.uint8)
    scale = _SUPERSAMPLE
    ink = (40, 30, 30)
    for _ in range(width * height // (40 * 40 * scale * scale)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(image, (int(x), int(y)), int(rng.uniform(8, 60) * scale), ink, scale, cv2.LINE_AA)
        elif kind == 1:
            s = np.linspace(0, 1, 40)
            bend = rng.uniform(-80, 80, 2) * scale
            end = rng.uniform(-120, 120, 2) * scale
            xs, ys = x + end[0] * s + bend[0] * np.sin(np.pi * s), y + end[1] * s + bend[1] * np.sin(2 * np.pi * s)
            cv2.polylines(image, [np.stack([xs, ys], 1).astype(np.int32)], False, ink, scale, cv2.LINE_AA)
        else:
            angle, gap = rng.uniform(0, np.pi), rng.uniform(3, 6) * scale
            dx, dy = np.cos(angle) * 25 * scale, np.sin(angle) * 25 * scale
            for i in range(6):
                ox, oy = -np.sin(angle) * gap * i, np.cos(angle) * gap * i
                start, stop = (int(x + ox - dx), int(y + oy - dy)), (int(x + ox + dx), int(y + oy + dy))
                cv2.line(image, start, stop, ink, scale, cv2.LINE_AA)
    return image


def cartoon_frames(clip: CartoonClip, count: int) -> list[np.ndarray]:
    """``count`` frames of ``clip`` as (3, H, W) float32 RGB in [0, 1]."""
    rng = np.random.default_rng(clip.seed)
    big = _SUPERSAMPLE
    picture = clip.picture(_PICTURE_SCALE * clip.height * big, _PICTURE_SCALE * clip.width * big, rng)
    # Output pixels at the supersampled size map to picture pixels through camera(s), both scaled by `big`.
    up = np.diag([1 / big, 1 / big, 1.0])
    frames = []
    for s in range(count):
        # The middle frame sees the picture's centre: the path spreads both ways and stays inside it.
        matrix = big * (clip.camera(s - (count - 1) / 2) @ up)
        sharp = cv2.warpAffine(
            picture,
            matrix,
            (clip.width * big, clip.height * big),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        small = cv2.resize(sharp, (clip.width, clip.height), interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(small[..., ::-1].transpose(2, 0, 1), np.float32) / 255)
    return frames


# The evaluation's cartoon set. At 640 px wide: the pan moves 21.5 px a frame (86 px between the frames kept at
# k = 4, 43 at k = 2); the zoom grows 3 % a frame while turning 1.5°; the line art pans 0.35 px a frame.
CARTOON_CLIPS: tuple[CartoonClip, ...] = (
    CartoonClip("cartoon_pan", outlined_shapes, pan=(21.5, 2.0), seed=1),
    CartoonClip("cartoon_zoom", outlined_shapes, zoom=1.03, turn=1.5, seed=2),
    CartoonClip("lineart_subpixel", line_art, pan=(0.35, 0.12), seed=3),
)
