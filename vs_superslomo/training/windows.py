"""Real video for training: clips decoded to frames, the windows fit to learn from, random windows as
samples, and a fixed validation set from held-out clips.

VapourSynth is used only to decode; a window is I0 = its first frame, I1 = its last, and a frame between
them the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vapoursynth as vs
from torch import Tensor
from torch.utils.data import Dataset

from ..colour import to_rgb
from ..errors import JobError
from ..luma import luma
from ..scenechange import DEFAULT_SC_THRESHOLD as DEFAULT_CUT_THRESHOLD
from ..source import open_video
from .samples import DEFAULT_AUGMENT, STREAM_REAL, Augment, Sample, augment, best_crop, fit, sample_rng

__all__ = [
    "DEFAULT_CUT_THRESHOLD",
    "VIDEO_EXTENSIONS",
    "Clip",
    "RealWindowDataset",
    "list_videos",
    "load_clip",
    "load_clips",
    "split_clips",
    "valid_windows",
    "validation_set",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".y4m")


@dataclass
class Clip:
    """Decoded frames of one video, (N, 3, H, W) float32 RGB in [0, 1], and its frame rate."""

    name: str
    frames: np.ndarray
    fps: float


def list_videos(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise JobError(f"clips folder {root} does not exist: give a folder of video files")
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
        raise JobError(
            f"held-out clip(s) {sorted(unmatched)} not found; the clips are: {names}; hold out some of them (--holdout)"
        )
    return [p for p in paths if p not in held], held


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def load_clip(path: str | Path, max_width: int = 320, max_frames: int = 300) -> Clip:
    """Decode up to ``max_frames`` frames with bestsource, as RGB downscaled to at most ``max_width`` wide."""
    path = Path(path)
    clip = to_rgb(open_video(path))
    width = _even(min(max_width, clip.width))
    height = _even(clip.height * width / clip.width)
    if (width, height) != (clip.width, clip.height):
        clip = vs.core.resize.Bicubic(clip, width, height)
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


def _differences(y: np.ndarray) -> np.ndarray:
    """Mean absolute luma difference of each frame from the one before (N - 1 values for N frames)."""
    differences: np.ndarray = np.abs(np.diff(y, axis=0)).mean(axis=(1, 2))
    return differences


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
        raise JobError(f"window must be at least 3 frames (I0, a target, I1), got {window}")
    n = len(clip.frames)
    if n < window:
        return []
    y = luma(clip.frames) if y is None else y
    d = _differences(y)
    span = window - 1
    ends = np.abs(y[span:] - y[:-span]).mean(axis=(1, 2))
    starts = []
    for s in range(n - span):
        pair = d[s : s + span]
        if pair.max() > cut_threshold or ends[s] < min_motion or pair.min() < hold_ratio * pair.max():
            continue
        starts.append(s)
    return starts


@dataclass(frozen=True)
class _Window:
    clip: int
    start: int
    span: int


class RealWindowDataset(Dataset[dict[str, Tensor]]):
    """Random windows of real clips: I0 = first frame, I1 = last, target frame k in between, t = k / span.

    ``windows`` are lengths in frames at ``base_fps``; a faster clip gets proportionally longer windows
    (so the 187 fps clip gives large motion). Item ``index`` picks a clip uniformly, then a window and k,
    all from ``(seed, index)``. With ``pseudo_flow``, DIS flows between I0 and I1 are the flow labels. With
    ``quadratic`` too, a window whose frames one span before I0 and after I1 exist without a cut in
    between also carries quadratic motion's accelerations (:meth:`Sample.with_accelerations`), as the
    filter's ``motion="auto"`` gives them; other windows keep linear motion, as the filter does there.
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
        quadratic: bool = False,
        augmentation: Augment = DEFAULT_AUGMENT,
        cut_threshold: float = DEFAULT_CUT_THRESHOLD,
        min_motion: float = 0.004,
        hold_ratio: float = 0.1,
    ) -> None:
        self.clips = list(clips)
        self.size, self.seed, self.length = size, seed, length
        self.pseudo_flow, self.augmentation = pseudo_flow, augmentation
        self.quadratic = quadratic
        self.windows: list[list[_Window]] = []
        # Per clip, whether each consecutive frame pair is a cut: neighbours across one give no acceleration.
        self._cuts: list[np.ndarray] = []
        for c, clip in enumerate(self.clips):
            # Luma once per clip, not once per window length.
            stride, y = _stride(clip.fps, base_fps), luma(clip.frames)
            self._cuts.append(_differences(y) > cut_threshold)
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
            raise JobError(
                f"no usable windows in the clips ({names}): they are too short, static or cut; give more clips, "
                "shorter windows or a lower min_motion"
            )

    def __len__(self) -> int:
        return self.length

    def window_of(self, index: int) -> tuple[int, int, int, int]:
        """``(clip, start, span, k)`` of item ``index``: frames start, start + k and start + span."""
        rng = sample_rng(self.seed, index, STREAM_REAL)
        per_clip = self.windows[int(rng.integers(len(self.windows)))]
        win = per_clip[int(rng.integers(len(per_clip)))]
        return win.clip, win.start, win.span, int(rng.integers(1, win.span))

    def sample(self, index: int) -> Sample:
        """The unaugmented full-frame sample of item ``index``."""
        c, start, span, k = self.window_of(index)
        frames = self.clips[c].frames
        i0, it, i1 = frames[start], frames[start + k], frames[start + span]
        sample = Sample.without_flow(i0, i1, it, k / span)
        if not self.pseudo_flow:
            return sample
        sample = sample.with_dis_flows()
        before, after = start - span, start + 2 * span
        if self.quadratic and before >= 0 and after < len(frames) and not self._cuts[c][before:after].any():
            sample = sample.with_accelerations(frames[before], frames[after])
        return sample

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        # Augmentation draws from its own stream, independent of how many draws window_of made.
        rng = sample_rng(self.seed, index, STREAM_REAL + 100)
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
        raise JobError("no usable validation windows in the held-out clips: hold out longer clips with motion")
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
        out.append(best_crop(sample, size, grid).to_tensors())
    return out
