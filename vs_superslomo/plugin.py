"""The VapourSynth filter ``superslomo(clip, ...)``: it checks its arguments, wires the source nodes each output
frame reads, and serves each frame from the per-frame plan (:mod:`.frameplan`) and the engine (:mod:`.engine`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any, cast

import numpy as np
import vapoursynth as vs

from .cache import ComputeOnceCache
from .engine import Interpolator, select_device
from .errors import BackendError, SuperSloMoError
from .flow import FlowSource, compensated_difference
from .frameplan import CUT_PROP, HELD_PROP, NEXT_PROP, SOURCE_PROP, T_PROP, FramePlan, Rates, Window, Work
from .frames import read_frame, write_frame
from .holds import HoldRules, worst_block_difference
from .network import SuperSloMo
from .options import FilterOptions, OptionError
from .parallel import auto_streams, share_cores
from .scenechange import DEFAULT_SC_THRESHOLD, is_cut, luma_diff_clip
from .stages import timed
from .timing import TimestampTiming, Timing, TimingError, resolve_factor, target_rate
from .vsrife import vsrife_reason
from .weights import load_model

__all__ = [
    "CONFIDENCE_MAP_PROP",
    "CONFIDENCE_PROP",
    "CUT_PROP",
    "HELD_PROP",
    "NEXT_PROP",
    "SOURCE_PROP",
    "T_PROP",
    "FilterError",
    "superslomo",
]

REPEATS_PROP = "SuperSloMoRepeats"  # on the internal flags clip: the frame repeats the one before
CONFIDENCE_PROP = "SuperSloMoConfidence"
CONFIDENCE_MAP_PROP = "SuperSloMoConfidenceMap"
_FORMATS = (vs.RGBS, vs.RGBH)
_MIN_CHUNK_BYTES = 64 * 2**20


class FilterError(vs.Error):  # type: ignore[misc]  # vapoursynth has no py.typed: vs.Error is Any to mypy
    """The filter's ``vs.Error("superslomo: <what is wrong and the fix>")``; ``reason`` is the message alone, for
    callers that print it their own way (the command line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"superslomo: {reason}")
        self.reason = reason


def _error(message: str) -> FilterError:
    return FilterError(message)


def _check_clip(clip: Any) -> vs.VideoNode:
    if not isinstance(clip, vs.VideoNode):
        raise _error(f"clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.NONE or clip.width == 0 or clip.height == 0:
        raise _error("clip must have a constant format and size; fix them first (e.g. with core.resize.Bicubic)")
    if fmt.id not in _FORMATS:
        if fmt.color_family == vs.YUV:
            fix = "vs_superslomo.colour.to_rgb(clip) (the matrix from the clip's props, else by its size)"
        else:
            fix = "core.resize.Point(clip, format=vs.RGBS)"
        raise _error(f"only RGBS and RGBH clips are accepted, got {fmt.name}; convert with {fix}")
    return clip


def _quadratic(motion: str, flow: FlowSource) -> bool:
    """Whether pairs take quadratic motion; ``motion="quadratic"`` where it cannot apply is an error."""
    if motion == "quadratic" and flow != "dis":
        raise _error("motion='quadratic' needs DIS flows; it does not work with flow='net': use motion='linear'")
    return motion == "quadratic" or (motion == "auto" and flow == "dis")


def _flow_source(flow: str, net: SuperSloMo) -> FlowSource:
    return net.flow_source if flow == "auto" else cast(FlowSource, flow)


def _shifted(clip: vs.VideoNode, offset: int) -> vs.VideoNode:
    """Frame i of the result is frame i + ``offset`` of ``clip``, clamped to the first and last frames."""
    n = clip.num_frames
    if offset == 0:
        return clip
    if abs(offset) >= n:
        return (clip[-1] if offset > 0 else clip[0]) * n
    return clip[offset:] + clip[-1] * offset if offset > 0 else clip[0] * -offset + clip[:offset]


def _repeats_clip(clip: vs.VideoNode, rules: HoldRules) -> vs.VideoNode:
    """A tiny clip whose frame i says (``REPEATS_PROP``) whether frame i of ``clip`` repeats frame i - 1."""
    flags = vs.core.std.BlankClip(clip, width=1, height=1, format=vs.GRAY8, keep=True)
    previous = _shifted(clip, -1)

    def flag(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        difference = worst_block_difference(read_frame(f[1]), read_frame(f[2]), rules.block)
        out.props[REPEATS_PROP] = int(n > 0 and difference < rules.threshold)
        return out

    return vs.core.std.ModifyFrame(flags, [flags, clip, previous], flag)


def _map_to_left(clip: vs.VideoNode, timing: Timing | TimestampTiming) -> vs.VideoNode:
    """Frame n of the result is frame ``left(n)`` of ``clip``.

    A factor repeats one pattern: std.SelectEvery, which refuses a cycle of 1 (integer factors), so it
    selects from the clip with every frame doubled, at twice the cycle and offsets: the same frames for
    every factor. Timestamps follow no pattern: std.FrameEval looks each frame up (a bisection), at a
    constant cost per frame whatever the length, where a splice of one piece per source frame costs
    seconds to build for 10^4 frames, for each of the up to 26 clips mapped.
    """
    if isinstance(timing, TimestampTiming):
        base = vs.core.std.BlankClip(clip, length=timing.num_output, keep=True)
        return vs.core.std.FrameEval(base, lambda n: clip[timing.position(n)[0]])
    cycle, offsets = timing.select_offsets()
    # modify_duration=False: frames keep their props untouched; durations are set once, in the selector.
    doubled = vs.core.std.Interleave([clip, clip], modify_duration=False)
    return vs.core.std.SelectEvery(doubled, 2 * cycle, [2 * o for o in offsets], modify_duration=False)


def _check_options(keywords: Mapping[str, Any], cache_mb: int) -> FilterOptions:
    """The options the command line shares, checked by their definition (:class:`FilterOptions`; the filter's
    ``model`` may be a module too, which the loader checks), and the filter's own."""
    if isinstance(cache_mb, bool) or not isinstance(cache_mb, int) or cache_mb < 0:
        raise _error(f"cache_mb must be a non-negative int, got {cache_mb!r}")
    try:
        return FilterOptions(**{f.name: keywords[f.name] for f in fields(FilterOptions) if f.name != "model"})
    except OptionError as exc:
        raise _error(str(exc)) from None


def _timing(
    clip: vs.VideoNode,
    factor: tuple[int, int],
    fps: tuple[int | None, int | None],
    timestamps: Sequence[Fraction | float] | None,
    slowmo: bool,
    clip_fps: Fraction,
) -> Timing | TimestampTiming:
    (factor_num, factor_den), (fps_num, fps_den) = factor, fps
    try:
        if isinstance(factor_den, str):  # vs-rife's rife(clip, device_index, model, ...) read in this order
            raise TimingError(
                f"factor_den must be an int, got {factor_den!r}; the positional order here is (clip, factor_num, "
                "factor_den, fps_num, fps_den), not vs-rife's (clip, device_index, model, ...): pass them by keyword"
            )
        if timestamps is None:
            return Timing(clip.num_frames, resolve_factor(factor_num, factor_den, fps_num, fps_den, clip_fps))
        if fps_num is None:
            raise TimingError("timestamps need fps_num (and fps_den): the constant output rate, e.g. fps_num=60")
        if slowmo:
            raise TimingError(
                "timestamps do not take slowmo; for k times slow motion give a k times higher fps_num and play "
                "the result at the lower rate with std.AssumeFPS"
            )
        return TimestampTiming.from_timestamps(timestamps, clip.num_frames, target_rate(fps_num, fps_den))
    except TimingError as exc:
        raise _error(str(exc)) from None


@dataclass(frozen=True)
class _Inputs:
    """The source nodes an output frame requests, in one list: the pictures of ``window.frames``, then the
    statistics of ``window.stats``, then the flags of ``window.flags``; and where each one lies in it."""

    window: Window

    def nodes(self, clip: vs.VideoNode, rules: HoldRules, timing: Timing | TimestampTiming) -> list[vs.VideoNode]:
        # One node each for the statistics and the flags, shifted many ways: VapourSynth's cache of that node
        # serves every offset, so each frame's statistics and block difference are computed once.
        sources = [_shifted(clip, o) for o in self.window.frames]
        if self.window.stats:
            diffs = luma_diff_clip(clip)
            sources += [_shifted(diffs, o) for o in self.window.stats]
        if self.window.flags:
            repeats = _repeats_clip(clip, rules)
            sources += [_shifted(repeats, o) for o in self.window.flags]
        return [_map_to_left(c, timing) for c in sources]

    def picture(self, f: list[vs.VideoFrame], i: int, left: int) -> vs.VideoFrame:
        """Source frame ``i`` among the frames requested around ``left``."""
        return f[self.window.frames.index(i - left)]

    def stats(self, f: list[vs.VideoFrame], i: int, left: int) -> Mapping[str, Any] | None:
        """The luma statistics of pair (i, i + 1); None when the cut test reads none (props only)."""
        if not self.window.stats:
            return None
        return cast(Mapping[str, Any], f[len(self.window.frames) + self.window.stats.index(i - left)].props)

    def repeats(self, f: list[vs.VideoFrame], left: int) -> Callable[[int], bool]:
        """Whether frame i repeats the one before, from the flags requested around ``left``."""
        first = len(self.window.frames) + len(self.window.stats)
        flags = {o: f[first + k].props[REPEATS_PROP] == 1 for k, o in enumerate(self.window.flags)}
        return lambda i: bool(flags[i - left])


class _Frames:
    """Serves output frames (``std.ModifyFrame``'s selector): each decision from the plan, each pair's cut test
    and each chunk of computed frames once for all threads."""

    def __init__(
        self,
        plan: FramePlan,
        inputs: _Inputs,
        engine: Interpolator,
        sc_threshold: float,
        rates: Rates,
        dtype: type[np.floating[Any]],
        cache_mb: int,
        confidence_map: bool,
    ) -> None:
        self.plan, self.inputs, self.engine, self.rates = plan, inputs, engine, rates
        self.confidence_map = confidence_map
        self.sc_threshold, self.dtype = sc_threshold, dtype
        self.cache: ComputeOnceCache[tuple[int, int], np.ndarray] = ComputeOnceCache(
            cache_mb * 2**20, lambda a: a.nbytes
        )
        self.cuts: ComputeOnceCache[int, bool] = ComputeOnceCache(4096, lambda _: 1)

    def cut(self, a: int, b: int, left: int, f: list[vs.VideoFrame]) -> bool:
        """Whether a scene cut lies between distinct frames a and b; once per pair for all threads, so the cut
        test's motion compensation runs once too. The cut, if any, lies between b - 1 and b: frames from a to
        b - 1 show one picture."""

        def test() -> bool:
            before, after = self.inputs.picture(f, b - 1, left), self.inputs.picture(f, b, left)
            ends = self.inputs.picture(f, a, left), self.inputs.picture(f, b, left)
            return is_cut(
                before.props,
                after.props,
                self.inputs.stats(f, b - 1, left),
                self.sc_threshold,
                lambda: compensated_difference(*map(read_frame, ends)),
            )

        return self.cuts.get(a, test)

    def compute(self, work: Work, left: int, f: list[vs.VideoFrame]) -> np.ndarray:
        """The frames of ``work``'s chunk, as ``dtype`` arrays of four planes: R, G, B and the confidence."""
        picture = self.inputs.picture
        neighbours: dict[str, Any] = {}
        if work.outer is not None and work.spacing is not None:
            before, after = (read_frame(picture(f, i, left)) for i in work.outer)
            neighbours = {"before": before, "after": after, "spacing": tuple(float(x) for x in work.spacing)}
        times = [float(t) for t in self.plan.times(work)]
        try:
            ends = read_frame(picture(f, work.a, left)), read_frame(picture(f, work.b, left))
            frames, confidence = self.engine.interpolate_with_confidence(*ends, times, **neighbours)
        except BackendError as exc:  # an export for a new frame size failed: one line, as at construction
            raise _error(str(exc)) from None
        with timed("copies: frames to VapourSynth"):
            return np.concatenate((frames.numpy(), confidence.numpy()[:, None]), 1).astype(self.dtype, copy=False)

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        left = self.plan.timing.position(n)[0]
        decided = self.plan.frame(n, self.inputs.repeats(f, left), lambda a, b: self.cut(a, b, left, f))
        out = self.inputs.picture(f, decided.source, left).copy()
        data = None
        if (work := decided.work) is not None:
            data = self.cache.get(work.key, lambda: self.compute(work, left, f))[work.offset]
            write_frame(out, data)  # planes 0-2; plane 3 is the confidence
        props = out.props
        for name, value in decided.props().items():
            props[name] = value
        props[CONFIDENCE_PROP] = 1.0 if data is None else float(data[3].mean(dtype=np.float64))
        if self.confidence_map:  # the last clip requested: a frame of ones to write the map into
            trusted = f[-1].copy()
            if data is not None:
                np.copyto(np.asarray(trusted[0]), data[3], casting="same_kind")
            props[CONFIDENCE_MAP_PROP] = trusted
        duration = self.rates.duration(props)
        if duration is not None:
            props["_DurationNum"], props["_DurationDen"] = duration
        return out


def superslomo(
    clip: vs.VideoNode,
    factor_num: int = 2,
    factor_den: int = 1,
    fps_num: int | None = None,
    fps_den: int | None = None,
    *,
    slowmo: bool = False,
    model: str | os.PathLike[str] | SuperSloMo | None = None,
    device_index: int | None = None,
    fp16: bool | None = FilterOptions.fp16,
    batch_size: int | None = None,
    sc: bool = FilterOptions.sc,
    sc_threshold: float | None = FilterOptions.sc_threshold,
    cache_mb: int = 1024,
    tile: int | None = None,
    flow: str = FilterOptions.flow,
    dedup: bool = FilterOptions.dedup,
    dedup_threshold: float = FilterOptions.dedup_threshold,
    dedup_max_run: int = FilterOptions.dedup_max_run,
    timestamps: Sequence[Fraction | float] | None = None,
    backend: str | None = FilterOptions.backend,
    motion: str = FilterOptions.motion,
    splat: bool | None = FilterOptions.splat,
    fallback: float | None = FilterOptions.fallback,
    scale: float | None = FilterOptions.scale,
    num_streams: int | None = FilterOptions.num_streams,
    confidence_map: bool = False,
    **vsrife: object,
) -> vs.VideoNode:
    """Interpolate ``clip`` with Super SloMo to ``factor`` times its frames.

    Output frame n sits at source position n / factor (exact rational arithmetic): whole positions are
    the source frames themselves, bit-exact with their props; others are synthesised between the two
    neighbouring source frames. The output has ceil(N · factor) frames; those past the last source
    frame repeat it.

    :param clip: RGBS or RGBH, constant format and size. RGBS is computed in fp32; RGBH comes back RGBH.
    :param factor_num: Numerator of the frame-count factor (>= 1 and at most 10^4 overall; the reduced
        numerator at most 10^5, which fps mode can reach with unusual rates).
    :param factor_den: Denominator of the factor, e.g. ``factor_num=5, factor_den=2`` for 2.5×.
    :param fps_num: Target frame-rate numerator; when set, factor = target fps / clip fps (fps mode),
        and the clip needs a known frame rate.
    :param fps_den: Target frame-rate denominator (default 1), e.g. 60000/1001.
    :param slowmo: Keep the clip's frame rate instead: the result plays factor times longer.
    :param model: Weights: None for the default in ``weights/``, a path to an original ``SuperSloMo.ckpt``
        or to this project's ``.safetensors``, or an already built :class:`SuperSloMo` module.
    :param device_index: CUDA device to run on; None uses GPU 0 when CUDA is there, else the CPU; -1 forces
        the CPU.
    :param fp16: Half-precision network (warps and blend stay fp32); default True on CUDA, False on the CPU.
    :param batch_size: Interpolated frames per forward; None picks what fits the device's memory.
    :param sc: Never interpolate across a scene cut; frames between the two frames of a cut repeat the
        source frame nearest in time (the left one at exactly t = 0.5).
    :param sc_threshold: Mean absolute luma difference (0..1) above which a pair is a cut, unless it falls below
        half of it once the motion is compensated (DIS flow): large motion is not a cut. None: no detection of
        the filter's own, as in vs-rife (whose default is None, with ``sc=False``). ``_SceneChangeNext`` /
        ``_SceneChangePrev`` props on the input always count.
    :param cache_mb: Memory for computed frames (MiB). The frames of one pair are computed together, in
        chunks of at most half this (at least 64 MiB), and served from here; the most recent chunk is kept
        whatever the budget.
    :param tile: Run the network on overlapping tiles of this side (a multiple of 32, from 64), cross-faded
        where they overlap. None tiles only frames too large for the device's memory; on CUDA an
        out-of-memory error also halves the batch, then the tile, instead of failing.
    :param flow: Where the motion comes from: ``"net"`` (the paper's flow network, on the device), ``"dis"``
        (OpenCV DIS optical flow, on the CPU in VapourSynth's threads, once per pair) or ``"auto"`` (what the
        weights were trained for: ``"dis"`` for the default weights, ``"net"`` for the original checkpoint).
    :param dedup: Held frames (animation on twos or threes, frames repeated to raise a rate) become motion:
        a frame that repeats the one before it is never an interpolation end point; every position between
        two distinct frames A and B is interpolated between them at t = (p − A) / (B − A), whole positions
        of distinct frames stay bit-exact copies. Works at any factor, 1 included (same frame count).
    :param dedup_threshold: A frame repeats the one before when no 16×16 block differs by more than this
        mean absolute luma difference (0..1); the worst block decides, so a small moving mouth is motion.
    :param dedup_max_run: The longest run of repeated frames that is interpolated; a longer run is a still
        shot and stays exactly still.
    :param timestamps: Each source frame's start time in seconds (Fractions, or floats: taken as the nearest
        fraction with a denominator up to 10^6, so 0.48 is 12/25), strictly increasing, optionally followed
        by the clip's end time; with ``fps_num``/``fps_den`` only. Gives constant-rate output at that rate
        for a variable-rate clip: output frame n sits at time n / fps, between the source frames i and
        i + 1 around it at t = (n / fps − ts[i]) / (ts[i+1] − ts[i]); at a timestamp it is the source frame,
        bit-exact. Output frames before ts[0] copy the first frame (subtract ts[0] from every time to start
        there); without an end time the last frame lasts as long as the one before it, and output frames
        from its start to the end repeat it. Source frames closer together than 1 / fps may fall between
        output frames. Not with ``slowmo``.
    :param backend: Where the two U-Nets run: ``"torch"`` (PyTorch eager), ``"compile"`` (``torch.compile``,
        once per frame size and process: the first frames wait for the compiler), ``"onnxruntime"`` or
        ``"openvino"`` (the CPU only; extras ``[onnx]`` and ``[openvino]``; each U-Net is exported to ONNX once
        per frame size and kept in the user's cache folder). None: ``$VS_SUPERSLOMO_BACKEND`` when set, else
        the fastest installed for the device (openvino, then onnxruntime, then torch on the CPU; torch on
        CUDA). Warps and blend are the same PyTorch code for all; frames agree within 1e-3.
    :param motion: ``"linear"``: the paper's constant velocity between the two frames of a pair.
        ``"quadratic"``: with DIS flows, constant acceleration through the frames before and after the pair
        as well, where the two ends of the pair agree on it (the neighbouring pairs' flows; a pair at an end of
        the clip or next to a cut stays linear). With ``dedup`` the neighbours are the distinct frames before
        A and after B, and with ``dedup`` or ``timestamps`` they count at their real distances. Not with
        ``flow="net"``.
        ``"auto"`` (default): quadratic where it can be, else linear.
    :param splat: How the flows from the new frame back to the pair's frames are found: True moves every pixel
        of both frames along its own motion to time t and takes the flows where it lands (where two land on
        one spot, the one that looks alike in both frames: the one in front); False, the paper's estimate
        from the flows at the same spot, which blurs motion at objects' edges. None (default): True with DIS
        flows, False with the flow network (the original checkpoint stays as it was).
    :param fallback: From 0 to 1: a frame whose changing pixels' motion is trusted less than this on average
        (the flows do not undo each other, or the two frames brought to t disagree more than the pair does
        unwarped) becomes the plain blend of the pair. 0 turns it off (the network's frames as they are).
        None (default): 0.35 with DIS flows, off with the flow network (the original checkpoint stays as it
        was).
    :param scale: The networks' resolution as a share of the frame's, from 0.25 to 1 (vs-rife's ``scale``, here
        only downward): the motion networks and the confidence run on frames resized to it (rounded up to a
        multiple of 32), and their refined flows and weights are resized back, so the final warps and the blend
        read the full-size frames. 0.5 runs the networks on a quarter of the pixels. None (default): 0.5 for
        frames of 1280×720 and larger (as good there on the held-out clips, 41 % less time), 1 below.
    :param num_streams: Source pairs computed at once on the CPU (vs-mlrt's name), 1 to 16, each on its share of the
        cores (:func:`.parallel.share_cores`: torch's and OpenCV's thread counts, process-wide; 1 changes nothing).
        None (default): 2 on a CPU with two or more cores for frames smaller than 1280×720, else 1 (on a GPU 1).
    :param confidence_map: Also attach each frame's confidence map, a GRAYS frame in [0, 1] (1 on copies of
        source frames, 0 on frames that fell back), as ``SuperSloMoConfidenceMap``:
        ``core.std.PropToClip(out, "SuperSloMoConfidenceMap")`` makes it a clip for masking or compositing.
    :param vsrife: vs-rife's keywords with no counterpart here, so its scripts run after renaming the call:
        ``ensemble=False``, ``trt=False`` and ``auto_download=False`` change nothing and are
        accepted; any other value of them, and any ``trt_*`` setting, is an error naming what to use here
        (``backend=`` for TensorRT). Other unknown keywords are errors too.
    :return: The interpolated clip. Each frame carries ``SuperSloMoSource`` (the source frame it starts
        from, or the one it copies), ``SuperSloMoT`` (t from it; 0.0 on copies), ``SuperSloMoNext`` (on computed
        frames: the frame it moves towards), ``SuperSloMoCut`` (on copies made because a scene cut lies
        between the frames around it: the first frame of that pair, one value per cut), with ``dedup``
        ``SuperSloMoHeld`` (1 where the source position is a held frame), ``SuperSloMoConfidence`` (the mean of the
        frame's confidence: the share of it trusted, 1.0 on copies, 0.0 where the frame fell back to the blend) and
        ``_DurationNum``/``_DurationDen``.
    """
    options = _check_options(locals(), cache_mb)  # first: the keywords alone are local yet
    clip = _check_clip(clip)
    reason = vsrife_reason(vsrife, model)
    if reason is not None:
        raise _error(reason)
    hold_rules = options.hold_rules
    clip_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_den else Fraction(0)
    timing = _timing(clip, (factor_num, factor_den), (fps_num, fps_den), timestamps, slowmo, clip_fps)
    try:
        net = model if isinstance(model, SuperSloMo) else load_model(model)[0]
        device = select_device(device_index)
        streams = num_streams or auto_streams(clip.height, clip.width, device)
        if device.type == "cpu":
            share_cores(streams)  # before the engine: its ONNX runtimes take their thread count from torch's
        engine = Interpolator(
            net,
            device,
            fp16=fp16,
            batch_size=batch_size,
            tile=tile,
            flow=_flow_source(flow, net),
            backend=backend,
            splat=splat,
            fallback=fallback,
            scale=scale,
            streams=streams,
        )
    except SuperSloMoError as exc:
        raise _error(str(exc)) from None
    rates = Rates.of(timing, clip_fps, slowmo, fps_num, fps_den)
    # The frames of a pair are computed together, in chunks of at most half the cache (and at least
    # _MIN_CHUNK_BYTES, so small caches still batch): a large factor never needs them all in memory at once.
    frame_bytes = 3 * clip.width * clip.height * np.dtype(np.float32).itemsize
    chunk = max(1, max(cache_mb * 2**19, _MIN_CHUNK_BYTES) // frame_bytes)
    plan = FramePlan(timing, hold_rules, dedup, sc, sc_threshold is not None, _quadratic(motion, engine.flow), chunk)
    inputs = _Inputs(plan.window)
    mapped = inputs.nodes(clip, hold_rules, timing)
    base = mapped[plan.window.frames.index(0)]
    if rates.fps > 0:
        base = vs.core.std.AssumeFPS(base, fpsnum=rates.fps.numerator, fpsden=rates.fps.denominator)
    if not isinstance(confidence_map, bool):
        raise _error(f"confidence_map must be True or False, got {confidence_map!r}")
    if confidence_map:
        mapped.append(vs.core.std.BlankClip(base, format=vs.GRAYS, color=1.0, keep=True))
    dtype = np.float16 if clip.format.id == vs.RGBH else np.float32
    threshold = sc_threshold or DEFAULT_SC_THRESHOLD
    frames = _Frames(plan, inputs, engine, threshold, rates, dtype, cache_mb, confidence_map)
    if streams == 1:
        return vs.core.std.ModifyFrame(base, mapped, frames)
    # VapourSynth calls a selector one frame at a time: pairs run side by side from a selector node each, serving
    # from the same caches. Pair i's frames go to node i mod streams, whole positions (copies, unless held) to a
    # node of their own, so a copy never waits behind a pair (clip_src: the graph shows the nodes).
    nodes = [vs.core.std.ModifyFrame(base, mapped, frames) for _ in range(streams + 1)]

    def pick(n: int) -> vs.VideoNode:
        left, t = plan.timing.position(n)
        return nodes[streams if t == 0 else left % streams]

    return vs.core.std.FrameEval(base, pick, clip_src=nodes)
