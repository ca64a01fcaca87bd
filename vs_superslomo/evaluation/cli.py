"""``vs-superslomo eval``: the frame-drop protocol (:mod:`~vs_superslomo.evaluation.protocol`) on a folder of
clips, every method of :mod:`~vs_superslomo.evaluation.methods`, results written by
:mod:`~vs_superslomo.evaluation.report`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import vapoursynth as vs

from ..commandline import Parser, add_device, device_index, run
from ..errors import JobError, WeightsError
from ..files import atomic_write
from ..flow import FLOW_SOURCES
from ..network import SuperSloMo
from ..source import open_video
from ..weights import load_model
from .methods import MINTERPOLATE, build_methods
from .protocol import Window, cartoon_windows, evaluate_cadence, evaluate_windows, parse_windows, resolve_clip
from .report import cadence_table, plot_held, write_outputs

__all__ = ["main"]

_DESCRIPTION = (
    "Frame-drop evaluation: drop frames from real clips, rebuild them with each method, score against the truth."
)
_PROG = "vs-superslomo eval"
_CLIPS_ENV = "VS_SUPERSLOMO_CLIPS"


def _named_model(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=PATH")
    return name, path


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog=_PROG, description=_DESCRIPTION)
    p.add_argument("--model", metavar="PATH", help="weights for the superslomo method (default: the default weights)")
    p.add_argument("--no-superslomo", action="store_true", help="skip the superslomo method (baselines only)")
    p.add_argument(
        "--extra",
        type=_named_model,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another model (repeatable)",
    )
    p.add_argument("--no-flowfps", action="store_true", help="skip mvtools FlowFPS")
    p.add_argument("--minterpolate", action="store_true", help=f"also ffmpeg minterpolate ({MINTERPOLATE})")
    p.add_argument(
        "--flow",
        nargs="+",
        choices=("auto", *FLOW_SOURCES),
        default=["auto"],
        help="flow sources to run each model with: its weights' own (auto: NAME) and the other (NAME+net or "
        "NAME+dis); default auto",
    )
    p.add_argument("--dis-flow", action="store_true", help="the same as --flow auto dis")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="also each model with the paper's estimate of the flows to t instead of splatting them (NAME+estimate)",
    )
    p.add_argument(
        "--fallback",
        type=float,
        nargs="+",
        default=[],
        metavar="F",
        help="also each model with the filter's fallback=F (0: off), one method per value (NAME+fallback=F)",
    )
    p.add_argument(
        "--scale",
        type=float,
        nargs="+",
        default=[],
        metavar="S",
        help="also each model with the filter's scale=S (the networks at S times the size), one method per value "
        "(NAME+scale=S)",
    )
    p.add_argument(
        "--held",
        action="store_true",
        help="also the held-frame protocol (NAME+held): the window on k's, noisy copies, factor 1 with dedup",
    )
    p.add_argument(
        "--cadence",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        action="append",
        default=[],
        metavar="H,H,...",
        help="also the held-frame protocol for this cadence (e.g. 2,2,3) on every window: cadence.md",
    )
    p.add_argument(
        "--held-picture",
        metavar="FILE@START",
        help="also held.png: frames of a clip with real held frames, before and after dedup, to judge by eye",
    )
    p.add_argument(
        "--cartoon",
        action="store_true",
        help="also the generated cartoon set (a large pan and a fast zoom with a turn over outlined shapes and "
        "text, line art panning by sub-pixel steps); alone, without --clips or --only, only it",
    )
    p.add_argument("--clips", type=Path, metavar="DIR", help=f"folder of clips (default: ${_CLIPS_ENV})")
    p.add_argument(
        "--only", metavar="NAMES", help="comma list: default window names (NAME or NAME@START) or FILE@START"
    )
    p.add_argument(
        "--k", type=int, nargs="+", default=[2, 4], help="keep every k-th frame (default 2 4; the 187 fps clip: 8)"
    )
    add_device(p)
    p.add_argument(
        "--out", type=Path, default=Path("eval-out"), metavar="DIR", help="folder for the results (default eval-out)"
    )
    return p


def _source(path: Path | vs.VideoNode) -> vs.VideoNode:
    return path if isinstance(path, vs.VideoNode) else open_video(path)


def _run(args: argparse.Namespace) -> str:
    device = device_index(args.device)
    clips = args.clips or (Path(os.environ[_CLIPS_ENV]) if os.environ.get(_CLIPS_ENV) else None)
    windows: list[tuple[Window, Path | vs.VideoNode]] = []
    if args.clips is not None or args.only or not args.cartoon:
        if clips is None:
            raise JobError(f"no clips folder: pass --clips DIR or set {_CLIPS_ENV} (or --cartoon alone)")
        windows += parse_windows(args.only, clips)
    if args.cartoon:
        windows += cartoon_windows()
    models: dict[str, SuperSloMo] = {}
    if not args.no_superslomo:
        try:
            models["superslomo"] = load_model(args.model)[0]
        except WeightsError as exc:
            raise JobError(f"{exc}; or pass --no-superslomo") from None
    for name, path in args.extra:
        if name in models:
            raise JobError(f"--extra {name}=...: the name is used twice; give each model its own")
        models[name] = load_model(path)[0]
    flows = [*args.flow, "dis"] if args.dis_flow else args.flow
    methods = build_methods(
        models,
        flowfps=not args.no_flowfps,
        minterpolate=args.minterpolate,
        device_index=device,
        flows=flows,
        held=args.held,
        unsplatted=args.estimate,
        fallbacks=args.fallback,
        scales=args.scale,
    )
    results, show = evaluate_windows(
        windows,
        args.k,
        methods,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        model=next(iter(models), None),
    )
    report = write_outputs(results, show, args.out)
    if args.cadence:
        if not models:
            raise JobError("--cadence needs a model; drop --no-superslomo")
        model = next(iter(models.values()))
        rows = [
            (window.name, pattern, evaluate_cadence(_source(path), window, pattern, model))
            for window, path in windows
            for pattern in args.cadence
        ]
        table = cadence_table(rows)
        atomic_write(args.out / "cadence.md", lambda tmp: tmp.write_text(table, encoding="utf-8"))
        report += "\n" + table
    if args.held_picture:
        file, _, start = args.held_picture.partition("@")
        path = None if clips is None else resolve_clip(clips, file)
        if path is None or not start.isdigit() or not models:
            raise JobError(f"--held-picture {args.held_picture!r}: give FILE@START of a clip in {clips} and a model")
        plot_held(open_video(path), int(start), next(iter(models.values())), args.out / "held.png")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``vs-superslomo eval``: run the protocol, write the results into --out and print the tables."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    # vs.Error: a filter that fails while rendering (mvtools, the model) is a failed run too.
    return run(_PROG, lambda: print(_run(args)), also=(vs.Error,))
