"""Shared fixtures: tiny random networks and clips built from numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_superslomo import SuperSloMo

TINY_WIDTH = 0.0625  # channels 2..32: a forward on a small frame takes milliseconds


def make_model(width: float = TINY_WIDTH, warp: str = "exact", seed: int = 0, flow_bias: float = 2.0) -> SuperSloMo:
    """A random network whose flows are a few pixels, so warps and blends really move content."""
    torch.manual_seed(seed)
    model = SuperSloMo(width=width, warp=warp)  # type: ignore[arg-type]
    with torch.no_grad():
        model.flow.conv3.bias.copy_(torch.tensor([flow_bias, -0.7 * flow_bias, -0.5 * flow_bias, 1.3 * flow_bias]))
        model.interp.conv3.bias.copy_(torch.tensor([0.5, -0.3, 0.2, 0.4, 0.3]))
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model() -> SuperSloMo:
    return make_model()


def random_frames(count: int, height: int, width: int, seed: int = 1) -> list[np.ndarray]:
    """Smooth random pictures (3, H, W) in [0, 1], each moved 2 px right and 1 px down from the last."""
    rng = np.random.default_rng(seed)
    h, w = height + count, width + 2 * count
    coarse = torch.from_numpy(rng.random((1, 3, h // 4 + 2, w // 4 + 2), dtype=np.float32))
    base = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return [
        np.ascontiguousarray(base[:, count - i : count - i + height, 2 * (count - i) : 2 * (count - i) + width])
        for i in range(count)
    ]


def clip_from_arrays(
    frames: Sequence[np.ndarray],
    fmt: int = vs.RGBS,
    fps: tuple[int, int] = (24000, 1001),
    props: Sequence[dict[str, object]] | None = None,
) -> vs.VideoNode:
    """An RGB clip whose frame n holds ``frames[n]`` (3, H, W) and the props ``props[n]``."""
    _, h, w = frames[0].shape
    blank = vs.core.std.BlankClip(width=w, height=h, format=fmt, length=len(frames), fpsnum=fps[0], fpsden=fps[1])
    dtype = np.float16 if fmt == vs.RGBH else np.float32

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for plane in range(3):
            np.copyto(np.asarray(out[plane]), frames[n][plane].astype(dtype))
        for key, value in (props[n] if props else {}).items():
            out.props[key] = value
        return out

    return vs.core.std.ModifyFrame(blank, blank, fill)


def read_frame(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.array(frame[plane]) for plane in range(3)])


def write_original_ckpt(model: SuperSloMo, path: object) -> None:
    """A checkpoint laid out as the public port's train.py saves it, metadata and datetime included."""
    import datetime

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
