"""Command line: ``vs-superslomo`` / ``python -m vs_superslomo``.

Sub-commands so far: ``convert`` (any weights file to this project's safetensors) and ``info`` (what a
weights file holds). The file-to-file interpolation command arrives with the CLI issue.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

_EPILOG = """examples:
  vs-superslomo info                                   show the default weights
  vs-superslomo info SuperSloMo.ckpt                   show what a checkpoint holds
  vs-superslomo convert SuperSloMo.ckpt ssm.safetensors --half
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vs-superslomo",
        description="Super SloMo frame interpolation for VapourSynth.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    conv = sub.add_parser("convert", help="convert weights (e.g. the original SuperSloMo.ckpt) to .safetensors")
    conv.add_argument("input", help="a .ckpt in the original format, or a .safetensors file")
    conv.add_argument("output", help="the .safetensors file to write (written atomically)")
    conv.add_argument("--half", action="store_true", help="store fp16 tensors (half the size)")
    conv.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    info = sub.add_parser("info", help="show what a weights file holds (default: the bundled weights)")
    info.add_argument("model", nargs="?", help="weights file; omit for the default weights")
    return parser


def _run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .weights import convert, load_model

    if args.command == "convert":
        if Path(args.output).exists() and not args.overwrite:
            raise ValueError(f"{args.output} exists; pass --overwrite to replace it")
        info = convert(args.input, args.output, half=args.half)
        print(f"wrote {args.output} (width {info.width:g}, warp {info.warp})")
    elif args.command == "info":
        model, info = load_model(args.model)
        params = sum(p.numel() for p in model.parameters())
        print(f"width {info.width:g}, warp {info.warp}, mean {info.mean}, {params:,} parameters")
        if info.provenance:
            print(f"provenance: {info.provenance}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors are one line on stderr, never a traceback."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (OSError, ValueError) as exc:
        print(f"vs-superslomo: error: {exc}", file=sys.stderr)
        return 1
    return 0
