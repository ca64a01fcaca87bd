"""The VapourSynth filter: ``superslomo(clip, ...)``. Thin glue over timing, scenechange, engine and cache."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any, cast

import numpy as np
import vapoursynth as vs

from .cache import ComputeOnceCache
from .engine import EngineError, Interpolator, select_device
from .flow import FLOW_SOURCES, FlowSource, compensated_difference
from .frames import read_frame, write_frame
from .network import SuperSloMo
from .scenechange import DEFAULT_SC_THRESHOLD, is_cut, luma_diff_clip, next_frame_clip
from .timing import Timing, TimingError, resolve_factor
from .weights import WeightsError, load_model

__all__ = ["superslomo"]

SOURCE_PROP = "SuperSloMoSource"
T_PROP = "SuperSloMoT"
_FORMATS = (vs.RGBS, vs.RGBH)
_MIN_CHUNK_BYTES = 64 * 2**20


def _error(message: str) -> vs.Error:
    return vs.Error(f"superslomo: {message}")


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


def _flow_source(flow: str, net: SuperSloMo) -> FlowSource:
    return net.flow_source if flow == "auto" else cast(FlowSource, flow)


def _map_to_left(clip: vs.VideoNode, timing: Timing) -> vs.VideoNode:
    """Frame n of the result is frame ``left(n)`` of ``clip``.

    std.SelectEvery refuses a cycle of 1 (integer factors), so it selects from the clip with every
    frame doubled, at twice the cycle and offsets: the same frames for every factor.
    """
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
    :return: The interpolated clip. Each frame carries ``SuperSloMoSource`` (the source frame it starts
        from, or the one it copies), ``SuperSloMoT`` (t; 0.0 on copies) and ``_DurationNum``/``_DurationDen``.
    """
    clip = _check_clip(clip)
    if not isinstance(sc_threshold, (int, float)) or not 0 < sc_threshold <= 1:
        raise _error(f"sc_threshold must be in (0, 1], got {sc_threshold!r}")
    if isinstance(cache_mb, bool) or not isinstance(cache_mb, int) or cache_mb < 0:
        raise _error(f"cache_mb must be a non-negative int, got {cache_mb!r}")
    if flow != "auto" and flow not in FLOW_SOURCES:
        raise _error(f"flow must be 'auto', 'net' or 'dis', got {flow!r}")
    clip_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_den else Fraction(0)
    try:
        factor = resolve_factor(factor_num, factor_den, fps_num, fps_den, clip_fps)
        timing = Timing(clip.num_frames, factor)
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
        )
    except (WeightsError, EngineError) as exc:
        raise _error(str(exc)) from None

    if slowmo:
        out_fps = clip_fps
    elif fps_num is not None:
        out_fps = Fraction(fps_num, fps_den or 1)
    else:
        out_fps = clip_fps * factor
    # Variable-rate clips: each output frame lasts its source frame's duration / factor.
    duration_scale = Fraction(1) if slowmo else 1 / factor

    sources = [clip, next_frame_clip(clip)] + ([luma_diff_clip(clip)] if sc else [])
    mapped = [_map_to_left(c, timing) for c in sources]
    base = mapped[0]
    if out_fps > 0:
        base = vs.core.std.AssumeFPS(base, fpsnum=out_fps.numerator, fpsden=out_fps.denominator)

    dtype = np.float16 if clip.format.id == vs.RGBH else np.float32
    cache: ComputeOnceCache[tuple[int, int], np.ndarray] = ComputeOnceCache(cache_mb * 2**20, lambda a: a.nbytes)
    cuts: ComputeOnceCache[int, bool] = ComputeOnceCache(4096, lambda _: 1)
    # The frames of a pair are computed together, in chunks of at most half the cache (and at least
    # _MIN_CHUNK_BYTES, so small caches still batch): a large factor never needs them all in memory at once.
    frame_bytes = 3 * clip.width * clip.height * np.dtype(np.float32).itemsize
    chunk = max(1, max(cache_mb * 2**19, _MIN_CHUNK_BYTES) // frame_bytes)

    def cut(left: int, f: list[vs.VideoFrame]) -> bool:
        """Whether the pair (left, left + 1) is a scene cut; once per pair for all threads, so the cut test's
        motion compensation runs once too."""
        if not sc:
            return False
        a, b = read_frame(f[0]), read_frame(f[1])
        return is_cut(f[0].props, f[1].props, f[2].props, sc_threshold, lambda: compensated_difference(a, b))

    def chunk_frames(left: int, index: int, f: list[vs.VideoFrame]) -> np.ndarray:
        """Chunk ``index`` of the frames the pair (left, left + 1) gives; once per chunk for all threads."""
        times = [float(x) for x in timing.pair_times(left, index * chunk, (index + 1) * chunk)]
        return engine.interpolate(read_frame(f[0]), read_frame(f[1]), times).numpy().astype(dtype, copy=False)

    def select(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        left, t = timing.position(n)
        source, data = left, None
        if t != 0:
            if cuts.get(left, lambda: cut(left, f)):
                source = left if t <= Fraction(1, 2) else left + 1
            else:
                index, offset = divmod(timing.pair_slot(n), chunk)
                data = cache.get((left, index), lambda: chunk_frames(left, index, f))[offset]
        out = (f[1] if source != left else f[0]).copy()
        if data is not None:
            write_frame(out, data)
        props = out.props
        props[SOURCE_PROP] = source
        props[T_PROP] = float(t) if data is not None else 0.0
        if out_fps > 0:
            props["_DurationNum"], props["_DurationDen"] = out_fps.denominator, out_fps.numerator
        elif "_DurationNum" in props and "_DurationDen" in props and props["_DurationDen"] > 0:
            duration = Fraction(props["_DurationNum"], props["_DurationDen"]) * duration_scale
            props["_DurationNum"], props["_DurationDen"] = duration.numerator, duration.denominator
        return out

    return vs.core.std.ModifyFrame(base, mapped, select)
