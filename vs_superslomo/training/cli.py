"""``vs-superslomo train``: the command line of a training run."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import vapoursynth as vs

from ..commandline import Parser, add_device, device_index, run
from ..flow import FLOW_SOURCES
from ..warp import WARPS
from .config import TRAIN_MOTIONS, TrainConfig
from .loop import train

__all__ = ["main"]

_PROG = "vs-superslomo train"
_EPILOG = """examples:
  vs-superslomo train --photos PHOTOS --clips CLIPS --out trained.safetensors   (folders of stills and videos)
  vs-superslomo train ... --steps 20000 --device cuda --workers 8 --batch 16 --crop 256 --max-motion 64
  vs-superslomo train ... --time-limit 9    stop after 9 minutes with a checkpoint ...
  vs-superslomo train ... --resume          ... and continue from it (OUT with .train.pt) exactly
"""


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = Parser(
        prog=_PROG,
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
    p.add_argument(
        "--motion",
        choices=TRAIN_MOTIONS,
        default=d.motion,
        help="--flow dis: quadratic gives real windows the accelerations the filter's motion='auto' uses "
        "(default linear: the paper's motion)",
    )
    p.add_argument(
        "--splat",
        action="store_true",
        help="train with the flows to t splatted along each frame's motion, as the filter's splat=True gives them "
        "(default: the paper's estimate)",
    )
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    p.add_argument("--crop", type=int, default=d.crop, help=f"crop size, a multiple of 32 (default {d.crop})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--schedule", choices=("cosine", "step", "constant"), default=d.schedule)
    p.add_argument("--warmup", type=int, default=d.warmup, help=f"warm-up steps (default {d.warmup})")
    p.add_argument("--l1-weight", type=float, default=d.l1_weight, help=f"L1 of the output (default {d.l1_weight:g})")
    p.add_argument("--mse-weight", type=float, default=d.mse_weight, help="squared error of the output (default 0)")
    p.add_argument("--warp-weight", type=float, default=d.warp_weight, help=f"warp loss (default {d.warp_weight:g})")
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
    add_device(p, default=d.device)
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is much faster on a busy CPU)")
    p.add_argument("--vgg", help="VGG16 state dict (torchvision keys) for the perceptual loss")
    p.add_argument("--init", help="weights to fine-tune (same width and warp) instead of random weights")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    """``vs-superslomo train ...``: the exit status (:func:`~vs_superslomo.commandline.run`)."""
    args = _parser().parse_args(argv)
    return run(_PROG, lambda: _run(args), also=(vs.Error,))


def _run(args: argparse.Namespace) -> None:
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
    index = device_index(args.device)
    values["device"] = "cpu" if index is None or index < 0 else f"cuda:{index}"
    config = TrainConfig(**values)
    time_limit = None if args.time_limit is None else 60 * args.time_limit
    result = train(config, resume=args.resume, until=args.until, time_limit=time_limit)
    psnr_text = f"{result.val_psnr:.2f} dB" if result.val_psnr is not None else "n/a"
    done = f"wrote {result.out}" if result.out else f"checkpoint {config.checkpoint}; --resume to continue"
    print(f"step {result.step} of {config.steps} ({result.elapsed / 60:.1f} min); validation PSNR {psnr_text}; {done}")
