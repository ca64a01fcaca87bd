"""``vs-superslomo gpu-check``: what a CUDA GPU gives, in one command of a few minutes (``make gpu-check``).

With the default weights on a moving texture at 1080p (``--size``): fp16 against fp32 (PSNR of the same frames),
determinism (the same frames twice, bit for bit), speed at 2x for DIS flows (the default) and for the flow network
(``flow="net"``), and whether the host (DIS, on the CPU) or the GPU (the networks) bounds the filter. The table goes
to stdout and to ``--out``. Without CUDA it says so and measures nothing, unless ``--device cpu`` asks for a dry run
(fp16 left out), which is how the command itself is tested.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .bench import moving_texture, run_bench
from .commandline import Parser, parse_size, run
from .engine import Interpolator, select_device
from .errors import JobError
from .files import atomic_write
from .flow import dis_gray, gray8
from .network import SuperSloMo
from .weights import load_model

__all__ = ["GpuCheck", "check", "main"]

_PROG = "vs-superslomo gpu-check"


@dataclass(frozen=True)
class GpuCheck:
    """The measured answers (fp16 ones None when the device runs fp32 only)."""

    device: str
    size: tuple[int, int]
    fp16_psnr_db: float | None  # fp16 frames against fp32's
    deterministic: bool
    fps: dict[str, float]  # the filter end to end at 2x, by flow source
    network_fps: dict[str, float]  # the networks alone, by flow source
    dis_seconds_per_pair: float  # both directions, one CPU thread
    host_threads: int

    @property
    def bound(self) -> str:
        """Which side limits the default (DIS) filter: the host's DIS, spread over its threads, or the device."""
        dis_fps = 2 * self.host_threads / self.dis_seconds_per_pair  # two output frames per pair at 2x
        return "host (DIS)" if dis_fps < self.network_fps["dis"] else "device (networks)"

    def table(self) -> str:
        fp16 = "n/a (fp32 device)" if self.fp16_psnr_db is None else f"{self.fp16_psnr_db:.1f} dB"
        rows = [
            "| check | result |",
            "|---|---|",
            f"| device | {self.device} |",
            f"| frame size | {self.size[0]}×{self.size[1]} |",
            f"| fp16 against fp32 (PSNR) | {fp16} |",
            f"| the same frames twice, bit for bit | {'yes' if self.deterministic else 'NO'} |",
        ]
        for flow in self.fps:
            speeds = f"{self.fps[flow]:.2f} / {self.network_fps[flow]:.2f} fps"
            rows.append(f"| 2× with flow={flow}: filter / networks alone | {speeds} |")
        rows.append(
            f"| DIS per pair on one host thread | {self.dis_seconds_per_pair:.3f} s ({self.host_threads} threads) |"
        )
        rows.append(f"| bound by | {self.bound} |")
        return "\n".join(rows)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _frames(engine: Interpolator, frames: list[np.ndarray]) -> torch.Tensor:
    return engine.interpolate(frames[0], frames[1], [0.25, 0.5, 0.75])


def check(model: SuperSloMo, size: tuple[int, int], device_index: int | None, pairs: int, reps: int) -> GpuCheck:
    device = select_device(device_index)
    frames = moving_texture(pairs + 1, size[1], size[0])
    default = Interpolator(model, device)
    first = _frames(default, frames)
    deterministic = bool(torch.equal(first, _frames(Interpolator(model, device), frames)))
    fp16_psnr = None
    if device.type == "cuda":
        fp32 = _frames(Interpolator(model, device, fp16=False), frames)
        fp16_psnr = _psnr(_frames(Interpolator(model, device, fp16=True), frames), fp32)
    fps, network = {}, {}
    for flow in ("dis", "net"):
        (result,) = run_bench(size, 2, device_index=device_index, pairs=pairs, reps=reps, flow=flow, model=model)
        fps[flow], network[flow] = result.fps["e2e"], result.fps["network"]
    g0, g1 = gray8(frames[0]), gray8(frames[1])
    start = time.perf_counter()
    dis_gray(g0, g1), dis_gray(g1, g0)
    dis = time.perf_counter() - start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return GpuCheck(name, size, fp16_psnr, deterministic, fps, network, dis, os.cpu_count() or 1)


def main(argv: Sequence[str]) -> int:
    p = Parser(prog=_PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=parse_size, default=(1920, 1080), help="WxH or 720p/1080p/2160p (default 1080p)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a dry run of the command")
    p.add_argument("--pairs", type=int, default=4, help="source pairs per timed run")
    p.add_argument("--reps", type=int, default=2, help="timed repetitions")
    p.add_argument("--out", type=Path, default=Path("build/gpu-check.md"), help="where the table is written")
    args = p.parse_args(argv)
    return run(_PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise JobError("no CUDA device here: nothing measured (run it on a machine with a GPU)")
    result = check(load_model(None)[0], args.size, -1 if args.device == "cpu" else 0, args.pairs, args.reps)
    print(result.table())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda tmp: tmp.write_text(result.table() + "\n"))
