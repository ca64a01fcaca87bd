"""A training run's state from step to step: the model, its optimizer and loss scaler, the step, the time
spent, the last validation score and where the weights came from; saved to a checkpoint and restored from one.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import JobError
from ..files import atomic_write
from ..network import SuperSloMo
from ..weights import WeightsError, load_model
from .config import TrainConfig

__all__ = ["TrainState", "load_checkpoint"]


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint, read safely (tensors and plain data only)."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JobError(f"checkpoint {path} cannot be read ({exc}); remove it to start afresh") from exc
    return state


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    # Tuples become lists so that the checkpoint holds only plain types.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def _start_from(model: SuperSloMo, path: str) -> str:
    """Load the weights in ``path`` (same width and warp as the run) into ``model``; their provenance."""
    try:
        start, info = load_model(path)
    except WeightsError as exc:
        raise JobError(f"--init: {exc}") from exc
    if (info.width, info.warp) != (model.width, model.warp):
        raise JobError(
            f"--init {path} is width {info.width:g}, warp {info.warp}; this run is width {model.width:g}, warp "
            f"{model.warp}: pass --width {info.width:g} --warp {info.warp}, or start from random weights"
        )
    model.load_state_dict(start.state_dict())
    model.mean.copy_(start.mean)  # not in the state dict; the file's own mean goes with its weights
    return info.provenance or "no provenance recorded"


def _take_flow_net(model: SuperSloMo, path: str, init_provenance: str | None) -> str:
    """Put the flow network of ``path`` (same width and warp) into ``model``; the provenance to keep."""
    donor = SuperSloMo(model.width, model.warp)
    provenance = _start_from(donor, path)
    model.flow.load_state_dict(donor.flow.state_dict())
    taken = f"flow network (not trained here, for flow='net') from {Path(path).name} [{provenance}]"
    return f"{init_provenance}; {taken}" if init_provenance else taken


@dataclass
class TrainState:
    """What a run carries from one step to the next, and what its checkpoint holds.

    ``trained`` is the part of ``model`` the optimizer updates. ``init_provenance`` (the provenance of the
    weights a run starts from) is read once, at the start, and kept in checkpoints: the export never needs
    the ``--init`` file again.
    """

    config: TrainConfig
    device: torch.device
    model: SuperSloMo
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    step: int = 0
    elapsed: float = 0.0  # seconds of training, over all resumed sessions
    val_psnr: float | None = None
    init_provenance: str | None = None

    @classmethod
    def new(cls, config: TrainConfig, device: torch.device, *, fresh: bool = True) -> TrainState:
        """Seeded random weights, their optimizer and scaler; when ``fresh`` also the weights of ``config.init``
        and the flow network of ``config.flow_net``. A run to resume builds with ``fresh=False``, then
        :meth:`restore`s (its checkpoint holds the fine-tuned weights)."""
        torch.manual_seed(config.seed)
        model = SuperSloMo(width=config.width, warp=config.warp, flow_source=config.flow).to(device).train()
        dis = config.flow == "dis"
        if dis and not config.init:
            # Zero output layer: the run starts as plain DIS warping with equal visibility (no flow residuals,
            # sigmoid(0) = 1/2), a sound interpolator, instead of random residuals it must first unlearn.
            output = model.interp.conv3
            nn.init.zeros_(output.weight)
            if output.bias is not None:  # it always has one; the check is for the type checker
                nn.init.zeros_(output.bias)
        trained = model.interp if dis else model  # with DIS flows the flow net is not used, so not trained
        optimizer = torch.optim.Adam(trained.parameters(), lr=config.lr)
        scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
        state = cls(config, device, model, trained, optimizer, scaler)
        if fresh and config.init:
            state.init_provenance = _start_from(model, config.init)
        if fresh and config.flow_net:
            state.init_provenance = _take_flow_net(model, config.flow_net, state.init_provenance)
        return state

    def save(self, path: Path) -> None:
        """Write the checkpoint (atomically): weights, optimizer, scaler, counters, random state and settings."""
        cuda = self.device.type == "cuda"
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "val_psnr": self.val_psnr,
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else []},
            "config": _config_dict(self.config),
            "init_provenance": self.init_provenance,
            "mean": self.model.mean.flatten().tolist(),
        }
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``, which must hold a network of this run's width, warp and flow."""
        config, model = self.config, self.model
        state = load_checkpoint(path)
        saved = state["config"]
        saved_flow = saved.get("flow", "net")  # checkpoints from before --flow trained both nets
        if (saved["width"], saved["warp"], saved_flow) != (config.width, config.warp, config.flow):
            raise JobError(
                f"checkpoint {path} is width {saved['width']}, warp {saved['warp']}, flow {saved_flow}; "
                f"this run asks for width {config.width}, warp {config.warp}, flow {config.flow}: use the same, or "
                "another checkpoint path"
            )
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty when saved by a disabled (CPU) scaler
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.elapsed, self.val_psnr = state["step"], state["elapsed"], state["val_psnr"]
        # The mean is not in the state dict: without this a resumed fine-tune went back to the default mean.
        self.init_provenance = state.get("init_provenance")
        if config.init and self.init_provenance is None:  # a checkpoint written before it kept these two
            start = SuperSloMo(config.width, config.warp)
            self.init_provenance = _start_from(start, config.init)
            model.mean.copy_(start.mean)
        if "mean" in state:
            model.mean.copy_(torch.tensor(state["mean"]).view_as(model.mean))
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
