"""Training data for Super SloMo: real video windows, synthetic motion from still photos, augmentation.

A sample is three frames (I0, the target It at time t, I1) with optional flows F01/F10 (see
:class:`Sample`). Real samples are windows of consecutive decoded frames (VapourSynth is used only to
decode); synthetic samples are layered scenes of photos under smooth homographies, rendered at any time
with exact ground-truth flow. Every sample is a pure function of ``(seed, index)``, so training streams
are reproducible and resumable, with any number of DataLoader workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import vapoursynth as vs
from torch import Tensor
from torch.utils.data import Dataset

from .colour import to_rgb
from .flow import consistency_mask, dis_flows
from .scenechange import DEFAULT_SC_THRESHOLD as DEFAULT_CUT_THRESHOLD
from .scenechange import luma

__all__ = [
    "DEFAULT_CUT_THRESHOLD",
    "PHOTO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Augment",
    "Clip",
    "Layer",
    "LinearRamp",
    "MixedDataset",
    "Motion",
    "RealWindowDataset",
    "Sample",
    "Scene",
    "SyntheticDataset",
    "augment",
    "colour_jitter",
    "crop",
    "dis_flow",
    "fit",
    "flip",
    "list_videos",
    "load_clip",
    "load_clips",
    "load_photos",
    "luma",
    "random_scene",
    "reverse",
    "scene_sample",
    "split_clips",
    "valid_windows",
    "validation_set",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".y4m")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Separate random streams per purpose, so e.g. the mixing coin never shifts the synthetic stream.
_STREAM_SYNTHETIC, _STREAM_REAL, _STREAM_MIX = 1, 2, 3


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


# --- samples and augmentation --------------------------------------------------------------------------


@dataclass
class Sample:
    """One training triple, frames (3, H, W) float32 in [0, 1] and flows (2, H, W) in pixels.

    ``flow_mask`` (2, H, W) is 1 where channel 0 = F01 / channel 1 = F10 is trustworthy; both flows and the
    mask are zero and ``has_flow`` False when the motion is unknown.
    """

    i0: np.ndarray
    i1: np.ndarray
    it: np.ndarray
    t: float
    flow01: np.ndarray
    flow10: np.ndarray
    flow_mask: np.ndarray
    has_flow: bool

    @classmethod
    def without_flow(cls, i0: np.ndarray, i1: np.ndarray, it: np.ndarray, t: float) -> Sample:
        zeros = np.zeros((2, *i0.shape[1:]), np.float32)
        return cls(i0, i1, it, t, zeros, zeros.copy(), zeros.copy(), False)

    def with_dis_flows(self) -> Sample:
        """This sample with DIS flows between its I0 and I1 (:func:`dis_flow`) as its flows and mask."""
        f01, f10, mask = dis_flow(self.i0, self.i1)
        return replace(self, flow01=f01, flow10=f10, flow_mask=mask, has_flow=True)

    @property
    def shape(self) -> tuple[int, int]:
        return self.i0.shape[1], self.i0.shape[2]

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Sample:
        """Apply one spatial operation to every array (frames, flows, mask) alike."""
        arrays = (self.i0, self.i1, self.it, self.flow01, self.flow10, self.flow_mask)
        i0, i1, it, f01, f10, mask = (np.ascontiguousarray(fn(a), dtype=np.float32) for a in arrays)
        return Sample(i0, i1, it, self.t, f01, f10, mask, self.has_flow)

    def to_tensors(self) -> dict[str, Tensor]:
        # Copies: an uncropped frame may still be a view into a clip's frames, which must stay untouched.
        out = {k: torch.from_numpy(np.array(getattr(self, k), dtype=np.float32)) for k in _ARRAY_KEYS}
        out["t"] = torch.tensor(self.t, dtype=torch.float32)
        out["has_flow"] = torch.tensor(float(self.has_flow), dtype=torch.float32)
        return out


_ARRAY_KEYS = ("i0", "i1", "it", "flow01", "flow10", "flow_mask")


def flip(sample: Sample, axis: Literal["x", "y"]) -> Sample:
    """Mirror left-right (``x``) or upside down (``y``); that flow component changes sign."""
    dim, channel = (2, 0) if axis == "x" else (1, 1)
    out = sample.map(lambda a: np.flip(a, dim).copy())  # a copy: the flows are negated in place below
    out.flow01[channel] *= -1
    out.flow10[channel] *= -1
    return out


def reverse(sample: Sample) -> Sample:
    """Play the triple backwards: I0 ⇄ I1, t → 1 − t, F01 ⇄ F10 (F01 of the reversed clip is F10)."""
    mask = sample.flow_mask[::-1].copy()
    return Sample(sample.i1, sample.i0, sample.it, 1.0 - sample.t, sample.flow10, sample.flow01, mask, sample.has_flow)


def crop(sample: Sample, y: int, x: int, height: int, width: int) -> Sample:
    return sample.map(lambda a: a[:, y : y + height, x : x + width])


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (C, H, W) array bilinearly (cv2 works on H, W, C and drops a single channel)."""
    out = cv2.resize(array.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
    return out.reshape(height, width, -1).transpose(2, 0, 1)


def fit(sample: Sample, size: int) -> Sample:
    """Upscale (keeping the aspect) so both sides are at least ``size``; flows scale with the picture."""
    h, w = sample.shape
    scale = size / min(h, w)
    if scale <= 1:
        return sample
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = sample.map(lambda a: _resize(a, nh, nw))
    for flow in (out.flow01, out.flow10):
        flow[0] *= nw / w
        flow[1] *= nh / h
    out.flow_mask = (out.flow_mask > 0.999).astype(np.float32)
    return out


def colour_jitter(sample: Sample, rng: np.random.Generator, strength: float = 1.0) -> Sample:
    """One random gamma, channel gain, saturation, contrast and brightness for all three frames."""
    if strength <= 0:
        return sample
    gamma = math.exp(rng.uniform(-0.2, 0.2) * strength)
    gains = (1 + rng.uniform(-0.06, 0.06, 3) * strength).astype(np.float32).reshape(3, 1, 1)
    saturation = 1 + rng.uniform(-0.3, 0.3) * strength
    contrast = 1 + rng.uniform(-0.2, 0.2) * strength
    brightness = rng.uniform(-0.06, 0.06) * strength

    def apply(frame: np.ndarray) -> np.ndarray:
        x = np.power(np.clip(frame, 0, 1), gamma) * gains
        grey = luma(x)[None]
        x = grey + saturation * (x - grey)
        return np.clip((x - 0.5) * contrast + 0.5 + brightness, 0, 1).astype(np.float32)

    return replace(sample, i0=apply(sample.i0), i1=apply(sample.i1), it=apply(sample.it))


def _motion_score(sample: Sample) -> float:
    return float(np.abs(luma(sample.i1) - luma(sample.i0)).mean())


def _best_crop(sample: Sample, size: int, positions: Sequence[tuple[int, int]]) -> Sample:
    """The crop with the most change between I0 and I1: static corners teach the network nothing."""
    crops = [crop(sample, y, x, size, size) for y, x in positions]
    return max(crops, key=_motion_score)


@dataclass(frozen=True)
class Augment:
    """Probabilities and strengths of the random augmentations (all applied to the whole sample)."""

    hflip: float = 0.5
    vflip: float = 0.1
    reverse: float = 0.5
    jitter: float = 1.0
    crop_tries: int = 3

    @classmethod
    def none(cls) -> Augment:
        return cls(hflip=0.0, vflip=0.0, reverse=0.0, jitter=0.0, crop_tries=1)


_DEFAULT_AUGMENT = Augment()


def augment(sample: Sample, rng: np.random.Generator, size: int, options: Augment = _DEFAULT_AUGMENT) -> Sample:
    """Fit, random ``size``² crop (best of ``crop_tries``), flips, temporal reversal and colour jitter."""
    sample = fit(sample, size)
    h, w = sample.shape
    tries = max(1, options.crop_tries)
    positions = [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))) for _ in range(tries)]
    sample = _best_crop(sample, size, list(dict.fromkeys(positions)))
    if rng.random() < options.hflip:
        sample = flip(sample, "x")
    if rng.random() < options.vflip:
        sample = flip(sample, "y")
    if rng.random() < options.reverse:
        sample = reverse(sample)
    return colour_jitter(sample, rng, options.jitter)


# --- real video ----------------------------------------------------------------------------------------


@dataclass
class Clip:
    """Decoded frames of one video, (N, 3, H, W) float32 RGB in [0, 1], and its frame rate."""

    name: str
    frames: np.ndarray
    fps: float


def list_videos(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"clips folder {root} does not exist: give a folder of video files")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def split_clips(source: str | Path | Sequence[str | Path], holdout: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """Split videos (a folder, or a list of files) into (train, held out); a name matches a file or its stem.

    Held-out clips must never be trained on, so a held-out name that matches nothing is an error (a typo
    would otherwise silently put the clip in the training set).
    """
    paths = list_videos(source) if isinstance(source, str | Path) else [Path(p) for p in source]
    wanted = set(holdout)
    held = [p for p in paths if p.name in wanted or p.stem in wanted]
    unmatched = wanted - {p.name for p in held} - {p.stem for p in held}
    if unmatched:
        names = ", ".join(p.stem for p in paths) or "none"
        raise ValueError(
            f"held-out clip(s) {sorted(unmatched)} not found; the clips are: {names}; hold out some of them (--holdout)"
        )
    return [p for p in paths if p not in held], held


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def load_clip(path: str | Path, max_width: int = 320, max_frames: int = 300) -> Clip:
    """Decode up to ``max_frames`` frames with bestsource, as RGB downscaled to at most ``max_width`` wide."""
    core = vs.core
    if not hasattr(core, "bs"):
        raise ValueError("the bestsource plugin is missing: pip install vapoursynth-bestsource")
    path = Path(path)
    try:
        clip = to_rgb(core.bs.VideoSource(str(path), cachemode=0))
    except vs.Error as exc:
        raise ValueError(f"{path}: cannot be decoded ({exc}); give a video file FFmpeg can read") from exc
    width = _even(min(max_width, clip.width))
    height = _even(clip.height * width / clip.width)
    if (width, height) != (clip.width, clip.height):
        clip = core.resize.Bicubic(clip, width, height)
    count = min(max_frames, clip.num_frames)
    frames = np.empty((count, 3, height, width), np.float32)
    # frames() requests ahead on VapourSynth's threads: decoding and resizing overlap.
    for n, frame in enumerate(clip[:count].frames(close=True)):
        for plane in range(3):
            frames[n, plane] = np.asarray(frame[plane])
    np.clip(frames, 0, 1, out=frames)  # bicubic overshoots
    fps = clip.fps.numerator / clip.fps.denominator if clip.fps.denominator else 0.0
    return Clip(path.stem, frames, fps)


def load_clips(paths: Sequence[str | Path], max_width: int = 320, max_frames: int = 300) -> list[Clip]:
    return [load_clip(p, max_width, max_frames) for p in paths]


def _stride(fps: float, base_fps: float | None) -> int:
    """Frames per base-rate frame: windows of a 187 fps clip span as much time as at ``base_fps``."""
    if not base_fps or fps <= base_fps:
        return 1
    return max(1, round(fps / base_fps))


def valid_windows(
    clip: Clip,
    window: int,
    *,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    min_motion: float = 0.004,
    hold_ratio: float = 0.1,
    y: np.ndarray | None = None,
) -> list[int]:
    """Start indices of ``window``-frame windows that are usable for training.

    Dropped: windows spanning a scene cut (a consecutive luma difference above ``cut_threshold``), nearly
    static ones (first-to-last mean luma difference below ``min_motion``) and ones holding a repeated
    frame (a consecutive difference below ``hold_ratio`` × the window's largest): animation on twos or
    duplicated frames would give the target a wrong time t. ``y`` is the clip's luma, when the caller has it.
    """
    if window < 3:
        raise ValueError(f"window must be at least 3 frames (I0, a target, I1), got {window}")
    n = len(clip.frames)
    if n < window:
        return []
    y = luma(clip.frames) if y is None else y
    d = np.abs(np.diff(y, axis=0)).mean(axis=(1, 2))
    span = window - 1
    ends = np.abs(y[span:] - y[:-span]).mean(axis=(1, 2))
    starts = []
    for s in range(n - span):
        pair = d[s : s + span]
        if pair.max() > cut_threshold or ends[s] < min_motion or pair.min() < hold_ratio * pair.max():
            continue
        starts.append(s)
    return starts


def dis_flow(i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DIS optical flow ``(F01, F10, mask)`` for frames (3, H, W) (:func:`flow.dis_flows`), with a mask
    (2, H, W) keeping the pixels whose forward and backward flows agree (a pseudo-label's trusted part)."""
    f01, f10 = dis_flows(i0, i1)
    masks = [consistency_mask(f01, f10), consistency_mask(f10, f01)]
    return f01, f10, np.stack(masks).astype(np.float32)


@dataclass(frozen=True)
class _Window:
    clip: int
    start: int
    span: int


class RealWindowDataset(Dataset[dict[str, Tensor]]):
    """Random windows of real clips: I0 = first frame, I1 = last, target frame k in between, t = k / span.

    ``windows`` are lengths in frames at ``base_fps``; a faster clip gets proportionally longer windows
    (so the 187 fps clip gives large motion). Item ``index`` picks a clip uniformly, then a window and k,
    all from ``(seed, index)``. With ``pseudo_flow``, DIS flows between I0 and I1 are the flow labels.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        size: int,
        *,
        windows: Sequence[int] = (3, 5),
        base_fps: float | None = 30.0,
        seed: int = 0,
        length: int = 1_000_000,
        pseudo_flow: bool = True,
        augmentation: Augment = _DEFAULT_AUGMENT,
        cut_threshold: float = DEFAULT_CUT_THRESHOLD,
        min_motion: float = 0.004,
        hold_ratio: float = 0.1,
    ) -> None:
        self.clips = list(clips)
        self.size, self.seed, self.length = size, seed, length
        self.pseudo_flow, self.augmentation = pseudo_flow, augmentation
        self.windows: list[list[_Window]] = []
        for c, clip in enumerate(self.clips):
            # Luma once per clip, not once per window length.
            stride, y = _stride(clip.fps, base_fps), luma(clip.frames)
            found = []
            for w in sorted(set(windows)):
                span = (w - 1) * stride
                starts = valid_windows(
                    clip,
                    span + 1,
                    cut_threshold=cut_threshold,
                    min_motion=min_motion,
                    hold_ratio=hold_ratio,
                    y=y,
                )
                found += [_Window(c, s, span) for s in starts]
            if found:
                self.windows.append(found)
        if not self.windows:
            names = ", ".join(c.name for c in self.clips) or "none given"
            raise ValueError(
                f"no usable windows in the clips ({names}): they are too short, static or cut; give more clips, "
                "shorter windows or a lower min_motion"
            )

    def __len__(self) -> int:
        return self.length

    def window_of(self, index: int) -> tuple[int, int, int, int]:
        """``(clip, start, span, k)`` of item ``index``: frames start, start + k and start + span."""
        rng = _rng(self.seed, index, _STREAM_REAL)
        per_clip = self.windows[int(rng.integers(len(self.windows)))]
        win = per_clip[int(rng.integers(len(per_clip)))]
        return win.clip, win.start, win.span, int(rng.integers(1, win.span))

    def sample(self, index: int) -> Sample:
        """The unaugmented full-frame sample of item ``index``."""
        c, start, span, k = self.window_of(index)
        frames = self.clips[c].frames
        i0, it, i1 = frames[start], frames[start + k], frames[start + span]
        sample = Sample.without_flow(i0, i1, it, k / span)
        return sample.with_dis_flows() if self.pseudo_flow else sample

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        # Augmentation draws from its own stream, independent of how many draws window_of made.
        rng = _rng(self.seed, index, _STREAM_REAL + 100)
        return augment(self.sample(index), rng, self.size, self.augmentation).to_tensors()


def validation_set(
    clips: Sequence[Clip],
    size: int = 128,
    count: int = 32,
    *,
    window: int = 3,
    base_fps: float | None = 30.0,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    min_motion: float = 0.004,
    dis_flows: bool = False,
) -> list[dict[str, Tensor]]:
    """A fixed set of ``count`` samples from (held-out) clips: evenly spaced windows, the most moving crop.

    Deterministic (no randomness at all); k cycles through the window's inner frames so several t occur.
    With ``dis_flows`` each sample carries DIS flows computed on the whole frames before cropping.
    """
    per_clip: list[tuple[Clip, int, list[int]]] = []
    for clip in clips:
        span = (window - 1) * _stride(clip.fps, base_fps)
        starts = valid_windows(clip, span + 1, cut_threshold=cut_threshold, min_motion=min_motion)
        if starts:
            per_clip.append((clip, span, starts))
    if not per_clip:
        raise ValueError("no usable validation windows in the held-out clips: hold out longer clips with motion")
    out: list[dict[str, Tensor]] = []
    for n in range(count):
        clip, span, starts = per_clip[n % len(per_clip)]
        rank = n // len(per_clip)
        total = math.ceil(count / len(per_clip))
        start = starts[min(len(starts) - 1, (2 * rank + 1) * len(starts) // (2 * total))]
        k = 1 + rank % (span - 1)
        f = clip.frames
        sample = Sample.without_flow(f[start], f[start + span], f[start + k], k / span)
        sample = fit(sample.with_dis_flows() if dis_flows else sample, size)
        h, w = sample.shape
        grid = [(y, x) for y in (0, (h - size) // 2, h - size) for x in (0, (w - size) // 2, w - size)]
        out.append(_best_crop(sample, size, grid).to_tensors())
    return out


# --- synthetic motion ----------------------------------------------------------------------------------


def load_photos(source: str | Path | Sequence[str | Path], max_side: int = 768) -> list[np.ndarray]:
    """Photos as (H, W, 3) float32 RGB in [0, 1], downscaled (area filter) to at most ``max_side``."""
    if isinstance(source, str | Path):
        root = Path(source)
        if not root.is_dir():
            raise ValueError(f"photos folder {root} does not exist: give a folder of JPEG/PNG photos")
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in PHOTO_EXTENSIONS)
    else:
        paths = [Path(p) for p in source]
    photos = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: cannot be read as an image; remove it or convert it to JPEG/PNG")
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    if not photos:
        raise ValueError(f"no photos found in {source}: give a folder holding {', '.join(PHOTO_EXTENSIONS)} files")
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
        raise ValueError("random_scene needs at least one photo")
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
        augmentation: Augment = _DEFAULT_AUGMENT,
        dis_flows: bool = False,
    ) -> None:
        if not photos:
            raise ValueError("SyntheticDataset needs at least one photo: give a folder of photos")
        self.photos, self.size, self.layers = list(photos), size, layers
        self.max_motion, self.noise, self.seed, self.length = max_motion, noise, seed, length
        self.augmentation, self.dis_flows = augmentation, dis_flows

    def __len__(self) -> int:
        return self.length

    def motion_at(self, index: int) -> float:
        return self.max_motion(index) if callable(self.max_motion) else float(self.max_motion)

    def sample(self, index: int) -> Sample:
        rng = _rng(self.seed, index, _STREAM_SYNTHETIC)
        scene = random_scene(self.photos, self.size, self.motion_at(index), rng, self.layers)
        t = float(rng.uniform(1 / 16, 15 / 16))
        sample = scene_sample(scene, t, float(rng.uniform(0, self.noise)), rng)
        return sample.with_dis_flows() if self.dis_flows else sample

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rng = _rng(self.seed, index, _STREAM_SYNTHETIC + 100)
        return augment(self.sample(index), rng, self.size, self.augmentation).to_tensors()


class MixedDataset(Dataset[dict[str, Tensor]]):
    """Item ``index`` comes from ``synthetic`` with probability ``synthetic_fraction``, else from ``real``."""

    def __init__(
        self,
        synthetic: Dataset[dict[str, Tensor]] | None,
        real: Dataset[dict[str, Tensor]] | None,
        synthetic_fraction: float,
        *,
        seed: int = 0,
        length: int = 1_000_000,
    ) -> None:
        if not 0 <= synthetic_fraction <= 1:
            raise ValueError(f"synthetic_fraction must be in [0, 1], got {synthetic_fraction}")
        if (synthetic is None and synthetic_fraction > 0) or (real is None and synthetic_fraction < 1):
            raise ValueError(
                f"synthetic_fraction {synthetic_fraction} needs both sources; give photos and clips, or use 0 / 1"
            )
        self.synthetic, self.real = synthetic, real
        self.fraction, self.seed, self.length = synthetic_fraction, seed, length

    def __len__(self) -> int:
        return self.length

    def is_synthetic(self, index: int) -> bool:
        return bool(_rng(self.seed, index, _STREAM_MIX).random() < self.fraction)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        source = self.synthetic if self.is_synthetic(index) else self.real
        assert source is not None
        return source[index]
