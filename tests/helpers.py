"""Helpers shared by the tests: tiny random networks, moving test pictures, and files written for a test.

Tests import these from here (never from each other or from the benchmark); fixtures live in the conftest
files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import functools
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_superslomo import SuperSloMo
from vs_superslomo.evaluation.methods import build_methods
from vs_superslomo.evaluation.protocol import ClipResult, Window, evaluate_windows
from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.training.config import TrainConfig
from vs_superslomo.training.samples import Sample
from vs_superslomo.training.synthetic import Layer, Motion, Scene
from vs_superslomo.warp import backwarp

__all__ = [
    "HAS_MVTOOLS",
    "RAMP_START",
    "RAMP_STEP",
    "TINY_WIDTH",
    "bias",
    "cut_clip_frames",
    "evaluate_window_named",
    "make_model",
    "memory_mib",
    "needs_bestsource",
    "needs_ffmpeg",
    "needs_mvtools",
    "random_frames",
    "tiny_train_config",
    "translation_scene",
    "warp_error",
    "write_original_ckpt",
    "write_photos",
    "write_y4m",
]

TINY_WIDTH = 0.0625  # channels 2..32: a forward on a small frame takes milliseconds
HAS_MVTOOLS = hasattr(vs.core, "mv")
needs_bestsource = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="the bestsource plugin is not installed")
needs_mvtools = pytest.mark.skipif(not HAS_MVTOOLS, reason="the mvtools plugin is not installed")
# ffmpeg and the ffprobe beside it: every end-to-end test of the command line reads its output back.
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg or ffprobe is not on PATH"
)
# The evaluation tests' ramp clip (tests/evaluation/conftest.py): flat frames whose luma rises RAMP_STEP codes
# a frame from frame RAMP_START (frames before it differ, so a window read from the wrong start breaks it).
RAMP_START = 3
RAMP_STEP = 4  # luma codes per frame: limited-range RGB moves 4/219 a frame


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")
    ]  # fmt: skip


@functools.cache  # looked up on first use: finding the C library runs ldconfig, which most tests never need
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):  # not glibc 2.33 or later
        return None
    function.restype = _MallInfo2
    return cast(Callable[[], _MallInfo2], function)


def memory_mib() -> tuple[float, float]:
    """This process's resident set and the allocator's blocks in use (glibc's ``mallinfo2``; NaN elsewhere), MiB.

    The resident set also holds the free memory the allocator keeps until a trim, which wanders by tens of MiB
    from one pair to the next; the blocks in use are what the process keeps."""
    with open("/proc/self/statm") as fh:
        resident = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return resident, float("nan")
    info = mallinfo2()
    return resident, (info.uordblks + info.hblkhd) / 2**20


def bias(conv: torch.nn.Conv2d) -> torch.Tensor:
    """A convolution's bias (every convolution of the network has one; its type allows None)."""
    assert conv.bias is not None
    return conv.bias


def make_model(width: float = TINY_WIDTH, warp: str = "exact", seed: int = 0, flow_bias: float = 2.0) -> SuperSloMo:
    """A random network whose flows are a few pixels, so warps and blends really move content."""
    torch.manual_seed(seed)
    model = SuperSloMo(width=width, warp=warp)  # type: ignore[arg-type]  # tests pass wrong warps on purpose
    with torch.no_grad():
        bias(model.flow.conv3).copy_(torch.tensor([flow_bias, -0.7 * flow_bias, -0.5 * flow_bias, 1.3 * flow_bias]))
        bias(model.interp.conv3).copy_(torch.tensor([0.5, -0.3, 0.2, 0.4, 0.3]))
    return model.eval()


def random_frames(count: int, height: int, width: int, seed: int = 1, grain: int = 16) -> list[np.ndarray]:
    """Smooth random pictures (3, H, W) in [0, 1], each moved 2 px right and 1 px down from the last.

    Smooth (random values on a ``grain``-pixel grid, bilinearly interpolated), so consecutive frames never
    look like a scene cut; moving, so they are not identical. The tests' own pictures, apart from the
    benchmark's input (``bench.moving_texture``, made the same way), so changing one never changes the other.
    """
    rng = np.random.default_rng(seed)
    h, w = height + count, width + 2 * count
    coarse = torch.from_numpy(rng.random((1, 3, h // grain + 2, w // grain + 2), dtype=np.float32))
    base = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return [
        np.ascontiguousarray(base[:, count - i : count - i + height, 2 * (count - i) : 2 * (count - i) + width])
        for i in range(count)
    ]


def accelerating_frames(shifts: Sequence[int], height: int = 96, width: int = 256) -> list[np.ndarray]:
    """A smooth picture moved right by each of ``shifts`` px (one frame each), for motion with a known answer."""
    base = random_frames(1, height, width + max(shifts) - min(shifts), seed=5, grain=24)[0]
    return [np.ascontiguousarray(base[:, :, max(shifts) - x : max(shifts) - x + width]) for x in shifts]


def zero_refinement_model() -> SuperSloMo:
    """A tiny model whose interpolation net outputs zeros: warping along the given flows, equal visibility."""
    model = make_model(seed=2)
    torch.nn.init.zeros_(model.interp.conv3.weight)
    torch.nn.init.zeros_(bias(model.interp.conv3))
    return model


def write_original_ckpt(model: SuperSloMo, path: Path) -> None:
    """A checkpoint laid out as the public port's train.py saves it, metadata and datetime included."""
    torch.save(
        {
            "Detail": "End to end Super SloMo.",
            "epoch": 199,
            "timestamp": datetime.datetime(2018, 11, 3, 12, 0, 0),
            "trainBatchSz": 6,
            "validationBatchSz": 10,
            "learningRate": 1e-6,
            "loss": [[0.1, 0.09]],
            "valLoss": [[0.2]],
            "valPSNR": [[29.5]],
            "state_dictFC": model.flow.state_dict(),
            "state_dictAT": model.interp.state_dict(),
        },
        path,
    )


def write_photos(folder: Path, count: int = 3, size: tuple[int, int] = (120, 160)) -> Path:
    """Textured random JPEGs (blurred noise plus a few shapes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        img = cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float32), (0, 0), 2.0) * 255
        for _ in range(4):
            centre = (int(rng.integers(size[1])), int(rng.integers(size[0])))
            cv2.circle(img, centre, int(rng.integers(5, 25)), rng.integers(0, 255, 3).tolist(), -1)
        cv2.imwrite(str(folder / f"photo{i}.jpg"), np.clip(img, 0, 255).astype(np.uint8))
    return folder


def write_y4m(path: Path, frames: list[np.ndarray]) -> Path:
    """A lossless-ish 8-bit 4:4:4 y4m tagged as BT.601, which is what colour.to_rgb assumes for SD."""
    clip = vs.core.resize.Bicubic(clip_from_arrays(frames), format=vs.YUV444P8, matrix_s="170m")
    with open(path, "wb") as fh:
        clip.output(fh, y4m=True)
    return path


def cut_clip_frames(size: int = 64) -> list[np.ndarray]:
    """12 frames: 0-6 a bright moving picture, 7-9 a dark different one (a cut), 10-11 repeat 9 (static)."""
    a = [0.6 + 0.4 * f for f in random_frames(7, size, size, seed=1)]
    b = [0.4 * f for f in random_frames(3, size, size, seed=2)]
    return a + b + [b[-1], b[-1]]


def tiny_train_config(tmp_path: Path, folders: tuple[Path, Path | None], **overrides: object) -> TrainConfig:
    """A training run of a few steps on tiny crops, writing into ``tmp_path``; ``folders`` are (photos, clips)."""
    photos, clips = folders
    settings: dict[str, object] = {
        "photos": str(photos),
        "clips": str(clips) if clips else None,
        "holdout": ("held_clip",) if clips else (),
        "width": TINY_WIDTH,
        "steps": 3,
        "batch": 2,
        "crop": 64,
        "max_motion": 8.0,
        "val_every": 1,
        "val_count": 2,
        "checkpoint": str(tmp_path / "run.train.pt"),
        "checkpoint_every": 1,
        "out": str(tmp_path / "trained.safetensors"),
        "warmup": 1,
        "progress": False,
    }
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]  # a dict of mixed settings


def evaluate_window_named(
    clips: Path,
    name: str,
    start: int,
    ks: list[int],
    *,
    models: dict[str, SuperSloMo] | None = None,
    flowfps: bool,
    minterpolate: bool = False,
    flows: tuple[str, ...] = ("auto",),
    held: bool = False,
    unsplatted: bool = False,
    scales: tuple[float, ...] = (),
) -> list[ClipResult]:
    """The frame-drop protocol on ``clips/NAME.y4m`` from ``start`` at each k, with the methods asked for."""
    window = Window(name, f"{name}.y4m", start)
    methods = build_methods(
        models,
        flowfps=flowfps,
        minterpolate=minterpolate,
        flows=flows,
        held=held,
        unsplatted=unsplatted,
        scales=scales,
    )
    results, _ = evaluate_windows([(window, clips / window.file)], ks, methods)
    return results


def translation_scene(photos: list[np.ndarray], size: int = 64) -> Scene:
    """Background moving (+5, −3) px and an elliptical layer moving (−4, +6) px between s = 0 and 1."""
    bg = Motion(anchor=(size / 2, size / 2), pivot=(64.0, 48.0), delta=np.array([5.0, -3.0, 0, 0, 0, 0]))
    mask = np.zeros((30, 30), np.float32)
    cv2.ellipse(mask, (15, 15), (12, 10), 0, 0, 360, 1.0, -1)
    fg = Motion(anchor=(30.0, 34.0), pivot=(14.5, 14.5), delta=np.array([-4.0, 6.0, 0, 0, 0, 0]))
    return Scene((Layer(photos[0], bg), Layer(np.ascontiguousarray(photos[1][:30, :30]), fg, mask)), size, size)


def warp_error(sample: Sample) -> tuple[float, float]:
    """Mean |backwarp(I1, F01) − I0| and |backwarp(I0, F10) − I1| where the flow is known and stays in frame."""

    def one(src: np.ndarray, dst: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
        h, w = flow.shape[1:]
        gy, gx = np.mgrid[0:h, 0:w]
        inside = (gx + flow[0] >= 0) & (gx + flow[0] <= w - 1) & (gy + flow[1] >= 0) & (gy + flow[1] <= h - 1)
        warped = backwarp(torch.from_numpy(src)[None], torch.from_numpy(flow)[None], "exact")[0].numpy()
        keep = inside & (mask > 0)
        return float(np.abs(warped - dst).mean(0)[keep].mean())

    m = sample.flow_mask
    return one(sample.i1, sample.i0, sample.flow01, m[0]), one(sample.i0, sample.i1, sample.flow10, m[1])
