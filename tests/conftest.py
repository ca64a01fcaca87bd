"""Shared fixtures: tiny random networks and clips built from numpy arrays."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from vs_superslomo import SuperSloMo
from vs_superslomo.bench import moving_texture as random_frames
from vs_superslomo.frames import clip_from_arrays, read_frame

__all__ = ["clip_from_arrays", "make_model", "random_frames", "read_frame", "write_original_ckpt"]

# Deadlines measure the machine, not the code: a busy 2-core CI machine misses them at random.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

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
