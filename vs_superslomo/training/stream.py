"""What a run trains and validates on: real windows and synthetic scenes mixed into one stream, and a fixed
validation set; held-out clips only ever reach the validation set.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.utils.data import Dataset

from ..errors import JobError
from .config import TrainConfig
from .samples import STREAM_MIX, Augment, sample_rng
from .synthetic import LinearRamp, SyntheticDataset, load_photos
from .windows import RealWindowDataset, load_clips, split_clips, validation_set

__all__ = ["MixedDataset", "TrainData", "build_data"]

# Validation samples come from their own seed, so every training seed is scored on the same set.
_VALIDATION_SEED = 2**31 - 1


class MixedDataset(Dataset[dict[str, Tensor]]):
    """Item ``index`` comes from ``synthetic`` with probability ``synthetic_fraction``, else from ``real``."""

    def __init__(
        self,
        synthetic: Dataset[dict[str, Tensor]] | None,
        real: Dataset[dict[str, Tensor]] | None,
        synthetic_fraction: float,
        *,
        seed: int = 0,
        length: int = 1_000_000,
    ) -> None:
        if not 0 <= synthetic_fraction <= 1:
            raise JobError(f"synthetic_fraction must be in [0, 1], got {synthetic_fraction}")
        if (synthetic is None and synthetic_fraction > 0) or (real is None and synthetic_fraction < 1):
            raise JobError(
                f"synthetic_fraction {synthetic_fraction} needs both sources; give photos and clips, or use 0 / 1"
            )
        self.synthetic, self.real = synthetic, real
        self.fraction, self.seed, self.length = synthetic_fraction, seed, length

    def __len__(self) -> int:
        return self.length

    def is_synthetic(self, index: int) -> bool:
        return bool(sample_rng(self.seed, index, STREAM_MIX).random() < self.fraction)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        source = self.synthetic if self.is_synthetic(index) else self.real
        assert source is not None
        return source[index]


@dataclass
class TrainData:
    """The training stream, the fixed validation samples, and what they are made of (for provenance)."""

    train: Dataset[dict[str, Tensor]]
    validation: list[dict[str, Tensor]]
    description: str
    validation_source: str


def build_data(config: TrainConfig) -> TrainData:
    """Load photos and clips as the config says; held-out clips only ever reach the validation set."""
    photos = load_photos(config.photos) if config.photos else []
    train_paths, held_paths = split_clips(config.clips, config.holdout) if config.clips else ([], [])
    if config.clips and not train_paths:
        raise JobError(f"every clip in {config.clips} is held out: hold out fewer (--holdout) or add clips")
    fraction = config.synthetic_fraction if photos and train_paths else float(bool(photos))
    dis = config.flow == "dis"
    length = config.steps * config.batch
    synthetic = real = None
    parts = []
    if photos and fraction > 0:
        ramp = LinearRamp(config.max_motion_start, config.max_motion, config.motion_ramp_steps() * config.batch)
        synthetic = SyntheticDataset(
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
        config.log(f"loading {len(train_paths)} training clips from {config.clips}")
        clips = load_clips(train_paths, config.max_width, config.max_frames)
        real = RealWindowDataset(
            clips,
            config.crop,
            windows=config.windows,
            seed=config.seed,
            length=length,
            pseudo_flow=config.pseudo_flow or dis,  # DIS flows on the whole frames, before cropping
            quadratic=config.motion == "quadratic",
        )
        labels = ", DIS flows" if dis else ", DIS pseudo-flow" if config.pseudo_flow else ""
        labels += " and accelerations" if config.motion == "quadratic" else ""
        names = ", ".join(c.name for c in clips)
        parts.append(
            f"real windows of {'/'.join(map(str, config.windows))} frames{labels} from {len(clips)} clips "
            f"in {config.clips} at <= {config.max_width} px wide ({names})"
        )
    mixed = MixedDataset(synthetic, real, fraction, seed=config.seed, length=length)
    val_crop = config.val_crop or config.crop
    if held_paths:
        held = load_clips(held_paths, config.max_width, config.max_frames)
        validation = validation_set(held, val_crop, config.val_count, dis_flows=dis)
        source = f"held-out clips: {', '.join(c.name for c in held)}"
    elif photos:
        val_data = SyntheticDataset(
            photos,
            val_crop,
            max_motion=config.max_motion,
            seed=_VALIDATION_SEED,
            augmentation=Augment.none(),
            dis_flows=dis,
        )
        validation = [val_data[i] for i in range(config.val_count)]
        source = "synthetic validation scenes (no clips held out)"
    else:
        raise JobError("nothing to validate on: hold out at least one clip (--holdout) or give photos")
    return TrainData(mixed, validation, "; ".join(parts), source)
