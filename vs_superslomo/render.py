"""``vs-superslomo render SCRIPT.vpy -o OUTPUT``: any VapourSynth script's output 0 to a file with ffmpeg,
in this process or in chunks on Ray workers (``--workers N``), written atomically and read back.

The script is evaluated as vspipe evaluates it (its own folder, ``-a NAME=VALUE`` as global strings). Its
output must be YUV or GRAY at a constant rate, as ``vspipe -c y4m`` needs. The file gets the script's
video only: scripts carry no audio here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .commandline import Parser, add_worker_arguments, run, worker_settings
from .distributed import Recipe, run_chunked
from .encode import encode_file
from .errors import JobError
from .job import CODECS, Job, Summary
from .transcode import check_paths, progress_bar

__all__ = ["main"]

_EPILOG = """examples:
  vs-superslomo render examples/double_rate.vpy -o double.mkv
  vs-superslomo render examples/slowmo_8x.vpy -o slow.mkv --codec ffv1 --workers 2
  vs-superslomo render film.vpy -o film.mp4 -a input=/data/film.mkv --workers 8 --ray-address 10.0.0.5:6379
"""


_PROG = "vs-superslomo render"


def _parser() -> Parser:
    p = Parser(
        prog=_PROG,
        description="Render a VapourSynth script's output 0 to a video file with ffmpeg.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("script", type=Path, help="the .vpy script (it ends with clip.set_output())")
    p.add_argument("-o", "--output", type=Path, required=True, help="the file to write (.mkv, .mp4, …)")
    p.add_argument(
        "-a", "--arg", action="append", default=[], metavar="NAME=VALUE", help="a global for the script, as vspipe -a"
    )
    p.add_argument("--crf", type=int, help="quality for x264/x265 (lower is better; default 18 / 20)")
    p.add_argument("--codec", choices=CODECS, default="x264", help="video encoder (ffv1 is lossless; default x264)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    add_worker_arguments(p)
    return p


def _render(recipe: Recipe) -> Summary:
    """The script's whole output in this process."""
    job = recipe.job
    check_paths(job)
    if job.ffmpeg is None:
        raise JobError("render encodes with ffmpeg, which is not installed: install it (e.g. apt-get install ffmpeg)")
    started = time.perf_counter()
    prepared = recipe.build(lambda s: print(s, file=sys.stderr))
    clip = prepared.clip
    update, close = progress_bar(job, clip.num_frames)
    try:
        encode_file(job, prepared, clip, job.output, update)
    finally:
        close()
    seconds = time.perf_counter() - started
    audio = "none (a script's video only)"
    return Summary(clip.num_frames, prepared.fps, clip.num_frames, prepared.fps, job.output, seconds, audio)


def main(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.crf is not None and not 0 <= args.crf <= 51:
        parser.error(f"bad --crf {args.crf}: x264/x265 take 0..51")
    pairs = [a.partition("=") for a in args.arg]
    if bad := [a for a, (name, eq, _) in zip(args.arg, pairs, strict=True) if not (name and eq)]:
        parser.error(f"bad -a {bad[0]!r}: give NAME=VALUE")
    settings = worker_settings(args, parser)
    job = Job(
        input=args.script,
        output=args.output,
        crf=args.crf,
        codec=args.codec,
        overwrite=args.overwrite,
        progress=args.progress,
        ffmpeg=shutil.which("ffmpeg"),
    )
    recipe = Recipe(job, script=True, args=tuple((name, value) for name, _, value in pairs))

    def render() -> None:
        summary = _render(recipe) if settings is None else run_chunked(recipe, settings)
        print(summary.line(str(args.script)))

    return run(_PROG, render)
