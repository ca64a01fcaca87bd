"""File to file: decode with bestsource, convert to RGB, run ``superslomo``, convert back, encode.

The video is streamed as y4m from VapourSynth into ffmpeg, which also takes the audio from the input
file: copied unchanged in frame-rate mode (the duration does not change), dropped or stretched in slow
motion. Without ffmpeg the job writes a lossless y4m the project produces by itself. The result is
written under a temporary name in the output's folder and renamed only when complete and read back
(ffmpeg's error output, ffprobe's frame count and duration), so the output name never holds a
half-written file, whatever happens (errors, a full disk, Ctrl-C).

Variable-frame-rate input (bestsource's index gives every frame's timestamp) needs ``--fps``: each output
frame is then interpolated at its true time, so the copied audio stays in sync; a constant-rate input
takes exactly the path it always took.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import IO, Literal

import vapoursynth as vs

from .colour import ColourProps, from_rgb, source_colour, to_rgb
from .errors import JobError
from .files import atomic_write, user_cache_dir
from .options import FilterOptions
from .plugin import FilterError, superslomo
from .source import open_video
from .streams import MP4_LIKE, StreamPlan, atempo_chain, ff_path, plan_streams, probe_streams, seconds_of
from .tally import Tally, engine_text
from .timing import fits_rate
from .workfolder import remove_abandoned, work_folder

__all__ = [
    "MP4_LIKE",
    "RENDER_VS_CACHE_MB",
    "Job",
    "JobError",
    "Prepared",
    "Summary",
    "atempo_chain",
    "check_encoded",
    "check_paths",
    "encode_file",
    "ffprobe_beside",
    "parse_factor",
    "parse_fps",
    "parse_time",
    "prepare",
    "progress_bar",
    "render_cache_mb",
    "run_job",
]

Codec = Literal["x264", "x265", "ffv1"]
AudioMode = Literal["drop", "stretch"]
CODECS: tuple[Codec, ...] = ("x264", "x265", "ffv1")
DEFAULT_CRF: dict[Codec, int] = {"x264": 18, "x265": 20, "ffv1": 0}
_ENCODERS: dict[Codec, list[str]] = {
    "x264": ["-c:v", "libx264", "-preset", "medium"],
    "x265": ["-c:v", "libx265", "-preset", "medium", "-x265-params", "log-level=error"],
    "ffv1": ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1"],
}
_LOSSLESS_CONTAINERS = {".mkv", ".avi", ".nut"}


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
        in_rate = f"{_fps_text(self.input_fps)} fps"
        if self.variable:
            in_rate = f"a variable rate (~{float(self.input_fps):.3f} fps on average)"
        done = [f"networks: {self.engine}"] if self.engine else []
        done += [] if self.held_replaced is None else [f"{self.held_replaced} held frames replaced"]
        done += [] if self.cuts is None else [f"{self.cuts} scene cuts kept"]
        return (
            f"{input_name}: {self.input_frames} frames at {in_rate} "
            f"({dur(self.input_frames, self.input_fps)}) -> {self.output}: {self.output_frames} frames at "
            f"{_fps_text(self.output_fps)} fps ({dur(self.output_frames, self.output_fps)}); audio {self.audio}; "
            + (f"{self.streams}; " if self.streams else "")
            + "".join(f"{part}; " for part in done)
            + f"{self.seconds:.1f} s ({rate:.2f} frames/s)"
        )


def _fps_text(fps: Fraction) -> str:
    return f"{fps.numerator}" if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator} (~{float(fps):.3f})"


def _index_dir() -> Path:
    """bestsource's index cache: the user's cache folder, never beside the input or in ~/bsindex."""
    return user_cache_dir() / "bsindex"


def _open(job: Job) -> tuple[vs.VideoNode, list[Fraction] | None]:
    """The input's video, and each frame's start time in seconds from bestsource's index (None when a frame
    has none, e.g. a raw stream: then the stated rate is all there is)."""
    with tempfile.TemporaryDirectory(prefix="vs-superslomo-") as folder:
        timecodes = Path(folder) / "timecodes.txt"
        try:
            clip = open_video(job.input, index_dir=_index_dir(), timecodes=str(timecodes))
        except JobError:
            pass  # bestsource refuses timecodes when a frame's timestamp is unknown; opened below without
        else:
            # Timecode format v2: a "#" header line, then one start time per frame in milliseconds.
            lines = [line for line in timecodes.read_text().split("\n") if line.strip() and line[0] != "#"]
            return clip, [Fraction(line) / 1000 for line in lines] if len(lines) == clip.num_frames else None
    return open_video(job.input, index_dir=_index_dir()), None


# A constant-rate file's timestamps may be rounded by its container (to whole milliseconds in Matroska).
_CFR_TOLERANCE = Fraction(1, 1000)


def _variable_timestamps(job: Job, clip: vs.VideoNode, starts: list[Fraction] | None) -> list[Fraction] | None:
    """``starts`` when the input's frame rate varies and the job can keep its timing, None when it is
    constant (today's path, unchanged); a JobError for options that would mistime variable-rate input."""
    if starts is None or len(starts) < 2 or fits_rate(starts, Fraction(clip.fps_num, clip.fps_den), _CFR_TOLERANCE):
        return None
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    what = (
        f"{job.input.name} has a variable frame rate (frames {float(min(gaps)) * 1000:.4g} to "
        f"{float(max(gaps)) * 1000:.4g} ms apart)"
    )
    if job.fps is None:
        suggestion = max(1, round((job.factor or 2) / min(gaps)))
        raise JobError(
            f"{what}; give --fps R for constant-rate output with every frame at its true time "
            f"(e.g. --fps {suggestion}), as a factor of its frames would mistime it"
        )
    if job.slowmo:
        raise JobError(f"{what}; --slowmo needs a constant rate: convert it with --fps R first, then slow that down")
    if job.start is not None or job.end is not None:
        raise JobError(f"{what}; --start/--end need a constant rate: convert it with --fps R first, then cut that")
    # ffmpeg moves the file's start (its earliest stream's) to 0 in the output, audio included: the video's
    # times count from there, so a video that starts after its audio keeps that lead.
    zero = _start_time(ffprobe_beside(job.ffmpeg), job.input) if job.ffmpeg is not None else None
    return [start - (starts[0] if zero is None else zero) for start in starts]


def _start_time(ffprobe: str, path: Path) -> Fraction | None:
    """The container's start time in seconds (that of its earliest stream), by ffprobe; None if unknown."""
    cmd = [ffprobe, "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", ff_path(path)]
    try:
        return Fraction(subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip())
    except (OSError, subprocess.TimeoutExpired, ValueError, ZeroDivisionError):
        return None


def _trim(clip: vs.VideoNode, start: Fraction | None, end: Fraction | None) -> tuple[vs.VideoNode, int]:
    """Frames whose timestamps lie in [start, end), and the index of the first one."""
    if start is None and end is None:
        return clip, 0
    fps = Fraction(clip.fps_num, clip.fps_den)
    if fps <= 0:
        raise JobError("--start/--end need a clip with a constant frame rate")
    first = math.ceil((start or 0) * fps)
    stop = clip.num_frames if end is None else min(clip.num_frames, math.ceil(end * fps))
    if first >= stop:
        raise JobError(f"--start/--end select no frames (the input has {clip.num_frames} at {_fps_text(fps)} fps)")
    return clip[first:stop], first


def ffprobe_beside(ffmpeg: str) -> str:
    """The ffprobe of the same installation: beside ``ffmpeg`` when that is a path, else from PATH."""
    return str(Path(ffmpeg).with_name("ffprobe")) if os.sep in ffmpeg else "ffprobe"


def _colour_args(colour: ColourProps) -> list[str]:
    # ffmpeg's colour options take the same H.273 codes, but its range is 1 = limited, 2 = full.
    return [
        "-colorspace",
        str(colour.matrix),
        "-color_primaries",
        str(colour.primaries),
        "-color_trc",
        str(colour.transfer),
        "-color_range",
        "2" if colour.range == 1 else "1",
    ]


@dataclass(frozen=True)
class _Span:
    """The part of the input that is processed: first frame, frame count, rate, and the factor."""

    first: int
    frames: int
    fps: Fraction
    factor: Fraction
    seconds: Fraction  # the output video's duration


def _ffmpeg_command(
    job: Job, tmp: Path, colour: ColourProps, plan: StreamPlan | None, span: _Span, video: list[str] | None = None
) -> list[str]:
    """The ffmpeg command line that reads y4m on stdin, with the streams of ``job.input`` that ``plan`` keeps
    (None: the video alone). ``video``: input options of video already encoded with the job's codec (e.g. a
    concat list of segments), copied instead."""
    assert job.ffmpeg is not None
    video_input = ["-f", "yuv4mpegpipe", "-i", "pipe:0"] if video is None else video
    cmd = [job.ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *video_input]
    streams: list[str] = []
    if plan is not None:
        if span.first or job.end is not None:
            cmd += ["-ss", f"{float(span.first / span.fps):.6f}", "-t", f"{float(span.frames / span.fps):.6f}"]
        cmd += ["-i", ff_path(job.input)]
        streams = plan.args  # after the video's -map: they number the output's streams from 1
    codec = list(_ENCODERS[job.codec]) if video is None else ["-c:v", "copy"]
    if job.codec != "ffv1" and video is None:
        codec += ["-crf", str(job.crf if job.crf is not None else DEFAULT_CRF[job.codec])]
    if job.codec == "x265" and job.output.suffix.lower() in MP4_LIKE:
        codec += ["-tag:v", "hvc1"]  # plays in more players than the default hev1
    return [*cmd, "-map", "0:v:0", *streams, *codec, *_colour_args(colour), ff_path(tmp)]


def _plan(job: Job, span: _Span, output: Path) -> StreamPlan:
    """What becomes of ``job.input``'s other streams in ``output``."""
    streams, chapters = probe_streams(ffprobe_beside(job.ffmpeg or "ffmpeg"), job.input)
    trimmed = span.first or job.end is not None
    trim = (float(span.first / span.fps), float(span.frames / span.fps)) if trimmed else None
    slowmo = span.factor if job.slowmo else None
    stretch = job.audio == "stretch"
    return plan_streams(
        streams, chapters, output.suffix, slowmo=slowmo, stretch=stretch, trim=trim, video_seconds=float(span.seconds)
    )


def _render_error(exc: vs.Error) -> JobError:
    """A frame that failed to render: VapourSynth's text is a Python traceback; keep its last exception."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line[:1].isspace()]  # the traceback's "  File ..." part
    message = " ".join(line.strip() for line in lines[frames[-1] + 1 if frames else 0 :]) or type(exc).__name__
    return JobError(f"a frame failed to render: {message.removeprefix('superslomo: ')}")


@contextlib.contextmanager
def _interrupts_recorded() -> Iterator[Callable[[], bool]]:
    """Yield a test for "was Ctrl-C pressed in this block?", whatever became of its KeyboardInterrupt.

    While VapourSynth renders, Python code runs in its callbacks, weakref callbacks among them, where an
    exception is only printed ("Exception ignored in ...") and the render goes on: about one Ctrl-C in
    twenty was lost that way, and the job finished as if never interrupted (measured). Python's handler
    still runs, so wrapping it records every Ctrl-C. Only where Python's own handler is installed and in
    the main thread (the only one that can set a handler); elsewhere the test says False.
    """
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield pressed.is_set
        return

    def record(signum: int, frame: FrameType | None) -> None:
        pressed.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, record)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _write_y4m(clip: vs.VideoNode, sink: IO[bytes], progress: Callable[[int, int], None]) -> None:
    with _interrupts_recorded() as interrupted:
        try:
            clip.output(sink, y4m=True, progress_update=progress)
        except vs.Error as exc:
            raise _render_error(exc) from None
        if interrupted():  # the KeyboardInterrupt went astray inside VapourSynth's callbacks
            raise KeyboardInterrupt


# VapourSynth's own frame caches for an in-order render: a few frames per node are all it reuses. Its
# default (half the machine's memory) let a 60 s 320×180 clip at 2× grow to 2.1 GB resident (measured).
RENDER_VS_CACHE_MB = 256


def render_cache_mb(width: int, height: int, factor: Fraction, threads: int) -> int:
    """The filter's result cache for a render in frame order: the frames of one pair per VapourSynth thread,
    and one more pair, instead of the filter's 1 GiB default (filled by frames never asked for again).

    A pair has at most ceil(factor) frames; the filter computes them in chunks of at most half its cache and
    always keeps the newest chunk, so this never recomputes a frame in an in-order render.
    """
    frame_mib = 3 * width * height * 4 / 2**20  # RGBS
    return max(1, min(1024, math.ceil((threads + 1) * math.ceil(factor) * frame_mib)))


def check_paths(job: Job) -> None:
    if job.output.exists() and not job.overwrite:
        raise JobError(f"output {job.output} exists; pass --overwrite to replace it")
    if job.input.resolve() == job.output.resolve():
        raise JobError("output must differ from the input")
    if not job.output.parent.is_dir():
        raise JobError(f"output folder {job.output.parent} does not exist")
    if job.ffmpeg is None or job.output.suffix.lower() == ".y4m":
        return
    if not job.output.suffix:
        raise JobError(
            f"output {job.output} has no extension, and ffmpeg picks the container by it: "
            f"name it e.g. {job.output.name}.mp4 or {job.output.name}.mkv"
        )
    if job.output.suffix.lower() == ".webm":
        raise JobError(
            f"output {job.output}: WebM holds only VP8, VP9 or AV1 video, and --codec {job.codec} is none of "
            "them; use .mp4 or .mkv"
        )
    if job.codec == "ffv1" and job.output.suffix.lower() not in _LOSSLESS_CONTAINERS:
        raise JobError(f"ffv1 needs a .mkv, .avi or .nut output, not {job.output.suffix or 'no extension'}")


def progress_bar(job: Job, total: int) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    disable = None if job.progress is None else not job.progress
    bar = tqdm(total=total, unit="frame", desc="superslomo", disable=disable, dynamic_ncols=True, smoothing=0.1)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _os_error(exc: OSError, path: Path) -> JobError:
    """The output's name and the system's reason, never the temporary file's name."""
    if exc.errno == errno.ENOSPC:
        return _no_space(path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return JobError(
            f"cannot write {path}: {exc.strerror} in {path.parent}; choose another output folder or make it writable"
        )
    return JobError(f"cannot write {path}: {exc.strerror or exc}")


def run_job(job: Job, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Summary:
    """Run ``job``; raise :class:`JobError` (one line) for anything the user can fix."""
    core = vs.core
    previous = core.max_cache_size
    core.max_cache_size = min(previous, RENDER_VS_CACHE_MB)
    try:
        return _run_job(job, log)
    finally:
        core.max_cache_size = previous


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
    def span(self) -> _Span:
        return _Span(self.first, self.source.num_frames, self.in_fps, self.factor, self.clip.num_frames / self.fps)


# The least memory a frame size takes, per pixel: a pair and its neighbours in float RGB, their flows, a new
# frame and the conversions around it. A quarter of what a run took at its peak (460 bytes per pixel at
# 3000x3000 with tiny weights, 2026-12-05), so only sizes that cannot fit at all are refused.
_MIN_BYTES_PER_PIXEL = 128


def memory_limit() -> int | None:
    """The bytes this process may use at most: the machine's memory, or less under a cgroup or ulimit -v."""
    limits = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    with contextlib.suppress(ValueError, OSError):
        limits.append(int(Path("/sys/fs/cgroup/memory.max").read_text()))  # "max": no limit
    return min(limits) if limits else None


def _check_memory(clip: vs.VideoNode, path: Path) -> None:
    """Refuse frames too large for this machine before any is made: VapourSynth aborts the whole process
    (exit 134, "terminate called") when a frame's buffer cannot be allocated."""
    limit = memory_limit()
    need = clip.width * clip.height * _MIN_BYTES_PER_PIXEL
    if limit is not None and need > limit:
        raise JobError(
            f"{path} is {clip.width}x{clip.height}: frames that large need at least {need / 2**30:.1f} GiB of "
            f"memory here, and this process may use {limit / 2**30:.1f} GiB; scale it down first"
        )


def prepare(job: Job, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Prepared:
    """Open ``job``'s input and build its filter graph (nothing is rendered); JobError for what the user can fix."""
    whole, starts = _open(job)
    _check_memory(whole, job.input)
    damaged = job.ffmpeg is not None and _check_input(job.ffmpeg, whole, job.input, log)
    timestamps = _variable_timestamps(job, whole, starts)
    src, first = _trim(whole, job.start, job.end)
    colour = source_colour(src)
    in_fps = Fraction(src.fps_num, src.fps_den)
    if timestamps is not None:  # the average over the clip, its last frame as long as the one before
        in_fps = Fraction(len(timestamps), 2 * timestamps[-1] - timestamps[-2] - timestamps[0])
    factor_num, factor_den = (job.factor or Fraction(2)).as_integer_ratio()
    fps_num, fps_den = job.fps.as_integer_ratio() if job.fps is not None else (None, None)
    factor = job.fps / in_fps if job.fps is not None and in_fps > 0 else Fraction(factor_num, factor_den)
    try:
        rgb = superslomo(
            to_rgb(src, colour),
            factor_num,
            factor_den,
            fps_num,
            fps_den,
            slowmo=job.slowmo,
            device_index=job.device_index,
            **job.options.kwargs(),
            timestamps=timestamps,
            cache_mb=render_cache_mb(src.width, src.height, factor, vs.core.num_threads),
        )
    except FilterError as exc:
        raise JobError(exc.reason) from None
    except vs.Error as exc:  # VapourSynth's own, while the filter builds its graph
        raise JobError(str(exc)) from None
    like, out_colour = _encodable(src, colour, job.input, log)
    out = from_rgb(rgb, like=like, colour=out_colour)
    if Fraction(out.fps_num, out.fps_den) <= 0:
        raise JobError("the input has no constant frame rate; give --fps or convert it first")
    return Prepared(src, first, in_fps, factor, timestamps, out_colour, out, damaged)


def _encodable(
    src: vs.VideoNode, colour: ColourProps, path: Path, log: Callable[[str], None]
) -> tuple[vs.VideoNode, ColourProps]:
    """A clip of the format the output takes, and its colour: the source's, but YUV 4:4:4 at the same depth
    for RGB input (e.g. libx264rgb), which y4m and the encoders' usual formats cannot carry."""
    fmt = src.format
    if fmt.color_family != vs.RGB:
        return src, colour
    yuv = fmt.replace(color_family=vs.YUV, subsampling_w=0, subsampling_h=0)
    like = vs.core.std.BlankClip(src, format=yuv.id, length=1)
    log(f"note: {path} is RGB ({fmt.name}); it is written as {yuv.name} with the usual colour for its size")
    return like, source_colour(like)


def _run_job(job: Job, log: Callable[[str], None]) -> Summary:
    check_paths(job)
    started = time.perf_counter()
    prepared = prepare(job, log)
    tally = Tally()
    src, out, out_fps = prepared.source, tally.watch(prepared.clip), prepared.fps

    output = job.output
    if job.ffmpeg is None and output.suffix.lower() != ".y4m":
        output = output.with_suffix(".y4m")
        if output.exists() and not job.overwrite:
            raise JobError(f"ffmpeg is not installed and the fallback output {output} exists; pass --overwrite")
        log(f"ffmpeg not found: writing lossless {output} instead (no audio)")
    update, close = progress_bar(job, out.num_frames)
    audio, streams = "none (y4m carries no audio)", ""

    def write_y4m(tmp: Path) -> None:
        try:
            with open(tmp, "wb") as sink:
                _write_y4m(out, sink, update)
        except OSError as exc:
            raise _os_error(exc, output) from None

    try:
        if output.suffix.lower() == ".y4m":
            _atomic(output, write_y4m, overwrite=job.overwrite)
        else:
            audio, streams = encode_file(job, prepared, out, output, update, source=True)
    finally:
        close()
    if output != job.output:
        command = ["ffmpeg", "-i", ff_path(output), "-i", ff_path(job.input), "-map", "0:v", "-map", "1:a?"]
        command += ["-c:v", "libx264", "-crf", "18", "-c:a", "copy", ff_path(job.output)]
        log(f"encode it with: {shlex.join(command)}")  # quoted: names with spaces, quotes or ':' paste as they are
    if remove_abandoned(job.output):
        log(f"removed {work_folder(job.output)}: the unfinished chunks of an earlier --workers run to {job.output}")
    seconds = time.perf_counter() - started
    variable = prepared.timestamps is not None
    return Summary(
        src.num_frames,
        prepared.in_fps,
        out.num_frames,
        out_fps,
        output,
        seconds,
        audio,
        variable,
        engine_text(job.device_index, job.options.fp16, job.options.backend),
        tally.held_replaced if job.options.dedup else None,
        tally.cuts if job.options.sc else None,
        streams,
    )


def _atomic(output: Path, write: Callable[[Path], object], *, overwrite: bool) -> None:
    """``write`` the output under a temporary name, then give it the output's name: never replacing a file
    that appeared there during the run (another program's) unless ``overwrite``."""
    try:
        # The temporary name keeps the extension: ffmpeg picks the container from it.
        atomic_write(output, write, suffix=f".part{output.suffix}", replace=overwrite)
    except FileExistsError:
        raise JobError(
            f"{output} appeared while this run wrote it (another program made it) and was left as it is; this "
            "run's result was not kept: pass --overwrite to replace it, or choose another output name"
        ) from None
    except OSError as exc:  # creating or renaming the temporary file
        raise _os_error(exc, output) from None


def encode_file(
    job: Job,
    prepared: Prepared,
    video: vs.VideoNode | list[str],
    output: Path,
    update: Callable[[int, int], None] = lambda done, total: None,
    *,
    source: bool = False,
    frames: int | None = None,
    overwrite: bool | None = None,
) -> tuple[str, str]:
    """Encode the clip ``video`` with ``job``'s codec into ``output`` (or copy ``video``, ffmpeg input options
    of video encoded so, e.g. a concat list), with ``source``: the other streams of ``job.input`` as the job
    wants them (:mod:`vs_superslomo.streams`); atomically, read back before it takes the name (``frames``
    frames: by default the clip's), replacing a file of that name only with ``overwrite`` (None: the job's
    --overwrite). Returns what happened to the audio, and to the other streams."""
    assert job.ffmpeg is not None
    clip = video if isinstance(video, vs.VideoNode) else None
    count = frames if frames is not None else clip.num_frames if clip is not None else None
    assert count is not None
    plan = _plan(job, prepared.span, output) if source else None

    def write(tmp: Path) -> None:
        options = None if isinstance(video, vs.VideoNode) else video
        cmd = _ffmpeg_command(replace(job, output=output), tmp, prepared.colour, plan, prepared.span, options)
        _encode(cmd, clip, update, tmp, output)
        audio = plan.audio_seconds if plan is not None else []
        if prepared.damaged:  # the source's stated lengths are not what it holds: its audio's are not checked
            audio = [None for _ in audio]
        check_encoded(ffprobe_beside(job.ffmpeg or "ffmpeg"), tmp, output, count, prepared.fps, audio)

    _atomic(output, write, overwrite=job.overwrite if overwrite is None else overwrite)
    return (plan.audio, plan.others) if plan is not None else ("none", "")


# ffmpeg's follow-up lines that only say that something failed before; the cause is on another line.
_GENERIC = re.compile(r"^(Error initializing output stream|Could not write header|Conversion failed|Error closing)")


# ffmpeg's messages about writing the output (or naming it), as opposed to an input's complaints.
_WRITE_ERROR = re.compile(r"Error (writing|closing)|No space left|av_interleaved_write_frame|Error muxing|I/O error")


def _ffmpeg_reason(err: str, tmp: Path, output: Path) -> str:
    """The line of ffmpeg's error output that names the cause, speaking of ``output``, not the temporary name."""
    lines = [
        line.strip()
        for line in err.replace(ff_path(tmp), str(output)).replace(str(tmp), str(output)).splitlines()
        if line.strip()
    ]
    lines = [re.sub(r"^\[[^]]* @ 0x[0-9a-f]+\]\s*", "", line) for line in lines]  # "[webm @ 0x55...] "
    causes = [line for line in lines if not _GENERIC.match(line)] or lines
    return causes[0] if causes else ""


def _no_space(output: Path) -> JobError:
    return JobError(f"no space left on the device while writing {output}; free some space and run again")


def _encode(
    cmd: list[str], clip: vs.VideoNode | None, update: Callable[[int, int], None], tmp: Path, output: Path
) -> None:
    """Stream ``clip`` as y4m into ffmpeg (None: ffmpeg reads no input on stdin); ffmpeg's own error becomes a
    one-line JobError.

    ffmpeg 5.1 exits 0 when writing the trailer fails on a full disk, so a line about writing the output
    fails the job whatever the exit status. Complaints about an input (a damaged file whose audio is
    taken along) do not: the file is read back afterwards (:func:`check_encoded`).
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        try:
            if clip is not None:
                _write_y4m(clip, proc.stdin, update)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        except OSError as exc:
            raise _os_error(exc, output) from None
        err = proc.stderr.read().decode(errors="replace")
        status = proc.wait()
        if status != 0 or _WRITE_ERROR.search(err) or str(tmp) in err:
            if re.search(r"No space left", err):
                raise _no_space(output)
            reason = _ffmpeg_reason(err, tmp, output) or f"exit status {status}"
            raise JobError(f"ffmpeg failed writing {output}: {reason}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _probe(ffprobe: str, path: Path, *, count: bool) -> subprocess.CompletedProcess[str]:
    """ffprobe's JSON on ``path``'s streams: kind, duration, start, size, pixel format, rotation and, with
    ``count``, their packets."""
    entries = "stream=codec_type,duration,start_time,width,height,pix_fmt"
    entries += f"{',nb_read_packets' if count else ''}:stream_tags=DURATION:stream_side_data=rotation"
    cmd = [ffprobe, "-v", "error", *(["-count_packets"] if count else [])]
    cmd += ["-of", "json", "-show_entries", entries, ff_path(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _streams(probe_json: str, kind: str) -> list[dict[str, object]]:
    """The streams of ``kind`` (video, audio) in ffprobe's JSON."""
    try:
        streams = json.loads(probe_json or "{}").get("streams") or []
    except ValueError:
        return []
    return [s for s in streams if isinstance(s, dict) and s.get("codec_type") == kind]


def _quarter_turned(stream: dict[str, object]) -> bool:
    """Whether the stream's display matrix turns it by 90 or 270 degrees (ffprobe's ``rotation`` side data)."""
    side_data = stream.get("side_data_list")
    for data in side_data if isinstance(side_data, list) else []:
        rotation = data.get("rotation") if isinstance(data, dict) else None
        if isinstance(rotation, (int, float)):
            return round(rotation) % 180 == 90
    return False


def _check_input(ffmpeg: str, clip: vs.VideoNode, path: Path, log: Callable[[str], None]) -> bool:
    """Warn where what decodes differs from what the container holds; return whether the file looks damaged.

    Fewer frames than it promises: bestsource salvages a damaged (e.g. truncated) file silently (tolerant
    of a frame or two of edit-list and rounding differences). A smaller picture: 4:2:0 video of odd size,
    which VapourSynth (like x264 and x265) holds only at even sizes, loses its last row or column.
    """
    try:
        stream = (_streams(_probe(ffprobe_beside(ffmpeg), path, count=False).stdout, "video") or [{}])[0]
    except (OSError, subprocess.TimeoutExpired):
        return False
    width, height = stream.get("width"), stream.get("height")
    if _quarter_turned(stream):  # a phone's rotation side data: bestsource turns the picture upright
        width, height = height, width
    if isinstance(width, int) and isinstance(height, int) and (width, height) != (clip.width, clip.height):
        log(
            f"warning: {path} is {width}x{height} {stream.get('pix_fmt', '')}, which VapourSynth holds only at "
            f"even sizes: it decodes, and comes out, {clip.width}x{clip.height}"
        )
    stated = seconds_of(stream)
    fps = Fraction(clip.fps_num, clip.fps_den)
    if stated is None or fps <= 0:
        return False
    decoded = float(clip.num_frames / fps)
    if stated - decoded > max(0.5, 0.02 * stated):
        log(
            f"warning: {path} looks damaged: its container promises {stated:.2f} s of video, but only "
            f"{clip.num_frames} frames ({decoded:.2f} s) decode; the output holds those"
        )
        return True
    return False


def check_encoded(
    ffprobe: str, tmp: Path, output: Path, frames: int, fps: Fraction, audio: Sequence[float | None] = ()
) -> None:
    """Read the encoded file back before it takes the output's name: the container must open without an
    error, its video hold ``frames`` frames lasting ``frames / fps`` (within a frame), and it must hold one
    audio track per entry of ``audio``, each lasting that long (None: unknown), or as long as the video when
    that is shorter, within a tenth of a second or 2 %; else JobError. Each stream is measured on its own: the
    container's duration spans them all (in Matroska the video starts after AAC's priming)."""
    try:
        probe = _probe(ffprobe, tmp, count=True)
    except FileNotFoundError:
        raise JobError(f"ffprobe (part of ffmpeg) is needed to check {output} before it is kept; install it") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobError(f"cannot check {output} with ffprobe: {exc}") from None
    if probe.returncode != 0 or probe.stderr.strip():
        reason = _ffmpeg_reason(probe.stderr, tmp, output) or f"ffprobe exit status {probe.returncode}"
        raise JobError(f"ffmpeg wrote a damaged {output} (nothing was kept): {reason}")
    stream = (_streams(probe.stdout, "video") or [{}])[0]
    packets = int(str(stream.get("nb_read_packets", -1)))
    duration = seconds_of(stream)
    expected = float(frames / fps)
    tracks = _streams(probe.stdout, "audio")
    if packets != frames:
        problem = f"it holds {max(packets, 0)} of the {frames} frames"
    elif duration is not None and abs(duration - expected) > float(1 / fps) + 0.001:
        problem = f"its video lasts {duration:.3f} s instead of {expected:.3f} s"
    elif len(tracks) != len(audio):
        problem = f"it holds {len(tracks)} of the {len(audio)} audio tracks"
    else:
        for i, (track, want) in enumerate(zip(tracks, audio, strict=True)):
            got, slack = seconds_of(track), max(0.1, 0.02 * (want or 0))
            # As long as the source's, or the video where the source says more than it holds (a damaged file).
            if want is not None and got is not None and not min(want, expected) - slack <= got <= want + slack:
                problem = f"its audio track {i + 1} lasts {got:.3f} s instead of {want:.3f} s"
                break
        else:
            return
    raise JobError(f"ffmpeg wrote an incomplete {output} (nothing was kept): {problem}; is the disk full?")
