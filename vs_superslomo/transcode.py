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
import itertools
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

from . import encode
from .colour import ColourProps, from_rgb, source_colour, to_rgb
from .encode import atomic_output, check_input, encode_file, ffprobe_beside, os_error
from .errors import JobError
from .files import user_cache_dir
from .job import (
    Job,
    Prepared,
    Summary,
    fps_text,
)
from .plugin import FilterError, superslomo
from .source import open_video
from .streams import ff_path
from .tally import Tally, engine_text
from .timing import fits_rate
from .workfolder import remove_abandoned, work_folder

__all__ = ["RENDER_VS_CACHE_MB", "check_paths", "memory_limit", "prepare", "progress_bar", "render_cache_mb", "run_job"]
_LOSSLESS_CONTAINERS = {".mkv", ".avi", ".nut"}


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
        raise JobError(f"--start/--end select no frames (the input has {clip.num_frames} at {fps_text(fps)} fps)")
    return clip[first:stop], first


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


def run_job(job: Job, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Summary:
    """Run ``job``; raise :class:`JobError` (one line) for anything the user can fix."""
    core = vs.core
    previous = core.max_cache_size
    core.max_cache_size = min(previous, RENDER_VS_CACHE_MB)
    try:
        return _run_job(job, log)
    finally:
        core.max_cache_size = previous


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
    damaged = job.ffmpeg is not None and check_input(job.ffmpeg, whole, job.input, log)
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
                encode.write_y4m(out, sink, update)
        except OSError as exc:
            raise os_error(exc, output) from None

    try:
        if output.suffix.lower() == ".y4m":
            atomic_output(output, write_y4m, overwrite=job.overwrite)
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
