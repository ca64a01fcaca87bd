"""The read-back check (encode.check_encoded) before an output takes its name: each stream measured on its own."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from helpers import needs_ffmpeg

from vs_superslomo.encode import check_encoded
from vs_superslomo.errors import JobError

pytestmark = needs_ffmpeg


def made(path: Path, audio_seconds: list[float]) -> Path:
    """1 s of video (10 frames at 10 fps) and one AAC track per entry of ``audio_seconds``, that long."""
    args = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1"]
    for seconds in audio_seconds:
        args += ["-f", "lavfi", "-i", f"sine=duration={seconds}"]
    maps = [x for i in range(len(audio_seconds) + 1) for x in ("-map", f"{i}")]
    cmd = [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", *args, *maps, "-c:v", "libx264", "-c:a", "aac"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


def check(path: Path, frames: int, audio: list[float | None]) -> None:
    check_encoded(shutil.which("ffprobe") or "ffprobe", path, path.with_name("out.mkv"), frames, Fraction(10), audio)


def test_a_file_whose_streams_are_as_long_as_they_should_be_passes(tmp_path: Path) -> None:
    check(made(tmp_path / "two.mkv", [1.0, 1.0]), 10, [1.0, 1.0])  # Matroska's AAC priming makes no false alarm
    check(made(tmp_path / "unknown.mp4", [1.0]), 10, [None])  # an input track of unknown length


@pytest.mark.parametrize(
    ("audio_seconds", "expected", "problem"),
    [
        ([0.4], [1.0], "its audio track 1 lasts 0.4"),  # cut short
        ([1.0, 0.4], [1.0, 1.0], "its audio track 2 lasts 0.4"),
        ([1.0], [1.0, 1.0], "it holds 1 of the 2 audio tracks"),  # a track missing
        ([], [1.0], "it holds 0 of the 1 audio tracks"),
    ],
)
def test_short_or_missing_audio_is_refused(
    tmp_path: Path, audio_seconds: list[float], expected: list[float | None], problem: str
) -> None:
    path = made(tmp_path / "out.mkv", audio_seconds)
    with pytest.raises(JobError, match=f"incomplete .*out.mkv \\(nothing was kept\\): {problem}"):
        check(path, 10, expected)


def test_missing_video_frames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="it holds 10 of the 12 frames"):
        check(made(tmp_path / "out.mkv", [1.0]), 12, [1.0])
