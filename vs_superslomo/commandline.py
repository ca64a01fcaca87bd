"""The vocabulary every command line speaks: one-line usage errors, ``--device``, the exit-status rule.

The main command, ``convert``/``info``, ``bench``, ``train`` and ``eval`` parse with :class:`Parser`, take
``--device`` from :func:`add_device` and :func:`device_index`, and run through :func:`run`: a command line
argparse refuses is one line and exit status 2 (:data:`EXIT_USAGE`); a job that fails (a
:class:`~vs_superslomo.errors.SuperSloMoError` or a file error) is one line and 1 (:data:`EXIT_FAILED`);
Ctrl-C is 130. Nothing heavy at import (torch only when CUDA is asked for), so the command line starts at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from .errors import JobError, SuperSloMoError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "RESOLUTIONS",
    "Parser",
    "add_device",
    "argument_type",
    "device_index",
    "parse_size",
    "run",
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
