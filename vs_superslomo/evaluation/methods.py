"""The methods the protocol compares: repeat, blend, mvtools FlowFPS, ffmpeg minterpolate and Super SloMo models
(with each flow source, and through the held-frame protocol). A method rebuilds every frame of a window
from its kept frames (:data:`~vs_superslomo.evaluation.protocol.Rebuild`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..colour import ColourProps, to_rgb
from ..errors import JobError
from ..frames import clip_from_arrays
from ..network import SuperSloMo
from ..plugin import T_PROP, superslomo
from .protocol import BT709, Kept, Rebuild, held_version

__all__ = ["MINTERPOLATE", "build_methods"]

BT709_LIMITED = ColourProps(matrix=BT709, transfer=BT709, primaries=BT709, range=int(vs.RANGE_LIMITED))


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
    return vs.core.resize.Bicubic(kept.rgb, format=vs.YUV444P8, matrix=BT709_LIMITED.matrix, range=vs.RANGE_LIMITED)


def _flowfps(kept: Kept) -> vs.VideoNode:
    """mvtools as eval-baselines.md runs it: YUV444P8, Super pel=2, Analyse overlap=4 both ways, FlowFPS k×."""
    core = vs.core
    # FlowFPS only uses the ratio of output to input rate; a nominal 1 fps also serves clips of unknown rate.
    # Output frame n then sits at input position n / k (n = k·i is input frame i), N·k frames in all.
    yuv = core.std.AssumeFPS(_yuv444(kept), fpsnum=1, fpsden=1)
    sup = core.mv.Super(yuv, pel=2)
    backward = core.mv.Analyse(sup, isb=True, overlap=4)
    forward = core.mv.Analyse(sup, isb=False, overlap=4)
    return to_rgb(core.mv.FlowFPS(yuv, sup, backward, forward, num=kept.k, den=1), BT709_LIMITED)


# ffmpeg's best classical interpolation on real footage (bidirectional motion estimation, overlapped-block
# compensation, variable-size blocks): 35.18 dB at k = 2 on ten real clips, above FlowFPS.
MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def _minterpolate(kept: Kept) -> vs.VideoNode:
    """ffmpeg ``minterpolate`` (:data:`MINTERPOLATE`) to k× the rate, on the YUV444P8 FlowFPS gets.

    At a nominal 1 fps in, output frame n sits at time n / k: input position n / k, as for FlowFPS.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise JobError("minterpolate needs ffmpeg on PATH: apt-get install ffmpeg, or pass --no-minterpolate")
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
        raise JobError(f"ffmpeg minterpolate failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    frames = list(np.frombuffer(done.stdout, np.uint8).reshape(-1, 3, h, w))
    # Frames past the last kept one are never scored; pad to N·k so every index exists.
    frames = frames[: kept.rgb.num_frames * kept.k]
    frames += [frames[-1]] * max(0, kept.rgb.num_frames * kept.k - len(frames))
    return to_rgb(clip_from_arrays(frames, fmt=vs.YUV444P8, fps=(kept.k, 1)), BT709_LIMITED)


def _model_method(
    model: SuperSloMo,
    device_index: int | None,
    flow: str,
    splat: bool | None = None,
    fallback: float | None = None,
    scale: float | None = None,
) -> Rebuild:
    def rebuild(kept: Kept) -> vs.VideoNode:
        return superslomo(
            kept.rgb,
            kept.k,
            model=model,
            device_index=device_index,
            flow=flow,
            splat=splat,
            fallback=fallback,
            scale=scale,
        )

    return rebuild


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
    unsplatted: bool = False,
    fallbacks: Sequence[float] = (),
    scales: Sequence[float] = (),
) -> dict[str, Rebuild]:
    """repeat, blend, flowfps (unless turned off), minterpolate (when asked), then per named model one
    method per flow source in ``flows``: ``NAME`` for its weights' own (``auto``), ``NAME+net`` / ``NAME+dis``
    for the other, with ``unsplatted`` ``NAME+estimate`` (its own flows, the paper's estimate of the flows to
    t instead of splatting them), with ``held`` ``NAME+held`` (the held-frame protocol), and per value in
    ``fallbacks`` ``NAME+fallback=F`` (its own flows, the filter's ``fallback=F``), and per value in ``scales``
    ``NAME+scale=S`` (the filter's ``scale=S``)."""
    methods: dict[str, Rebuild] = {"repeat": _repeat, "blend": _blend}
    if flowfps:
        if not hasattr(vs.core, "mv"):
            raise JobError("the mvtools plugin is missing: pip install vapoursynth-mvtools, or pass --no-flowfps")
        methods["flowfps"] = _flowfps
    if minterpolate:
        methods["minterpolate"] = _minterpolate
    for name, model in (models or {}).items():
        # "auto" is the weights' own flow: run it once, under the plain name, however it was asked for.
        resolved = dict.fromkeys(model.flow_source if flow == "auto" else flow for flow in flows)
        for flow in resolved:
            label = name if flow == model.flow_source else f"{name}+{flow}"
            if label in methods:
                raise JobError(f"model name {name!r} is taken by a baseline; name it something else")
            methods[label] = _model_method(model, device_index, flow)
        if unsplatted:
            methods[f"{name}+estimate"] = _model_method(model, device_index, "auto", splat=False)
        if held:
            methods[f"{name}+held"] = _held_method(model, device_index)
        for fallback in fallbacks:
            methods[f"{name}+fallback={fallback:g}"] = _model_method(model, device_index, "auto", fallback=fallback)
        for scale in scales:
            methods[f"{name}+scale={scale:g}"] = _model_method(model, device_index, "auto", scale=scale)
    return methods
