"""Batched inference for one source pair: flow once, then every requested t in as few forwards as fit.

Plain PyTorch, no VapourSynth: frames in and out are (3, H, W) arrays of RGB in [0, 1]. Any size is
padded (edge replication) to a multiple of 32 and cropped back, so originals are never resampled.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .network import SuperSloMo

__all__ = ["EngineError", "Interpolator", "select_device"]

_MULTIPLE = 32
# Peak activation memory of one interpolated sample, per pixel at width 1 in fp32 (about 1.2 GiB at
# 1280×736, from the reference notes); scaled by width and precision to pick a batch that fits.
_BYTES_PER_PIXEL = 1.2 * 2**30 / (1280 * 736)
_CPU_BUDGET = 2 * 2**30


class EngineError(ValueError):
    """A device or precision request that cannot be served."""


def select_device(device_index: int | None) -> torch.device:
    """CUDA device ``device_index`` (0 when None and CUDA exists), else the CPU; -1 forces the CPU."""
    if device_index is not None and (isinstance(device_index, bool) or not isinstance(device_index, int)):
        raise EngineError(f"device_index must be an int or None, got {device_index!r}")
    if device_index == -1:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if device_index is not None:
            raise EngineError(
                f"device_index={device_index} asks for a CUDA GPU but torch sees none; "
                "leave device_index=None (or -1) to run on the CPU"
            )
        return torch.device("cpu")
    count = torch.cuda.device_count()
    index = 0 if device_index is None else device_index
    if not 0 <= index < count:
        raise EngineError(f"device_index={index} is out of range: torch sees {count} CUDA device(s)")
    return torch.device("cuda", index)


def _pad(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % _MULTIPLE, 0, -h % _MULTIPLE), mode="replicate")


class Interpolator:
    """Runs a :class:`SuperSloMo` on one device; forwards are serialised so threads never oversubscribe it."""

    def __init__(
        self,
        model: SuperSloMo,
        device: torch.device,
        *,
        fp16: bool | None = None,
        batch_size: int | None = None,
    ) -> None:
        if fp16 is None:
            fp16 = device.type == "cuda"
        if fp16 and device.type != "cuda":
            raise EngineError("fp16=True needs a CUDA device; on the CPU leave fp16=None (fp32)")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise EngineError(f"batch_size must be a positive int or None (automatic), got {batch_size!r}")
        self.model = model.to(device).eval()
        self.device = device
        self.fp16 = fp16
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def auto_batch_size(self, height: int, width: int) -> int:
        """How many interpolated frames of this padded size fit one forward on this device."""
        per_sample = _BYTES_PER_PIXEL * height * width * self.model.width * (0.5 if self.fp16 else 1.0)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free // 2
        else:
            budget = _CPU_BUDGET
        return max(1, int(budget // max(per_sample, 1.0)))

    def _to_tensor(self, frame: np.ndarray | Tensor) -> Tensor:
        x = torch.as_tensor(frame)
        return x.to(self.device, torch.float32, non_blocking=True).unsqueeze(0)

    def interpolate(self, frame0: np.ndarray | Tensor, frame1: np.ndarray | Tensor, times: Sequence[float]) -> Tensor:
        """Frames at ``times`` between ``frame0`` and ``frame1``: float32 (len(times), 3, H, W) on the CPU.

        The flow is computed once; the times are split into batches of ``batch_size`` (automatic when
        None). A given (pair, times) always runs in the same batches, so results never depend on
        which thread asked first.
        """
        if frame0.shape != frame1.shape or len(frame0.shape) != 3 or frame0.shape[0] != 3:
            raise EngineError(f"frames must both be (3, H, W); got {tuple(frame0.shape)} and {tuple(frame1.shape)}")
        h, w = frame0.shape[1:]
        out = torch.empty((len(times), 3, h, w), dtype=torch.float32)
        if not times:
            return out
        with self._lock, torch.inference_mode():
            model = self.model
            i0 = model.normalize(_pad(self._to_tensor(frame0)))
            i1 = model.normalize(_pad(self._to_tensor(frame1)))
            ph, pw = i0.shape[-2:]
            batch = self.batch_size or self.auto_batch_size(ph, pw)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
                f01, f10 = model.compute_flow(i0, i1)
                for start in range(0, len(times), batch):
                    chunk = times[start : start + batch]
                    t = torch.tensor(chunk, dtype=torch.float32, device=self.device)
                    n = len(chunk)
                    pred = model.synthesize(
                        i0.expand(n, -1, -1, -1),
                        i1.expand(n, -1, -1, -1),
                        f01.expand(n, -1, -1, -1),
                        f10.expand(n, -1, -1, -1),
                        t,
                    )
                    frames = (pred.float() + model.mean)[:, :, :h, :w].clamp_(0, 1)
                    out[start : start + n].copy_(frames)
        return out
