"""The input's other streams in the output: what ffmpeg copies, converts or drops, and the words for each.

When the timeline is unchanged (a new frame rate, same duration) every stream the output's container can
hold goes along: all audio tracks, subtitles, attachments (fonts) and chapters, with the global and each
stream's metadata. Slow motion and cuts change the timeline: audio is dropped, stretched or trimmed as the
job asks, subtitles and chapters (whose times would be wrong) are dropped, and the summary says so. Paths
reach ffmpeg and ffprobe as ``file:`` URLs, so a name such as ``e:f.mp4`` is never read as a protocol.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

__all__ = ["MATROSKA", "MP4_LIKE", "Stream", "StreamPlan", "ff_path", "plan_streams", "probe_streams", "seconds_of"]

MP4_LIKE = {".mp4", ".m4v", ".mov"}
MATROSKA = {".mkv", ".mka"}
# Audio codecs MP4-like containers hold; other audio is re-encoded to AAC there.
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}
# Text subtitles, which MP4 holds as mov_text (styling is lost); bitmap ones (PGS, VobSub) it cannot hold.
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


def ff_path(path: str | os.PathLike[str]) -> str:
    """``path`` as ffmpeg and ffprobe must read it: a plain file whatever its name holds (``:``, ``|``)."""
    return f"file:{os.fspath(path)}"


def seconds_of(stream: dict[str, object]) -> float | None:
    """A stream's own length in seconds: ``duration`` (MP4, MOV), or Matroska's ``DURATION`` tag, which is
    its end time: from the start of the file, where muxing delays (AAC's priming) may start a stream late."""
    try:
        return float(str(stream["duration"]))
    except (KeyError, ValueError):
        pass
    tags = stream.get("tags")
    tag = tags.get("DURATION") if isinstance(tags, dict) else None
    if not (isinstance(tag, str) and re.fullmatch(r"\d+:\d\d:\d\d(\.\d+)?", tag)):
        return None
    hours, minutes, seconds = tag.split(":")
    try:
        start = float(str(stream.get("start_time", 0)))
    except ValueError:
        start = 0.0
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds) - start


@dataclass(frozen=True)
class Stream:
    """One stream of a file, as ffprobe describes it."""

    index: int
    kind: str  # ffprobe's codec_type: video, audio, subtitle, attachment, data
    codec: str
    seconds: float | None  # its length, when the file says
    cover: bool = False  # a still picture attached to the file (cover art)


def probe_streams(ffprobe: str, path: Path) -> tuple[list[Stream], bool]:
    """``path``'s streams and whether it has chapters; ([], False) when ffprobe cannot read it."""
    cmd = [ffprobe, "-v", "error", "-of", "json", "-show_chapters", "-show_entries"]
    cmd += [
        "stream=index,codec_type,codec_name,duration,start_time:stream_tags=DURATION:stream_disposition=attached_pic"
    ]
    try:
        out = subprocess.run([*cmd, ff_path(path)], capture_output=True, text=True, timeout=60)
        data = json.loads(out.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [], False
    streams = []
    for s in data.get("streams") or []:
        disposition = s.get("disposition") or {}
        kind, codec = str(s.get("codec_type", "data")), str(s.get("codec_name", "unknown"))
        streams.append(Stream(int(s["index"]), kind, codec, seconds_of(s), bool(disposition.get("attached_pic"))))
    return streams, bool(data.get("chapters"))


@dataclass(frozen=True)
class StreamPlan:
    """ffmpeg's output options for the input's other streams (input 1; the video is output stream 0), each
    kept audio track's expected length in order, and what happened, in words."""

    args: list[str]
    audio_seconds: list[float | None]
    audio: str
    others: str


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _keep(stream: Stream, k: int) -> list[str]:
    """Map ``stream`` to output stream ``k`` with its metadata (language, title): any metadata mapping, as the
    video's below, turns off ffmpeg's default copy for every stream."""
    return ["-map", f"1:{stream.index}", f"-map_metadata:s:{k}", f"1:s:{stream.index}"]


def _aac(k: int) -> list[str]:
    return [f"-c:{k}", "aac", f"-b:{k}", "192k"]


def _audio_text(tracks: int, done: list[str]) -> str:
    """The summary's words for the audio: what became of each of the input's ``tracks`` audio tracks."""
    if not tracks:
        return "none (the input has no audio)"
    if not done:
        return "dropped (slow motion; --audio stretch keeps it, slowed down)"
    return done[0] if len(done) == 1 else f"{len(done)} tracks: {', '.join(done)}"


def plan_streams(
    streams: list[Stream],
    chapters: bool,
    suffix: str,
    *,
    slowmo: Fraction | None = None,
    stretch: bool = False,
    trim: tuple[float, float] | None = None,
    video_seconds: float | None = None,
) -> StreamPlan:
    """What to do with each of ``streams`` (the input's) in an output named ``*suffix``.

    ``slowmo``: the factor the video slows down by (None: the timeline is unchanged); ``stretch``: its audio is
    slowed down too (else dropped); ``trim``: (start, length) in seconds of the part that is kept;
    ``video_seconds``: the output video's length, which stretched audio is padded or cut to.
    """
    suffix = suffix.lower()
    changed = "slow motion changes" if slowmo is not None else "the cut changes" if trim is not None else ""
    args = ["-map_metadata", "1", "-map_metadata:s:0", "1:s:v:0"]
    args += ["-map_chapters", "1" if chapters and not changed else "-1"]
    k = 1  # the next output stream's index (the video is 0)
    tracks = [s for s in streams if s.kind == "audio"]
    audio: list[str] = []
    audio_seconds: list[float | None] = []
    for stream in tracks if slowmo is None or stretch else []:
        args += _keep(stream, k)
        length = stream.seconds
        if trim is not None and length is not None:
            length = max(0.0, min(trim[1], length - trim[0]))
        if slowmo is not None:
            stretched = atempo_chain(1 / slowmo)
            length = None if length is None else length * float(slowmo)
            if video_seconds is not None:
                # Silence after the audio, then a cut, so that it lasts exactly as long as the video: atempo's
                # output ends short of factor × the input's length (0.06 s at 4x on the bundled clip).
                stretched += f",apad=whole_dur={video_seconds:.6f},atrim=end={video_seconds:.6f}"
                length = video_seconds
            args += [f"-filter:{k}", stretched, *_aac(k)]
            audio.append(f"stretched {float(slowmo):g}x (pitch kept), AAC")
        elif trim is not None:
            args += _aac(k)  # a copy could only cut at packet edges
            audio.append(f"trimmed and re-encoded {stream.codec} -> AAC")
        elif suffix in MP4_LIKE and stream.codec not in _MP4_AUDIO:
            args += _aac(k)
            audio.append(f"re-encoded {stream.codec} -> AAC ({suffix} cannot hold {stream.codec})")
        else:
            args += [f"-c:{k}", "copy"]
            audio.append(f"copied ({stream.codec})")
        audio_seconds.append(length)
        k += 1
    audio_text = _audio_text(len(tracks), audio)

    notes: list[str] = []
    subtitles = [s for s in streams if s.kind == "subtitle"]
    if subtitles and changed:
        notes.append(f"subtitles dropped ({_plural(len(subtitles), 'track')}: {changed} their timing)")
    elif subtitles and suffix not in MATROSKA | MP4_LIKE:
        codecs = ", ".join(s.codec for s in subtitles)
        notes.append(f"subtitles dropped ({codecs}: {suffix or 'the output'} cannot hold them; use .mkv)")
    elif subtitles:
        kept: list[str] = []
        dropped: list[str] = []
        for s in subtitles:
            if suffix in MATROSKA:
                target = "srt" if s.codec == "mov_text" else "copy"  # Matroska has no mov_text
            elif s.codec in _TEXT_SUBTITLES:
                target = "copy" if s.codec == "mov_text" else "mov_text"  # ASS styling is lost there
            else:
                dropped.append(s.codec)
                continue
            args += [*_keep(s, k), f"-c:{k}", target]
            kept.append(s.codec if target == "copy" else f"{s.codec} -> {target}")
            k += 1
        if kept:
            notes.append(f"subtitles copied ({', '.join(kept)})")
        if dropped:
            notes.append(f"subtitles dropped ({', '.join(dropped)}: {suffix} holds text subtitles only)")
    attachments = [s for s in streams if s.kind == "attachment"]
    if attachments and suffix in MATROSKA:
        for s in attachments:
            args += [*_keep(s, k), f"-c:{k}", "copy"]
            k += 1
        notes.append(f"{_plural(len(attachments), 'attachment')} copied")
    elif attachments:
        notes.append(f"{_plural(len(attachments), 'attachment')} dropped (only .mkv holds them)")
    if chapters:
        notes.append(f"chapters dropped ({changed} their times)" if changed else "chapters copied")
    videos = [s for s in streams if s.kind == "video" and not s.cover]
    rest = videos[1:] + [s for s in streams if s.cover or s.kind not in ("video", "audio", "subtitle", "attachment")]
    if rest:
        what = ", ".join(("cover art " if s.cover else f"{s.kind} ") + s.codec for s in rest)
        notes.append(f"other streams dropped ({what})")
    return StreamPlan(args, audio_seconds, audio_text, "; ".join(notes))


def atempo_chain(speed: Fraction) -> str:
    """An ffmpeg filter that plays audio at ``speed`` (keeping pitch); atempo takes 0.5..100 per stage."""
    stages: list[str] = []
    while speed < Fraction(1, 2):
        stages.append("atempo=0.5")
        speed *= 2
    stages.append(f"atempo={float(speed):.10g}")
    return ",".join(stages)
