"""ffmpeg for the command line: the encode command for a job, running it with VapourSynth's y4m on its input,
and reading the result back (each stream as long as it should be) before it takes the output's name."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import IO

import vapoursynth as vs

from . import stages
from .colour import ColourProps
from .errors import JobError
from .files import atomic_write
from .job import DEFAULT_CRF, Codec, Job, Prepared, Span
from .stages import timed
from .streams import MP4_LIKE, StreamPlan, ff_path, plan_streams, probe_streams, seconds_of

__all__ = [
    "atomic_output",
    "check_encoded",
    "check_input",
    "encode_file",
    "ffprobe_beside",
    "join_segments",
    "os_error",
    "stream_plan",
    "write_y4m",
]

_ENCODERS: dict[Codec, list[str]] = {
    "x264": ["-c:v", "libx264", "-preset", "medium"],
    "x265": ["-c:v", "libx265", "-preset", "medium", "-x265-params", "log-level=error"],
    "ffv1": ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1"],
}


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


def _ffmpeg_command(
    job: Job, tmp: Path, colour: ColourProps, plan: StreamPlan | None, span: Span, video: list[str] | None = None
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


def stream_plan(job: Job, span: Span, output: Path) -> StreamPlan:
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


class _TimedSink:
    """A sink whose writes are a stage (:mod:`.stages`): time blocked on ffmpeg (encoding) or the disk."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink

    def write(self, data: bytes) -> int:
        with timed("encode: writing to ffmpeg or the file"):
            return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def write_y4m(clip: vs.VideoNode, sink: IO[bytes], progress: Callable[[int, int], None]) -> None:
    collection = stages.active()
    if collection is not None:
        collection.watch(clip)
        report = progress

        def marked(done: int, total: int) -> None:
            if done:
                collection.mark_first_frame()
            report(done, total)

        progress = marked
    with _interrupts_recorded() as interrupted:
        try:
            clip.output(sink if collection is None else _TimedSink(sink), y4m=True, progress_update=progress)
        except vs.Error as exc:
            raise _render_error(exc) from None
        if interrupted():  # the KeyboardInterrupt went astray inside VapourSynth's callbacks
            raise KeyboardInterrupt


def os_error(exc: OSError, path: Path) -> JobError:
    """The output's name and the system's reason, never the temporary file's name."""
    if exc.errno == errno.ENOSPC:
        return _no_space(path)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return JobError(
            f"cannot write {path}: {exc.strerror} in {path.parent}; choose another output folder or make it writable"
        )
    return JobError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_output(output: Path, write: Callable[[Path], object], *, overwrite: bool) -> None:
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
        raise os_error(exc, output) from None


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
    plan = stream_plan(job, prepared.span, output) if source else None

    def write(tmp: Path) -> None:
        options = None if isinstance(video, vs.VideoNode) else video
        cmd = _ffmpeg_command(replace(job, output=output), tmp, prepared.colour, plan, prepared.span, options)
        _encode(cmd, clip, update, tmp, output)
        audio = plan.audio_seconds if plan is not None else []
        if prepared.damaged:  # the source's stated lengths are not what it holds: its audio's are not checked
            audio = [None for _ in audio]
        check_encoded(ffprobe_beside(job.ffmpeg or "ffmpeg"), tmp, output, count, prepared.fps, audio)

    atomic_output(output, write, overwrite=job.overwrite if overwrite is None else overwrite)
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
                write_y4m(clip, proc.stdin, update)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        except OSError as exc:
            raise os_error(exc, output) from None
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


def check_input(ffmpeg: str, clip: vs.VideoNode, path: Path, log: Callable[[str], None]) -> bool:
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


def join_segments(
    job: Job, prepared: Prepared, segments: Sequence[Path], durations_us: Sequence[int], work: Path, *, source: bool
) -> tuple[str, str]:
    """Concatenate encoded ``segments`` (each lasting its ``durations_us``) in order without re-encoding, with
    ``source``: the input's other streams; written atomically, as :func:`encode_file` writes."""
    assert job.ffmpeg is not None
    headers = {_codec_header(ffprobe_beside(job.ffmpeg), s) for s in segments}
    if len(headers) > 1:
        raise JobError(
            f"the segments in {work} were encoded with different encoder settings and cannot be joined "
            "without re-encoding: use the same ffmpeg on every machine"
        )
    lines = ["ffconcat version 1.0"]
    for segment, duration in zip(segments, durations_us, strict=True):
        lines += [f"file '{segment.name}'", f"duration {duration}us"]
    listing = work / "concat.txt"
    listing.write_text("\n".join(lines) + "\n")
    video = ["-f", "concat", "-safe", "0", "-i", ff_path(listing)]
    return encode_file(job, prepared, video, job.output, source=source, frames=prepared.clip.num_frames)


def _codec_header(ffprobe: str, segment: Path) -> str:
    """A hash of the segment's codec parameters (SPS/PPS, ...): concatenation keeps only the first's."""
    cmd = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_data_hash", "sha256"]
    cmd += ["-show_entries", "stream=codec_name,width,height,pix_fmt,extradata_hash", "-of", "json", ff_path(segment)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
