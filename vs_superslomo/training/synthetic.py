"""Synthetic motion for training: layered scenes of photos under smooth homographies, rendered at any time
with exact ground-truth flow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import JobError
from .samples import DEFAULT_AUGMENT, STREAM_SYNTHETIC, Augment, Sample, augment, sample_rng

__all__ = [
    "PHOTO_EXTENSIONS",
    "Layer",
    "LinearRamp",
    "Motion",
    "Scene",
    "SyntheticDataset",
    "load_photos",
    "random_scene",
    "scene_sample",
]

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def load_photos(source: str | Path | Sequence[str | Path], max_side: int = 768) -> list[np.ndarray]:
    """Photos as (H, W, 3) float32 RGB in [0, 1], downscaled (area filter) to at most ``max_side``."""
    if isinstance(source, str | Path):
        root = Path(source)
        if not root.is_dir():
            raise JobError(f"photos folder {root} does not exist: give a folder of JPEG/PNG photos")
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in PHOTO_EXTENSIONS)
    else:
        paths = [Path(p) for p in source]
    photos = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise JobError(f"{path}: cannot be read as an image; remove it or convert it to JPEG/PNG")
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    if not photos:
        raise JobError(f"no photos found in {source}: give a folder holding {', '.join(PHOTO_EXTENSIONS)} files")
    return photos


# Motion parameters: translation x, y (canvas px), rotation (rad), log scale, perspective p1, p2 (1/px).
_PARAMS = 6


@dataclass(frozen=True)
class Motion:
    """A smooth, possibly non-linear path of a planar layer: a homography M(s) from texture to canvas.

    Parameters follow ``p(s) = base + delta·s + bend·s·(1 − s)`` (the path bends but its ends are fixed),
    and ``M(s) = T(anchor + p_xy) · R(p_rot) · S(exp(p_logscale)) · P(p_persp) · T(−pivot)``: the texture
    point ``pivot`` sits at canvas point ``anchor`` when the translation is zero. Interpolating parameters
    rather than matrices keeps the path a real motion.
    """

    anchor: tuple[float, float]
    pivot: tuple[float, float]
    base: np.ndarray = field(default_factory=lambda: np.zeros(_PARAMS))
    delta: np.ndarray = field(default_factory=lambda: np.zeros(_PARAMS))
    bend: np.ndarray = field(default_factory=lambda: np.zeros(_PARAMS))

    def params(self, s: float) -> np.ndarray:
        return self.base + self.delta * s + self.bend * s * (1 - s)

    def matrix(self, s: float) -> np.ndarray:
        tx, ty, angle, log_scale, p1, p2 = self.params(s)
        c, si, z = math.cos(angle), math.sin(angle), math.exp(log_scale)
        move = np.array([[1, 0, self.anchor[0] + tx], [0, 1, self.anchor[1] + ty], [0, 0, 1]])
        rotate_scale = np.array([[z * c, -z * si, 0], [z * si, z * c, 0], [0, 0, 1]])
        perspective = np.array([[1, 0, 0], [0, 1, 0], [p1, p2, 1]])
        centre = np.array([[1, 0, -self.pivot[0]], [0, 1, -self.pivot[1]], [0, 0, 1]])
        return move @ rotate_scale @ perspective @ centre

    def transfer(self, s_from: float, s_to: float) -> np.ndarray:
        """Homography taking a canvas point at time ``s_from`` to where that scene point is at ``s_to``."""
        return self.matrix(s_to) @ np.linalg.inv(self.matrix(s_from))


def _apply_homography(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / d, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / d


@dataclass(frozen=True)
class Layer:
    """A texture (H, W, 3) with a soft alpha mask (H, W) moving along ``motion``; the background has no mask."""

    texture: np.ndarray
    motion: Motion
    mask: np.ndarray | None = None

    def render(self, s: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Colour (3, H, W) and alpha (H, W) on the canvas at time ``s``, by inverse warping."""
        inverse = np.linalg.inv(self.motion.matrix(s))
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        # The background reflects at the photo's edges so the canvas never shows a hole.
        border = cv2.BORDER_REFLECT_101 if self.mask is None else cv2.BORDER_CONSTANT
        colour = cv2.warpPerspective(self.texture, inverse, (width, height), flags=flags, borderMode=border)
        if self.mask is None:
            return colour.transpose(2, 0, 1), np.ones((height, width), np.float32)
        alpha = cv2.warpPerspective(self.mask, inverse, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT)
        return colour.transpose(2, 0, 1), alpha


@dataclass(frozen=True)
class Scene:
    """Layers composited back to front (``layers[0]`` is the background) on a ``height`` × ``width`` canvas.

    ``gain`` is a brightness change: the frame at time s is scaled by ``1 + gain·s``.
    """

    layers: tuple[Layer, ...]
    height: int
    width: int
    gain: float = 0.0

    def render(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """The frame (3, H, W) in [0, 1] at time ``s`` and each layer's visible weight (L, H, W)."""
        image = np.zeros((3, self.height, self.width), np.float32)
        alphas = []
        for layer in self.layers:
            colour, alpha = layer.render(s, self.height, self.width)
            image = alpha * colour + (1 - alpha) * image
            alphas.append(alpha)
        # Weight of layer j = its alpha times the transparency of everything in front of it.
        weights = np.empty((len(alphas), self.height, self.width), np.float32)
        cover = np.ones((self.height, self.width), np.float32)
        for j in range(len(alphas) - 1, -1, -1):
            weights[j] = alphas[j] * cover
            cover = cover * (1 - alphas[j])
        return np.clip(image * (1 + self.gain * s), 0, 1).astype(np.float32), weights

    def flow(
        self, s_from: float, s_to: float, weights: np.ndarray, confident: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact flow (2, H, W) from time ``s_from`` to ``s_to`` of the layer seen at each pixel at ``s_from``.

        ``weights`` are :meth:`render`'s at ``s_from``. The mask (H, W) is 0 on soft edges where no layer
        has at least ``confident`` of the weight (a blend of two motions has no single flow).
        """
        gy, gx = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        owner = weights.argmax(axis=0)
        flow = np.zeros((2, self.height, self.width), np.float32)
        for j, layer in enumerate(self.layers):
            where = owner == j
            if where.any():
                x, y = _apply_homography(layer.motion.transfer(s_from, s_to), gx[where], gy[where])
                flow[0][where] = x - gx[where]
                flow[1][where] = y - gy[where]
        return flow, (weights.max(axis=0) >= confident).astype(np.float32)


def _max_displacement(motion: Motion, points: np.ndarray) -> float:
    x, y = _apply_homography(motion.transfer(0.0, 1.0), points[0], points[1])
    return float(np.hypot(x - points[0], y - points[1]).max())


def _random_motion(
    rng: np.random.Generator,
    anchor: tuple[float, float],
    pivot: tuple[float, float],
    base: np.ndarray,
    magnitude: float,
    extent: np.ndarray,
) -> Motion:
    """A random path whose largest displacement between s = 0 and s = 1 over ``extent`` is ``magnitude``."""
    direction = rng.uniform(0, 2 * math.pi)
    delta = np.array([math.cos(direction), math.sin(direction), *rng.normal(0, [0.004, 0.004, 2e-5, 2e-5])])
    bend = np.concatenate([rng.normal(0, 0.3, 2), rng.normal(0, [0.002, 0.002, 1e-5, 1e-5])])
    k = magnitude
    # Displacement grows about linearly with the scale k, so a few fixed-point steps find it.
    for _ in range(4):
        d = _max_displacement(Motion(anchor, pivot, base, delta * k, bend * k), extent)
        if d < 1e-6:
            break
        k *= magnitude / d
    return Motion(anchor, pivot, base, delta * k, bend * k)


def _soft_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ellipse or a star-shaped polygon filling most of the box, blurred so the edge is soft."""
    mask = np.zeros((height, width), np.float32)
    cx, cy = width / 2, height / 2
    if rng.random() < 0.5:
        axes = (max(1, int(cx * rng.uniform(0.6, 0.95))), max(1, int(cy * rng.uniform(0.6, 0.95))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.45, 0.95, n)
        pts = np.stack([cx + radii * cx * np.cos(angles), cy + radii * cy * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1.0)
    return cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.5, 2.0)))


def _textured_patch(
    photo: np.ndarray, height: int, width: int, rng: np.random.Generator, tries: int = 3
) -> tuple[int, int, int, int]:
    """``(y, x, h, w)`` of the most textured of a few random patches (wallpapers have large flat areas,
    where motion is invisible); the size is clamped to the photo."""
    h, w = min(height, photo.shape[0]), min(width, photo.shape[1])
    best: tuple[float, tuple[int, int, int, int]] | None = None
    for _ in range(tries):
        y, x = int(rng.integers(0, photo.shape[0] - h + 1)), int(rng.integers(0, photo.shape[1] - w + 1))
        score = float(photo[y : y + h : 4, x : x + w : 4].std())
        if best is None or score > best[0]:
            best = (score, (y, x, h, w))
    assert best is not None
    return best[1]


def random_scene(
    photos: Sequence[np.ndarray],
    size: int,
    max_motion: float,
    rng: np.random.Generator,
    layers: tuple[int, int] = (1, 4),
) -> Scene:
    """A background photo under a random camera motion plus ``layers`` foreground cut-outs of other photos.

    Each layer's largest displacement between s = 0 and 1 is uniform in [0, ``max_motion``] pixels.
    """
    if not photos:
        raise JobError("random_scene needs at least one photo")
    gy, gx = np.mgrid[0:size:4j, 0:size:4j]
    canvas = np.stack([gx.ravel() * (size - 1) / size, gy.ravel() * (size - 1) / size])
    centre = ((size - 1) / 2, (size - 1) / 2)
    bg_index = int(rng.integers(len(photos)))
    bg = photos[bg_index]
    scale = rng.uniform(0.7, 1.4)  # canvas pixels per photo pixel
    reach = round((size + 2 * max_motion) / scale)  # photo pixels the moving canvas may cover
    y0, x0, ph, pw = _textured_patch(bg, reach, reach, rng)
    base = np.array([0, 0, rng.normal(0, 0.05), math.log(scale), 0, 0])
    magnitude = max_motion * rng.uniform(0, 1)
    pivot = (x0 + (pw - 1) / 2, y0 + (ph - 1) / 2)
    stack = [Layer(bg, _random_motion(rng, centre, pivot, base, magnitude, canvas))]
    others = [p for i, p in enumerate(photos) if i != bg_index] or list(photos)
    for _ in range(int(rng.integers(layers[0], layers[1] + 1))):
        photo = others[int(rng.integers(len(others)))]
        y0, x0, lh, lw = _textured_patch(
            photo, int(size * rng.uniform(0.25, 0.6)), int(size * rng.uniform(0.25, 0.6)), rng
        )
        texture = np.ascontiguousarray(photo[y0 : y0 + lh, x0 : x0 + lw])
        base = np.array([0, 0, rng.uniform(-math.pi, math.pi), math.log(rng.uniform(0.7, 1.3)), 0, 0])
        anchor = (rng.uniform(0, size - 1), rng.uniform(0, size - 1))
        pivot = ((lw - 1) / 2, (lh - 1) / 2)
        corners = np.array([[0, lw - 1, 0, lw - 1], [0, 0, lh - 1, lh - 1]], np.float64)
        extent = np.stack(_apply_homography(Motion(anchor, pivot, base).matrix(0.0), corners[0], corners[1]))
        motion = _random_motion(rng, anchor, pivot, base, max_motion * rng.uniform(0, 1), extent)
        stack.append(Layer(texture, motion, _soft_mask(rng, lh, lw)))
    gain = rng.uniform(-0.1, 0.1) if rng.random() < 0.5 else 0.0
    return Scene(tuple(stack), size, size, gain)


def scene_sample(scene: Scene, t: float, noise: float = 0.0, rng: np.random.Generator | None = None) -> Sample:
    """Render I0, It and I1 with exact flows; ``noise`` (σ) goes on the inputs only, the target stays clean."""
    i0, w0 = scene.render(0.0)
    i1, w1 = scene.render(1.0)
    it, _ = scene.render(t)
    f01, m01 = scene.flow(0.0, 1.0, w0)
    f10, m10 = scene.flow(1.0, 0.0, w1)
    if noise > 0 and rng is not None:
        i0, i1 = (np.clip(f + rng.normal(0, noise, f.shape), 0, 1).astype(np.float32) for f in (i0, i1))
    return Sample(i0, i1, it, t, f01, f10, np.stack([m01, m10]), True)


@dataclass(frozen=True)
class LinearRamp:
    """A value rising linearly from ``start`` to ``end`` over the first ``length`` sample indices."""

    start: float
    end: float
    length: int

    def __call__(self, index: int) -> float:
        if self.length <= 0:
            return self.end
        return self.start + (self.end - self.start) * min(1.0, index / self.length)


class SyntheticDataset(Dataset[dict[str, Tensor]]):
    """Procedural samples: :func:`random_scene` rendered at 0, t and 1, with exact flows.

    ``max_motion`` is pixels or a function of the sample index (a curriculum such as :class:`LinearRamp`).
    With ``dis_flows`` the flows are DIS's on the rendered (noisy) frames instead of the exact ones: what
    the filter's ``flow="dis"`` gives the interpolation net (``train --flow dis``).
    """

    def __init__(
        self,
        photos: Sequence[np.ndarray],
        size: int,
        *,
        max_motion: float | Callable[[int], float] = 24.0,
        layers: tuple[int, int] = (1, 4),
        noise: float = 0.02,
        seed: int = 0,
        length: int = 1_000_000,
        augmentation: Augment = DEFAULT_AUGMENT,
        dis_flows: bool = False,
    ) -> None:
        if not photos:
            raise JobError("SyntheticDataset needs at least one photo: give a folder of photos")
        self.photos, self.size, self.layers = list(photos), size, layers
        self.max_motion, self.noise, self.seed, self.length = max_motion, noise, seed, length
        self.augmentation, self.dis_flows = augmentation, dis_flows

    def __len__(self) -> int:
        return self.length

    def motion_at(self, index: int) -> float:
        return self.max_motion(index) if callable(self.max_motion) else float(self.max_motion)

    def sample(self, index: int) -> Sample:
        rng = sample_rng(self.seed, index, STREAM_SYNTHETIC)
        scene = random_scene(self.photos, self.size, self.motion_at(index), rng, self.layers)
        t = float(rng.uniform(1 / 16, 15 / 16))
        sample = scene_sample(scene, t, float(rng.uniform(0, self.noise)), rng)
        return sample.with_dis_flows() if self.dis_flows else sample

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rng = sample_rng(self.seed, index, STREAM_SYNTHETIC + 100)
        return augment(self.sample(index), rng, self.size, self.augmentation).to_tensors()
