"""A command-line job: what to read, how to interpolate, what to write, and the summary of what it did."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

import vapoursynth as vs

from .colour import ColourProps
from .errors import JobError
from .options import FilterOptions

__all__ = [
    "CODECS",
    "DEFAULT_CRF",
    "AudioMode",
    "Codec",
    "Job",
    "Prepared",
    "Span",
    "Summary",
    "fps_text",
    "parse_factor",
    "parse_fps",
    "parse_time",
]

Codec = Literal["x264", "x265", "ffv1"]
AudioMode = Literal["drop", "stretch"]
CODECS: tuple[Codec, ...] = get_args(Codec)
DEFAULT_CRF: dict[Codec, int] = {"x264": 18, "x265": 20, "ffv1": 0}


def _fraction(text: str, what: str, examples: str) -> Fraction:
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise JobError(f"bad {what} {text!r}: give {examples}") from None


def parse_factor(text: str) -> Fraction:
    """``2``, ``5/2`` or ``2.5`` as an exact fraction."""
    value = _fraction(text, "factor", "a number such as 2, 2.5 or 5/2")
    if value < 1:
        raise JobError(f"bad factor {text!r}: it must be at least 1 (interpolation adds frames)")
    return value


def parse_fps(text: str) -> Fraction:
    """``60000/1001``, ``60`` or a decimal; 23.976, 29.97, 59.94 and 119.88 mean the NTSC n·1000/1001."""
    value = _fraction(text, "frame rate", "e.g. 60, 60000/1001 or 59.94")
    if value <= 0:
        raise JobError(f"bad frame rate {text!r}: it must be positive")
    if "." in text and "/" not in text:
        ntsc = Fraction(round(value * Fraction(1001, 1000)) * 1000, 1001)
        if abs(ntsc - value) < Fraction(1, 100):
            return ntsc
    return value


def parse_time(text: str) -> Fraction:
    """Seconds (``12.5``) or ``[HH:]MM:SS[.frac]``."""
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or not all(parts):
            raise ValueError
        seconds = Fraction(0)
        for part in parts:
            seconds = seconds * 60 + Fraction(part)
    except (ValueError, ZeroDivisionError):
        raise JobError(f"bad time {text!r}: give seconds (12.5) or [HH:]MM:SS(.ms)") from None
    if seconds < 0:
        raise JobError(f"bad time {text!r}: it must not be negative")
    return seconds


@dataclass
class Job:
    """One run of the command line: what to read, how to interpolate, what to write."""

    input: Path
    output: Path
    factor: Fraction | None = None
    fps: Fraction | None = None
    slowmo: bool = False
    options: FilterOptions = field(default_factory=FilterOptions)  # the filter's, as the command line gave them
    device_index: int | None = None
    crf: int | None = None
    codec: Codec = "x264"
    audio: AudioMode = "drop"
    start: Fraction | None = None
    end: Fraction | None = None
    overwrite: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    ffmpeg: str | None = field(default_factory=lambda: shutil.which("ffmpeg"))


@dataclass(frozen=True)
class Summary:
    """What a job read and wrote."""

    input_frames: int
    input_fps: Fraction
    output_frames: int
    output_fps: Fraction
    output: Path
    seconds: float
    audio: str
    variable: bool = False  # the input's frame rate varies; input_fps is its average
    engine: str | None = None  # where the networks ran: "openvino on cpu, fp32"
    held_replaced: int | None = None  # held frames interpolated (with --dedup)
    cuts: int | None = None  # scene cuts kept (unless --no-sc)
    streams: str = ""  # what became of the input's subtitles, attachments, chapters, other streams

    def line(self, input_name: str) -> str:
        def dur(frames: int, fps: Fraction) -> str:
            return f"{float(frames / fps):.2f} s" if fps else "? s"

        rate = self.output_frames / self.seconds if self.seconds > 0 else 0.0
        in_rate = f"{fps_text(self.input_fps)} fps"
        if self.variable:
            in_rate = f"a variable rate (~{float(self.input_fps):.3f} fps on average)"
        done = [f"networks: {self.engine}"] if self.engine else []
        done += [] if self.held_replaced is None else [f"{self.held_replaced} held frames replaced"]
        done += [] if self.cuts is None else [f"{self.cuts} scene cuts kept"]
        return (
            f"{input_name}: {self.input_frames} frames at {in_rate} "
            f"({dur(self.input_frames, self.input_fps)}) -> {self.output}: {self.output_frames} frames at "
            f"{fps_text(self.output_fps)} fps ({dur(self.output_frames, self.output_fps)}); audio {self.audio}; "
            + (f"{self.streams}; " if self.streams else "")
            + "".join(f"{part}; " for part in done)
            + f"{self.seconds:.1f} s ({rate:.2f} frames/s)"
        )


def fps_text(fps: Fraction) -> str:
    return f"{fps.numerator}" if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator} (~{float(fps):.3f})"


@dataclass(frozen=True)
class Span:
    """The part of the input that is processed: first frame, frame count, rate, and the factor."""

    first: int
    frames: int
    fps: Fraction
    factor: Fraction
    seconds: Fraction  # the output video's duration


@dataclass(frozen=True)
class Prepared:
    """A job's filter graph and what encoding it needs; the workers of a chunked run each build the same."""

    source: vs.VideoNode  # the processed part of the input, as decoded
    first: int  # its first frame's index in the input
    in_fps: Fraction  # its frame rate (the average when it varies)
    factor: Fraction
    timestamps: list[Fraction] | None  # each source frame's start time when the rate varies, else None
    colour: ColourProps
    clip: vs.VideoNode  # the output, in the source's format
    damaged: bool = False  # the input holds less than its container says: its streams' stated lengths are wrong

    @property
    def fps(self) -> Fraction:
        return Fraction(self.clip.fps_num, self.clip.fps_den)

    @property
    def span(self) -> Span:
        return Span(self.first, self.source.num_frames, self.in_fps, self.factor, self.clip.num_frames / self.fps)
