"""The VapourSynth filter: ``superslomo(clip, ...)``. Thin glue over timing, scenechange, engine and cache."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, cast

import numpy as np
import vapoursynth as vs

from .cache import ComputeOnceCache
from .engine import Interpolator, select_device
from .errors import BackendError, SuperSloMoError
from .flow import FLOW_SOURCES, FlowSource, compensated_difference
from .frames import read_frame, write_frame
from .holds import HoldRules, Position, flag_span, frame_span, locate, outer_frames, worst_block_difference
from .network import SuperSloMo
from .scenechange import DEFAULT_SC_THRESHOLD, is_cut, luma_diff_clip
from .timing import TimestampTiming, Timing, TimingError, resolve_factor, target_rate
from .weights import load_model

__all__ = ["FilterError", "superslomo"]

SOURCE_PROP = "SuperSloMoSource"
T_PROP = "SuperSloMoT"
NEXT_PROP = "SuperSloMoNext"
HELD_PROP = "SuperSloMoHeld"
CONFIDENCE_PROP = "SuperSloMoConfidence"
CONFIDENCE_MAP_PROP = "SuperSloMoConfidenceMap"
REPEATS_PROP = "SuperSloMoRepeats"  # on the internal flags clip: the frame repeats the one before
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
            fix = "core.resize.Bicubic(clip, format=vs.RGBS, matrix_in_s='709') (use '170m' for SD sources)"
        else:
            fix = "core.resize.Point(clip, format=vs.RGBS)"
        raise _error(f"only RGBS and RGBH clips are accepted, got {fmt.name}; convert with {fix}")
    return clip


MOTIONS = ("auto", "linear", "quadratic")


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
    fp16: bool | None = None,
    batch_size: int | None = None,
    sc: bool = True,
    sc_threshold: float = DEFAULT_SC_THRESHOLD,
    cache_mb: int = 1024,
    tile: int | None = None,
    flow: str = "auto",
    dedup: bool = False,
    dedup_threshold: float = HoldRules.threshold,
    dedup_max_run: int = HoldRules.max_run,
    timestamps: Sequence[Fraction | float] | None = None,
    backend: str | None = None,
    motion: str = "auto",
    splat: bool | None = None,
    fallback: float | None = None,
    confidence_map: bool = False,
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
    :param sc_threshold: Mean absolute luma difference (0..1) above which a pair is a cut (vs-rife's
        default), unless it falls below half of it once the motion is compensated (DIS flow): large
        motion is not a cut. ``_SceneChangeNext``/``_SceneChangePrev`` props on the input always count.
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
    :param confidence_map: Also attach each frame's confidence map, a GRAYS frame in [0, 1] (1 on copies of
        source frames, 0 on frames that fell back), as ``SuperSloMoConfidenceMap``:
        ``core.std.PropToClip(out, "SuperSloMoConfidenceMap")`` makes it a clip for masking or compositing.
    :return: The interpolated clip. Each frame carries ``SuperSloMoSource`` (the source frame it starts
        from, or the one it copies), ``SuperSloMoT`` (t from it; 0.0 on copies), ``SuperSloMoNext`` (the
        frame it moves towards; absent on copies), with ``dedup`` ``SuperSloMoHeld`` (1 where the source
        position is a held frame), ``SuperSloMoConfidence`` (the mean of the frame's confidence: the share of it
        trusted, 1.0 on copies of source frames, 0.0 where the frame fell back to the blend) and
        ``_DurationNum``/``_DurationDen``.
    """
    clip = _check_clip(clip)
    if not isinstance(sc_threshold, (int, float)) or not 0 < sc_threshold <= 1:
        raise _error(f"sc_threshold must be in (0, 1], got {sc_threshold!r}")
    if isinstance(cache_mb, bool) or not isinstance(cache_mb, int) or cache_mb < 0:
        raise _error(f"cache_mb must be a non-negative int, got {cache_mb!r}")
    if flow != "auto" and flow not in FLOW_SOURCES:
        raise _error(f"flow must be 'auto', 'net' or 'dis', got {flow!r}")
    if motion not in MOTIONS:
        raise _error(f"motion must be one of {', '.join(map(repr, MOTIONS))}, got {motion!r}")
    if not isinstance(dedup_threshold, (int, float)) or not 0 < dedup_threshold <= 1:
        raise _error(f"dedup_threshold must be in (0, 1], got {dedup_threshold!r}")
    if isinstance(dedup_max_run, bool) or not isinstance(dedup_max_run, int) or not 1 <= dedup_max_run <= 16:
        raise _error(f"dedup_max_run must be an int from 1 to 16 (frames), got {dedup_max_run!r}")
    hold_rules = HoldRules(float(dedup_threshold), dedup_max_run)
    clip_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_den else Fraction(0)
    timing: Timing | TimestampTiming
    try:
        if timestamps is None:
            factor = resolve_factor(factor_num, factor_den, fps_num, fps_den, clip_fps)
            timing = Timing(clip.num_frames, factor)
        elif fps_num is None:
            raise TimingError("timestamps need fps_num (and fps_den): the constant output rate, e.g. fps_num=60")
        elif slowmo:
            raise TimingError(
                "timestamps do not take slowmo; for k times slow motion give a k times higher fps_num and play "
                "the result at the lower rate with std.AssumeFPS"
            )
        else:
            timing = TimestampTiming.from_timestamps(timestamps, clip.num_frames, target_rate(fps_num, fps_den))
    except TimingError as exc:
        raise _error(str(exc)) from None
    try:
        net = model if isinstance(model, SuperSloMo) else load_model(model)[0]
        engine = Interpolator(
            net,
            select_device(device_index),
            fp16=fp16,
            batch_size=batch_size,
            tile=tile,
            flow=_flow_source(flow, net),
            backend=backend,
            splat=splat,
            fallback=fallback,
        )
    except SuperSloMoError as exc:
        raise _error(str(exc)) from None
    quadratic = _quadratic(motion, engine.flow)

    if isinstance(timing, TimestampTiming):
        out_fps, duration_scale = timing.fps, Fraction(1)
    else:
        if slowmo:
            out_fps = clip_fps
        elif fps_num is not None:
            out_fps = Fraction(fps_num, fps_den or 1)
        else:
            out_fps = clip_fps * timing.factor
        # Variable-rate clips in factor mode: each output frame lasts its source frame's duration / factor.
        duration_scale = Fraction(1) if slowmo else 1 / timing.factor

    # Source frames around each output position: with dedup the distinct frames A and B may lie up to
    # max_run frames away, and which frames are held follows from flags up to twice that far; quadratic
    # motion adds the distinct frames before A and after B, one more run away (holds.frame_span).
    reach = hold_rules.max_run if dedup else 0
    first_frame, last_frame = frame_span(reach, quadratic)
    frames_at = range(first_frame, last_frame + 1)
    # The cut test of pair (a, b) reads the statistics of pair (b - 1, b): B - 1 in [left, left + reach], and
    # with quadratic motion A - 1 from left - reach - 1 and the frame before the one after B up to
    # left + 2·reach + 1.
    stats_at = range(-reach - 1, 2 * reach + 2) if quadratic else range(0, reach + 1)
    lowest, highest = flag_span(reach, quadratic)
    flags_at = range(lowest, highest + 1) if dedup else range(0)
    # One node each for the statistics and the flags, shifted many ways: VapourSynth's cache of that node
    # serves every offset, so each frame's statistics and block difference are computed once.
    sources = [_shifted(clip, o) for o in frames_at]
    if sc:
        diffs = luma_diff_clip(clip)
        sources += [_shifted(diffs, o) for o in stats_at]
    if dedup:
        repeats = _repeats_clip(clip, hold_rules)
        sources += [_shifted(repeats, o) for o in flags_at]
    mapped = [_map_to_left(c, timing) for c in sources]
    base = mapped[frames_at.index(0)]
    if out_fps > 0:
        base = vs.core.std.AssumeFPS(base, fpsnum=out_fps.numerator, fpsden=out_fps.denominator)
    if not isinstance(confidence_map, bool):
        raise _error(f"confidence_map must be True or False, got {confidence_map!r}")
    if confidence_map:  # the last clip: a frame of ones to write each map into
        mapped.append(vs.core.std.BlankClip(base, format=vs.GRAYS, color=1.0, keep=True))
    stats_first = len(frames_at)
    flags_first = stats_first + (len(stats_at) if sc else 0)

    dtype = np.float16 if clip.format.id == vs.RGBH else np.float32
    cache: ComputeOnceCache[tuple[int, int], np.ndarray] = ComputeOnceCache(cache_mb * 2**20, lambda a: a.nbytes)
    cuts: ComputeOnceCache[int, bool] = ComputeOnceCache(4096, lambda _: 1)
    # The frames of a pair are computed together, in chunks of at most half the cache (and at least
    # _MIN_CHUNK_BYTES, so small caches still batch): a large factor never needs them all in memory at once.
    frame_bytes = 3 * clip.width * clip.height * np.dtype(np.float32).itemsize
    chunk = max(1, max(cache_mb * 2**19, _MIN_CHUNK_BYTES) // frame_bytes)

    def ends(a: int, b: int, left: int, f: list[vs.VideoFrame]) -> tuple[np.ndarray, np.ndarray]:
        """Frames a and b as arrays, from the source frames requested around ``left``."""
        return read_frame(f[frames_at.index(a - left)]), read_frame(f[frames_at.index(b - left)])

    def cut(a: int, b: int, left: int, f: list[vs.VideoFrame]) -> bool:
        """Whether a scene cut lies between distinct frames a and b; once per pair for all threads, so the
        cut test's motion compensation runs once too. The cut, if any, lies between b - 1 and b: frames from
        a to b - 1 show one picture."""
        if not sc:
            return False
        before, after = f[frames_at.index(b - 1 - left)], f[frames_at.index(b - left)]
        stats = f[stats_first + stats_at.index(b - 1 - left)].props
        return is_cut(
            before.props, after.props, stats, sc_threshold, lambda: compensated_difference(*ends(a, b, left, f))
        )

    def neighbours(a: int, b: int, outer: tuple[int, int] | None, left: int, f: list[vs.VideoFrame]) -> dict[str, Any]:
        """The frames ``outer`` (before a and after b) for quadratic motion and how far they lie, as
        :meth:`Interpolator.interpolate` takes them; none without them (an end of the clip, a still shot) or
        across a cut, and the pair's motion stays linear."""
        if outer is None:
            return {}
        before, after = outer
        if cuts.get(before, lambda: cut(before, a, left, f)) or cuts.get(b, lambda: cut(b, after, left, f)):
            return {}
        spacing = tuple(float(x) for x in timing.spacing(before, a, b, after))
        frames = (read_frame(f[frames_at.index(i - left)]) for i in outer)
        return dict(zip(("before", "after"), frames, strict=True), spacing=spacing)

    def chunk_frames(
        a: int, b: int, outer: tuple[int, int] | None, index: int, left: int, f: list[vs.VideoFrame]
    ) -> np.ndarray:
        """Chunk ``index`` of the frames between distinct frames a and b; once per chunk for all threads."""
        times = [float(x) for x in timing.pair_times(a, b, start=index * chunk, stop=(index + 1) * chunk)]
        try:
            frames, confidence = engine.interpolate_with_confidence(
                *ends(a, b, left, f), times, **neighbours(a, b, outer, left, f)
            )
            return np.concatenate((frames.numpy(), confidence.numpy()[:, None]), 1).astype(dtype, copy=False)
        except BackendError as exc:  # an export for a new frame size failed: one line, as at construction
            raise _error(str(exc)) from None

    def select(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        left, t = timing.position(n)
        if dedup:
            flags = {o: bool(f[flags_first + i].props[REPEATS_PROP] == 1) for i, o in enumerate(flags_at)}

            def repeats(i: int) -> bool:
                return flags[i - left]

            at = locate(left + t, repeats, clip.num_frames, reach)
        else:

            def repeats(i: int) -> bool:  # without dedup no frame counts as held
                return False

            at = Position(left, left + 1 if t else None, t, False)
        source, data = at.a, None
        if at.b is not None:
            a, b = at.a, at.b
            if cuts.get(a, lambda: cut(a, b, left, f)):  # the nearer frame around the position, as it is
                source = left if t <= Fraction(1, 2) else left + 1
            else:
                outer = outer_frames(a, b, repeats, clip.num_frames, reach) if quadratic else None
                index, offset = divmod(timing.pair_slot(n, a), chunk)
                data = cache.get((a, index), lambda: chunk_frames(a, b, outer, index, left, f))[offset]
        out = f[frames_at.index(source - left)].copy()
        if data is not None:
            write_frame(out, data)
        props = out.props
        props[SOURCE_PROP] = source
        props[T_PROP] = float(timing.between(n, at.a, at.b)) if at.b is not None and data is not None else 0.0
        if data is not None:
            props[NEXT_PROP] = at.b
        props[CONFIDENCE_PROP] = 1.0 if data is None else float(data[3].mean(dtype=np.float64))
        if confidence_map:
            trusted = f[-1].copy()
            if data is not None:
                np.copyto(np.asarray(trusted[0]), data[3], casting="same_kind")
            props[CONFIDENCE_MAP_PROP] = trusted
        if dedup:
            props[HELD_PROP] = int(at.held)
        if out_fps > 0:
            props["_DurationNum"], props["_DurationDen"] = out_fps.denominator, out_fps.numerator
        elif "_DurationNum" in props and "_DurationDen" in props and props["_DurationDen"] > 0:
            duration = Fraction(props["_DurationNum"], props["_DurationDen"]) * duration_scale
            props["_DurationNum"], props["_DurationDen"] = duration.numerator, duration.denominator
        return out

    return vs.core.std.ModifyFrame(base, mapped, select)
