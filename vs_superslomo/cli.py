"""Command line: ``vs-superslomo INPUT -o OUTPUT ...`` / ``python -m vs_superslomo``.

The main command makes a video smoother or slower (see :mod:`vs_superslomo.transcode`); the
sub-commands ``convert`` and ``info`` handle weights files.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import stages
from .allocator import tuned_environment, untuned_environment
from .commandline import EXIT_FAILED, EXIT_INTERRUPTED, Parser, add_device, argument_type, device_index, run
from .errors import JobError

if TYPE_CHECKING:  # torch is imported only by the commands that need it
    from .weights import ModelInfo

__all__ = ["entry", "main"]

_MAIN_EPILOG = """examples:
  vs-superslomo clip.mp4 -o clip_50fps.mp4                 2x the frame rate (the default)
  vs-superslomo film.mkv -o film_5994.mkv --fps 60000/1001  any target rate, exactly (59.94 works too)
  vs-superslomo clip.mp4 -o slow.mp4 --factor 8 --slowmo    8x slow motion; audio dropped
  vs-superslomo clip.mp4 -o slow.mp4 --factor 4 --slowmo --audio stretch
  vs-superslomo clip.mp4 -o part.mkv --start 1:05 --end 1:10 --codec ffv1
  vs-superslomo anime.mkv -o smooth.mkv --factor 1 --dedup     on twos/threes: held frames become motion
  vs-superslomo film.mkv -o film_50.mkv --workers 4          in chunks on 4 Ray workers (see README)

Audio is copied unchanged when the frame rate changes; slow motion drops it unless --audio stretch.
Variable-frame-rate input (phone videos) needs --fps: every output frame is interpolated at its true time,
so the copied audio stays in sync; --factor, --slowmo and --start/--end refuse such input with one line.
Without ffmpeg on PATH a lossless .y4m is written instead, with the command that encodes it.

other commands:
  vs-superslomo convert IN.ckpt OUT.safetensors [--half]    convert weights to this project's format
  vs-superslomo info [WEIGHTS]                              show what a weights file holds
  vs-superslomo render SCRIPT.vpy -o OUT.mkv [--workers N]   a VapourSynth script's output to a file
  vs-superslomo bench [--size 448x256] [--factor 8] ...     speed and memory against the network alone
  vs-superslomo race [CLIP] [--size 1280x720]               whole-process time against minterpolate and FlowFPS
  vs-superslomo gpu-check                                   fp16, determinism and speed on a CUDA GPU
  vs-superslomo export WEIGHTS OUT.onnx --size WxH          the U-Nets as ONNX graphs (TensorRT, vs-mlrt)
  vs-superslomo train --photos DIR --clips DIR ...          train weights (see --help)
  vs-superslomo eval --model W --clips DIR --out DIR        frame-drop evaluation against blend and FlowFPS
"""

_WEIGHTS_EPILOG = """examples:
  vs-superslomo info                                   show the default weights
  vs-superslomo info SuperSloMo.ckpt                   show what a checkpoint holds
  vs-superslomo convert SuperSloMo.ckpt ssm.safetensors --half
  vs-superslomo convert thin.safetensors out.safetensors --flow-net other.safetensors   carry other's flow net
"""


_SUBCOMMANDS = ("convert", "info")
# Sub-commands with their own argument parsers, in their own modules (imported only when used).
_DELEGATED = {
    "bench": "vs_superslomo.bench",
    "eval": "vs_superslomo.evaluation.cli",
    "export": "vs_superslomo.export",
    "gpu-check": "vs_superslomo.gpucheck",
    "race": "vs_superslomo.race",
    "render": "vs_superslomo.render",
    "train": "vs_superslomo.training.cli",
}


def _main_parser() -> argparse.ArgumentParser:
    from .commandline import add_worker_arguments
    from .job import CODECS, parse_factor, parse_fps, parse_time
    from .options import add_arguments

    p = Parser(
        prog="vs-superslomo",
        description="Make a video smoother (more frames per second) or slower with Super SloMo.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", type=Path, help="the video file to read (anything bestsource/FFmpeg decodes)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the file to write (.mp4, .mkv, .mov, .y4m, …)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--factor", type=argument_type(parse_factor), help="frames per input frame: 2, 2.5 or 5/2 (default 2)"
    )
    rate.add_argument(
        "--fps",
        type=argument_type(parse_fps),
        help="target frame rate: 60, 60000/1001 or 59.94 (needed for variable-frame-rate input)",
    )
    p.add_argument("--slowmo", action="store_true", help="keep the input's frame rate: the video plays longer")
    p.add_argument(
        "--audio",
        choices=("drop", "stretch"),
        help="with --slowmo only: drop the audio (default) or slow it down to match (pitch kept)",
    )
    add_device(p)
    add_arguments(p)  # the filter's options (vs_superslomo.options), each with its help and check
    p.add_argument("--crf", type=int, help="quality for x264/x265 (lower is better; default 18 / 20)")
    p.add_argument("--codec", choices=CODECS, default="x264", help="video encoder (ffv1 is lossless; default x264)")
    p.add_argument("--start", type=argument_type(parse_time), help="first time to process: seconds or [HH:]MM:SS(.ms)")
    p.add_argument("--end", type=argument_type(parse_time), help="time to stop before: seconds or [HH:]MM:SS(.ms)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    p.add_argument(
        "--stages", action="store_true", help="after the run, print where the time went, per stage and thread"
    )
    add_worker_arguments(p)
    return p


def _weights_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vs-superslomo",
        description="Weights files for vs-superslomo.",
        epilog=_WEIGHTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    conv = sub.add_parser("convert", help="convert weights (e.g. the original SuperSloMo.ckpt) to .safetensors")
    conv.add_argument("input", help="a .ckpt in the original format, or a .safetensors file")
    conv.add_argument("output", help="the .safetensors file to write (written atomically)")
    conv.add_argument("--half", action="store_true", help="store fp16 tensors (half the size)")
    conv.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    conv.add_argument(
        "--flow-net", metavar="WEIGHTS", help="carry this file's flow network instead of INPUT's (for flow='net')"
    )
    info = sub.add_parser("info", help="show what a weights file holds (default: the bundled weights)")
    info.add_argument("model", nargs="?", help="weights file; omit for the default weights")
    return parser


def _widths(info: ModelInfo) -> str:
    """``0.25``, or ``0.125 (flow net 0.25)`` where the two networks differ."""
    return f"{info.width:g}" + ("" if info.flow_width is None else f" (flow net {info.flow_width:g})")


def _run_weights(args: argparse.Namespace) -> None:
    from .weights import convert, load_model

    if args.command == "convert":
        if Path(args.output).exists() and not args.overwrite:
            raise JobError(f"{args.output} exists; pass --overwrite to replace it")
        info = convert(args.input, args.output, half=args.half, flow_net=args.flow_net)
        print(f"wrote {args.output} (width {_widths(info)}, warp {info.warp})")
    else:
        model, info = load_model(args.model)
        params = sum(p.numel() for p in model.parameters())
        mean = ", ".join(f"{m:.3f}" for m in info.mean)
        print(f"width {_widths(info)}, warp {info.warp}, flow {info.flow}, mean ({mean}), {params:,} parameters")
        if info.provenance:
            print(f"provenance: {info.provenance}")


def _run_main(args: argparse.Namespace) -> None:
    from .job import Job
    from .options import from_arguments
    from .transcode import run_job

    if args.crf is not None and not 0 <= args.crf <= 51:
        raise JobError(f"bad --crf {args.crf}: x264/x265 take 0..51")
    job = Job(
        input=args.input,
        output=args.output,
        factor=args.factor,
        fps=args.fps,
        slowmo=args.slowmo,
        options=from_arguments(args),
        device_index=device_index(args.device),
        crf=args.crf,
        codec=args.codec,
        audio=args.audio or "drop",
        start=args.start,
        end=args.end,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    if args.chunked is not None:
        if args.stages:
            raise JobError("--stages times a single run in this process; leave out the --workers options with it")
        from .distributed import Recipe, run_chunked

        print(run_chunked(Recipe(job), args.chunked).line(str(args.input)))
        return
    with stages.collecting(since_start=True) if args.stages else contextlib.nullcontext() as times:
        summary = run_job(job)
    print(summary.line(str(args.input)))
    if times is not None:
        sys.stdout.flush()  # the summary first, then the table
        print(times.table(), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors are one line on stderr, never a traceback. From the command
    line (``argv`` None), first started again with glibc's allocator set for frames (:func:`_tuned`)."""
    try:
        if argv is None:
            _tuned()
        with _terminate_as_interrupt():
            return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # also while torch and VapourSynth load, before any file is touched
        print("vs-superslomo: interrupted; no output written (the partial file was removed)", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> NoReturn:
    """The program (``vs-superslomo``, ``python -m vs_superslomo``): :func:`main`, then the process ends at once
    (:func:`_leave`)."""
    _leave(main())


def _leave(status: int) -> NoReturn:
    """End the process with ``status`` once its work is done: the functions registered with :mod:`atexit` run (a
    temporary folder removed, Ray shut down) and stdout and stderr are flushed, but Python's teardown is skipped.
    Unloading torch's libraries alone takes 0.5 s, and 0.9 s after a job (measured), of a run that may take 4 s;
    it writes nothing anyone reads."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken pipe: nothing more can be said there
            stream.flush()
    os._exit(status)


def _tuned() -> None:
    """This process started again (exec: the same process id, files and arguments) with glibc's allocator set for
    frames (:func:`.allocator.tuned_environment`), where it is glibc's and not yet set; it cannot be set later.
    Once started again, the settings leave the environment its own children get."""
    if untuned_environment(os.environ):
        return
    environment = tuned_environment(os.environ)
    if environment is None or not sys.executable:  # an embedded interpreter has no program to start again
        return
    with contextlib.suppress(OSError):  # where it cannot, the run goes on as it is, only slower
        os.execve(sys.executable, [sys.executable, "-m", "vs_superslomo", *sys.argv[1:]], environment)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a job scheduler's stop) ends the run as Ctrl-C does: the partial file removed, one line.
    It is passed on as SIGINT, whose handling also survives VapourSynth's callbacks. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C waits until the block ends, then arrives as KeyboardInterrupt.

    Inside torch's native start-up code an interrupt is raised in C++ (pybind11) and aborts the process
    (exit -6, "terminate called"); blocked while the heavy modules load, it is delivered right after.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _main(argv: list[str]) -> int:
    if argv and argv[0] in _DELEGATED:
        import importlib

        try:
            with _interrupts_deferred():
                module = importlib.import_module(_DELEGATED[argv[0]])
        except ModuleNotFoundError as exc:
            print(
                f"vs-superslomo: error: {argv[0]} needs {exc.name}: pip install 'vs-superslomo[train]'",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return int(module.main(argv[1:]))
    with _interrupts_deferred():  # the parsers import torch and VapourSynth
        if argv and argv[0] in _SUBCOMMANDS:
            args, job = _weights_parser().parse_args(argv), _run_weights
        else:
            parser = _main_parser()
            args, job = parser.parse_args(argv), _run_main
            if args.audio is not None and not args.slowmo:
                parser.error(f"--audio {args.audio} needs --slowmo (without it the audio is copied unchanged)")
            from .commandline import worker_settings

            args.chunked = worker_settings(args, parser)
    return run("vs-superslomo", lambda: job(args))
