"""The training loop: batches from the stream, losses, optimizer steps, validation, checkpoints and the export.

Runs on the CPU or CUDA (mixed precision there); a run stops with a checkpoint (by step or time) and resumes
exactly as if never stopped; the result is exported with :func:`vs_superslomo.weights.save_model`.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import JobError
from ..metrics import batch_psnr
from ..network import SuperSloMo
from ..weights import save_model
from .config import TrainConfig
from .losses import compute_loss, load_vgg16
from .state import TrainState
from .stream import TrainData, build_data

__all__ = ["TrainResult", "hardware_name", "train", "validate"]


@dataclass
class TrainResult:
    """How a run ended: first and last step, the last validation PSNR, per-step loss parts."""

    start_step: int
    step: int
    val_psnr: float | None
    elapsed: float  # seconds of training, over all resumed sessions
    history: list[dict[str, float]] = field(default_factory=list)
    out: Path | None = None


@torch.no_grad()
def validate(
    model: SuperSloMo,
    samples: Sequence[dict[str, Tensor]],
    device: torch.device,
    batch: int = 8,
    *,
    given_flows: bool = False,
    splat: bool = False,
) -> float:
    """Mean PSNR of the model's frames (clamped to [0, 1], as inference gives them) over ``samples``;
    ``given_flows``: the samples' flows (DIS) instead of the flow net's; ``splat``: flows splatted to t."""
    was_training = model.training
    model.eval()
    scores = []
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        i0, i1, it, t, f01, f10 = (
            torch.stack([s[k] for s in chunk]).to(device) for k in ("i0", "i1", "it", "t", "flow01", "flow10")
        )
        n0, n1 = model.normalize(i0), model.normalize(i1)
        flows = (f01, f10) if given_flows else model.compute_flow(n0, n1)
        pred = (model.synthesize(n0, n1, *flows, t, splat=splat) + model.mean).clamp(0, 1)
        scores.append(batch_psnr(pred, it).cpu())
    model.train(was_training)
    return float(torch.cat(scores).mean())


def hardware_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model with its core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores, CPU)"


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise JobError(f"device {name!r} is not a device name; use cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JobError(f"device {name} requested but CUDA is not available here; use --device cpu")
    return device


def _provenance(state: TrainState, train_data: TrainData) -> str:
    """The exported file's provenance."""
    config, step, init = state.config, state.step, state.init_provenance
    vgg = ", VGG16 perceptual loss" if config.vgg else ""
    vgg += ", flows splatted to t" if config.splat else ""
    start = f"fine-tuned from {Path(config.init).name} [{init}]" if config.init else "trained"
    if config.flow_net and not config.init:
        start = f"trained (with the {init})"
    what = (
        "the interpolation net alone on DIS flows (computed on whole frames before cropping)"
        if config.flow == "dis"
        else f"both nets end to end, flow supervision {config.flow_weight:g} fading out"
    )
    return (
        f"{start} by vs_superslomo.train: {train_data.description}; validation on {train_data.validation_source}; "
        f"held out: {', '.join(config.holdout) or 'none'}; {step} steps, batch {config.batch}, {config.crop} px crops, "
        f"Adam lr {config.lr:g} ({config.schedule}), {what}{vgg}; "
        f"width {config.width:g}, warp {config.warp}; hardware: {hardware_name(state.device)}; "
        f"training time {state.elapsed / 3600:.2f} h"
    )


def train(
    config: TrainConfig, *, resume: bool = False, until: int | None = None, time_limit: float | None = None
) -> TrainResult:
    """Train as ``config`` says; with ``resume``, continue from ``config.checkpoint`` at its step.

    ``until`` (a step) or ``time_limit`` (seconds in this call) stop early with a checkpoint, for sessions
    shorter than the run; a later ``resume`` continues exactly as if never stopped. The model is exported
    to ``config.out`` only when all ``config.steps`` are done.
    """
    config.check()
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.workers:
        # Workers share the cores, so each runs OpenCV on one thread. Set here, before they fork: changing
        # OpenCV's thread pool inside a forked worker deadlocks on the parent's pool lock.
        cv2.setNumThreads(1)
    try:
        return _train(config, resume, until, time_limit)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


def _open(config: TrainConfig, resume: bool) -> tuple[TrainState, Path | None]:
    """The run's state, new or restored from its checkpoint, and the checkpoint's path."""
    device = _device(config.device)
    ckpt_path = Path(config.checkpoint) if config.checkpoint else None
    if resume and (ckpt_path is None or not ckpt_path.is_file()):
        raise JobError(f"nothing to resume: no checkpoint at {ckpt_path}; drop --resume to start afresh")
    if not resume and ckpt_path is not None and ckpt_path.exists():
        raise JobError(f"checkpoint {ckpt_path} exists: pass --resume to continue it, or remove it")
    state = TrainState.new(config, device, fresh=not resume)
    if resume and ckpt_path is not None:
        state.restore(ckpt_path)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once
    return state, ckpt_path


def _optimizer_step(state: TrainState, batch: dict[str, Tensor], vgg: nn.Module | None) -> dict[str, float]:
    """One step on one batch (on the device): the loss parts; a non-finite loss changes no weight."""
    config, optimizer, scaler = state.config, state.optimizer, state.scaler
    for group in optimizer.param_groups:
        group["lr"] = config.lr_at(state.step)
    with torch.autocast(state.device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
        loss, parts = compute_loss(state.model, batch, config, state.step, vgg)
    optimizer.zero_grad(set_to_none=True)
    if math.isfinite(parts["total"]):
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        parts["grad_norm"] = float(nn.utils.clip_grad_norm_(state.trained.parameters(), config.grad_clip))
        scaler.step(optimizer)
        scaler.update()
    return parts


def _export(state: TrainState, train_data: TrainData, out: Path) -> None:
    """The trained weights, in fp16, with their provenance and validation score."""
    if state.val_psnr is None:
        dis = state.config.flow == "dis"
        state.val_psnr = validate(
            state.model, train_data.validation, state.device, given_flows=dis, splat=state.config.splat
        )
    provenance = f"{_provenance(state, train_data)}; validation PSNR {state.val_psnr:.2f} dB"
    save_model(state.model, out, half=True, provenance=provenance)
    state.config.log(f"exported {out} (validation PSNR {state.val_psnr:.2f} dB on {train_data.validation_source})")


def _train(config: TrainConfig, resume: bool, until: int | None, time_limit: float | None) -> TrainResult:
    state, ckpt_path = _open(config, resume)
    device = state.device
    vgg = load_vgg16(config.vgg).to(device) if config.vgg else None
    train_data = build_data(config)
    start_step = saved_step = state.step
    history: list[dict[str, float]] = []
    # Item i of the stream is a pure function of (seed, i): resuming at step s continues at item s·batch.
    loader = DataLoader(
        train_data.train,
        batch_size=config.batch,
        sampler=range(state.step * config.batch, config.steps * config.batch),
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    bar = tqdm(total=config.steps, initial=state.step, disable=not config.progress, desc="training", unit="step")
    smoothed: float | None = None
    clock = started = tick = time.monotonic()
    stop = config.steps if until is None else min(config.steps, until)
    for batch in loader:
        if state.step >= stop or (time_limit is not None and time.monotonic() - started > time_limit):
            break
        parts = _optimizer_step(state, {k: v.to(device, non_blocking=True) for k, v in batch.items()}, vgg)
        if math.isfinite(parts["total"]):
            smoothed = parts["total"] if smoothed is None else 0.95 * smoothed + 0.05 * parts["total"]
        state.step += 1
        parts["seconds"] = time.monotonic() - tick  # this step, loading its batch included
        history.append({"step": float(state.step), **parts})
        if state.step % config.val_every == 0 or state.step == config.steps:
            state.val_psnr = validate(
                state.model, train_data.validation, device, given_flows=config.flow == "dis", splat=config.splat
            )
        if state.step % config.checkpoint_every == 0 or state.step == stop:
            state.elapsed += time.monotonic() - clock
            clock = time.monotonic()
            if ckpt_path is not None:
                state.save(ckpt_path)
                saved_step = state.step
        bar.update(1)
        loss_text = "nan" if smoothed is None else f"{smoothed:.3g}"
        bar.set_postfix(loss=loss_text, val_psnr="-" if state.val_psnr is None else f"{state.val_psnr:.2f}")
        tick = time.monotonic()
    bar.close()
    state.elapsed += time.monotonic() - clock
    if state.step < config.steps:
        if ckpt_path is not None and state.step != saved_step:
            state.save(ckpt_path)  # a stop by time falls between checkpoints
        config.log(f"stopped at step {state.step} of {config.steps}; resume to continue")
        return TrainResult(start_step, state.step, state.val_psnr, state.elapsed, history, None)
    out = Path(config.out) if config.out else None
    if out is not None:
        _export(state, train_data, out)
    return TrainResult(start_step, state.step, state.val_psnr, state.elapsed, history, out)
