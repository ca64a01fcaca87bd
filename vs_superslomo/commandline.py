"""The vocabulary every command line speaks: one-line usage errors, ``--device``, the exit-status rule.

The main command, ``convert``/``info``, ``bench``, ``train`` and ``eval`` parse with :class:`Parser`, take
``--device`` from :func:`add_device` and :func:`device_index`, and run through :func:`run`: a command line
argparse refuses is one line and exit status 2 (:data:`EXIT_USAGE`); a job that fails (a
:class:`~vs_superslomo.errors.SuperSloMoError` or a file error) is one line and 1 (:data:`EXIT_FAILED`);
Ctrl-C is 130. Nothing heavy at import (torch only when CUDA is asked for), so the command line starts at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from .errors import JobError, SuperSloMoError

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_RETRIES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "INSTALL_HINT",
    "RESOLUTIONS",
    "Parser",
    "WorkerSettings",
    "add_device",
    "add_worker_arguments",
    "argument_type",
    "device_index",
    "parse_size",
    "run",
    "worker_settings",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, pointing at --help instead of printing the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def argument_type[T](parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse ``type``: argparse prints an ArgumentTypeError's own text, and our parsers'
    JobError messages say what to type."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except JobError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def add_device(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """The ``--device`` option: ``cpu``, ``cuda`` or a CUDA device index (also ``cuda:N``); see :func:`device_index`."""
    when = f"default {default}" if default else "default: GPU 0 when CUDA is there, else cpu"
    parser.add_argument("--device", default=default, help=f"cpu, cuda or a CUDA device index such as 1 ({when})")


def device_index(text: str | None) -> int | None:
    """``--device`` as the filter's ``device_index``: None (GPU 0 when CUDA is there, else the CPU) when not
    given, -1 for ``cpu``, N for ``cuda:N`` or ``N`` (0 for ``cuda``). A JobError names the fix for anything
    else, and for a GPU when CUDA is not there."""
    if text is None:
        return None
    if text == "cpu":
        return -1
    value = "0" if text == "cuda" else text.removeprefix("cuda:")
    if not value.isdigit():
        raise JobError(f"bad --device {value!r}: give cpu, cuda, cuda:N or N")
    import torch  # only now: the command line starts without it

    if not torch.cuda.is_available():
        raise JobError(f"--device {text}: CUDA is not available here; use --device cpu")
    return int(value)


def run(prog: str, job: Callable[[], object], *, also: tuple[type[Exception], ...] = ()) -> int:
    """Run ``job``: :data:`EXIT_OK`, or :data:`EXIT_FAILED` with one line ``PROG: error: ...`` on stderr for a
    SuperSloMoError, a file error or one of ``also`` (never a traceback)."""
    failures: tuple[type[Exception], ...] = (SuperSloMoError, OSError, *also)
    try:
        job()
    except failures as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# Frame sizes by name, for --size.
RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (both at least 1) or a name of :data:`RESOLUTIONS`, for argparse."""
    if text in RESOLUTIONS:
        return RESOLUTIONS[text]
    try:
        w, h = (int(x) for x in text.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: give WxH or one of {', '.join(RESOLUTIONS)}") from None
    return w, h


# Chunked runs on Ray workers (vs_superslomo.distributed): the flags the main command and render share.
INSTALL_HINT = "pip install 'vs-superslomo[ray]'"
DEFAULT_CHUNK_SECONDS = 10.0
DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class WorkerSettings:
    """How a job is spread: ``workers`` tasks at a time (None on a cluster: as many as its resources run)."""

    workers: int | None = None
    address: str | None = None
    threads: int | None = None  # CPU threads per worker (torch and VapourSynth); None: this machine's share
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    resume: bool = False
    retries: int = DEFAULT_RETRIES


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of chunked runs, shared by the main command and ``render``."""
    group = parser.add_argument_group(f"chunked runs on Ray workers (needs {INSTALL_HINT})")
    group.add_argument("--workers", type=_positive_int, metavar="N", help="render in chunks on N workers")
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (host:6379 from `ray start --head`; default $RAY_ADDRESS with --workers) "
        "with one worker per GPU there, or per --threads-per-worker CPUs",
    )
    group.add_argument(
        "--threads-per-worker",
        type=_positive_int,
        metavar="T",
        help="CPU threads of each worker (default: this machine's cores / N; on a cluster 1)",
    )
    group.add_argument(
        "--chunk-seconds",
        type=float,
        default=DEFAULT_CHUNK_SECONDS,
        metavar="S",
        help=f"output seconds per chunk where no scene cut is near (default {DEFAULT_CHUNK_SECONDS:g}; "
        "short jobs get two chunks per worker)",
    )
    group.add_argument("--resume", action="store_true", help="keep the finished chunks of an interrupted run")
    group.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="R",
        help=f"times a chunk is retried when its worker dies (default {DEFAULT_RETRIES})",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1, got {text!r}")
    return value


def worker_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> WorkerSettings | None:
    """The parsed options as settings, or None for a run in this process (usage errors exit 2)."""
    if args.workers is None and args.ray_address is None:
        given = [
            name
            for name, value in (
                ("--threads-per-worker", args.threads_per_worker),
                ("--resume", args.resume or None),
                ("--chunk-seconds", None if args.chunk_seconds == DEFAULT_CHUNK_SECONDS else args.chunk_seconds),
                ("--retries", None if args.retries == DEFAULT_RETRIES else args.retries),
            )
            if value is not None
        ]
        if given:
            parser.error(f"{given[0]} is for chunked runs: give --workers N (or --ray-address ADDR) too")
        return None
    if not 0 < args.chunk_seconds < math.inf:  # NaN and inf too: chunks of no or endless length
        parser.error(f"--chunk-seconds must be a positive number of seconds, got {args.chunk_seconds:g}")
    if args.retries < 0:
        parser.error(f"--retries must be 0 or more, got {args.retries}")
    address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
    return WorkerSettings(args.workers, address, args.threads_per_worker, args.chunk_seconds, args.resume, args.retries)
