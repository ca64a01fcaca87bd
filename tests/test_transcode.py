"""File to file end to end: every stream the output can hold is kept and each is read back on its own, the
main container and codec paths, awkward file names. Tiny inputs and a tiny network: seconds per run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vs_superslomo import SuperSloMo, encode, transcode
from vs_superslomo.cli import main
from vs_superslomo.weights import save_model
from vs_superslomo.workfolder import WorkFolder

FFMPEG, FFPROBE = shutil.which("ffmpeg") or "", shutil.which("ffprobe") or ""
pytestmark = pytest.mark.skipif(not FFMPEG or not FFPROBE, reason="ffmpeg is not installed")
BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "bbb_640x360.mp4"


@pytest.fixture
def weights(tmp_path: Path, tiny_model: SuperSloMo, monkeypatch: pytest.MonkeyPatch) -> str:
    """The tiny network's weights file, and a cache folder of the test's own (bestsource's index)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    return str(tmp_path / "tiny.safetensors")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def make_testsrc(path: Path, *, audio: bool = True, frames: int = 5, rate: int = 25, codec: str = "aac") -> Path:
    """``frames`` frames of testsrc2 at 64x48 and, with ``audio``, a sine as long, in ``codec``."""
    seconds = frames / rate
    args = ["-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:a", codec, "-shortest"]
    ffmpeg(*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", f"file:{path}")
    return path


def streams(path: Path) -> dict[str, Any]:
    cmd = [FFPROBE, "-v", "error", "-count_packets", "-show_streams", "-show_format", "-show_chapters"]
    out = subprocess.run([*cmd, "-of", "json", f"file:{path}"], capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def kinds(info: dict[str, Any]) -> list[str]:
    return [s["codec_type"] for s in info["streams"]]


def run(*args: str | Path) -> int:
    return main([str(a) for a in args] + ["--no-progress"])


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["x264", "ffv1"])
def test_bundled_clip_converts_to_matroska_with_its_audio(
    tmp_path: Path, weights: str, codec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Matroska starts the video 21 ms late, after the AAC priming: the container lasts that much longer than
    # the video, which the read-back once took for a truncated file.
    if not BUNDLED.is_file():
        pytest.skip("the bundled clip is not in this checkout")
    out = tmp_path / "out.mkv"
    assert run(BUNDLED, "-o", out, "--model", weights, "--codec", codec) == 0, capsys.readouterr().err
    assert "audio copied (aac)" in capsys.readouterr().out
    info = streams(out)
    assert kinds(info) == ["video", "audio"]
    assert int(info["streams"][0]["nb_read_packets"]) == 96


@pytest.mark.parametrize("audio", [True, False])
@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        (".mp4", "x264"),
        (".mp4", "x265"),
        (".mov", "x264"),
        (".mov", "x265"),
        (".mkv", "x264"),
        (".mkv", "x265"),
        (".mkv", "ffv1"),
    ],
)
def test_main_container_and_codec_paths(tmp_path: Path, weights: str, suffix: str, codec: str, audio: bool) -> None:
    src = make_testsrc(tmp_path / "in.mp4", audio=audio)
    out = tmp_path / f"out{suffix}"
    assert run(src, "-o", out, "--model", weights, "--codec", codec) == 0
    info = streams(out)
    assert kinds(info) == ["video", "audio"] if audio else ["video"]
    assert int(info["streams"][0]["nb_read_packets"]) == 10
    assert info["streams"][0]["codec_name"] == {"x264": "h264", "x265": "hevc", "ffv1": "ffv1"}[codec]


def rich_matroska(folder: Path) -> Path:
    """An anime-release-like file: two audio tracks with languages, ASS and SRT subtitles, a font attached,
    two chapters and a title."""
    (folder / "a.srt").write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n")
    (folder / "chapters.txt").write_text(
        ";FFMETADATA1\ntitle=Episode 1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=200\ntitle=A\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=200\nEND=500\ntitle=B\n"
    )
    (folder / "font.ttf").write_bytes(b"not really a font, but attached as one")
    src = folder / "rich.mkv"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5"),
        *("-f", "lavfi", "-i", "sine=duration=0.5", "-f", "lavfi", "-i", "sine=frequency=880:duration=0.5"),
        *("-i", str(folder / "a.srt"), "-i", str(folder / "a.srt"), "-i", str(folder / "chapters.txt")),
        *("-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map", "4", "-map_metadata", "5"),
        *("-c:v", "libx264", "-c:a:0", "aac", "-c:a:1", "ac3", "-c:s:0", "ass", "-c:s:1", "srt"),
        *("-metadata:s:a:0", "language=jpn", "-metadata:s:a:1", "language=eng", "-metadata:s:s:0", "language=eng"),
        *("-attach", str(folder / "font.ttf"), "-metadata:s:t", "mimetype=application/x-truetype-font"),
        str(src),
    )
    return src


def test_matroska_keeps_every_stream_chapter_and_tag(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = rich_matroska(tmp_path)
    out = tmp_path / "out.mkv"
    assert run(src, "-o", out, "--model", weights) == 0
    line = capsys.readouterr().out
    assert "audio 2 tracks: copied (aac), copied (ac3); subtitles copied (ass, subrip); 1 attachment copied; " in line
    assert "chapters copied" in line
    info = streams(out)
    assert kinds(info) == ["video", "audio", "audio", "subtitle", "subtitle", "attachment"]
    assert [s["tags"].get("language") for s in info["streams"][1:4]] == ["jpn", "eng", "eng"]
    assert info["streams"][5]["tags"]["mimetype"] == "application/x-truetype-font"
    assert [c["tags"]["title"] for c in info["chapters"]] == ["A", "B"]
    assert info["format"]["tags"]["title"] == "Episode 1"


def test_streams_a_container_cannot_hold_or_a_changed_timeline_would_break_are_named(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = rich_matroska(tmp_path)
    assert run(src, "-o", tmp_path / "out.mp4", "--model", weights) == 0
    line = capsys.readouterr().out
    assert "subtitles copied (ass -> mov_text, subrip -> mov_text); 1 attachment dropped (only .mkv holds them)" in line
    info = streams(tmp_path / "out.mp4")
    assert kinds(info)[:5] == ["video", "audio", "audio", "subtitle", "subtitle"]  # then MP4's chapter track
    assert [c["tags"]["title"] for c in info["chapters"]] == ["A", "B"]
    args = ["--model", weights, "--factor", "2", "--slowmo", "--audio", "stretch"]
    assert run(src, "-o", tmp_path / "slow.mkv", *args) == 0
    line = capsys.readouterr().out
    assert "audio 2 tracks: stretched 2x (pitch kept), AAC, stretched 2x (pitch kept), AAC" in line
    assert "subtitles dropped (2 tracks: slow motion changes their timing); 1 attachment copied; " in line
    assert "chapters dropped (slow motion changes their times)" in line
    info = streams(tmp_path / "slow.mkv")
    assert kinds(info) == ["video", "audio", "audio", "attachment"] and info["chapters"] == []


def test_a_colon_in_a_name_is_a_file_not_a_protocol(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative name: "e:f.mp4" is the file's, not a protocol "e"
    make_testsrc(tmp_path / "e:f.mp4")
    assert run("e:f.mp4", "-o", "g:h.mkv", "--model", weights) == 0
    assert "audio copied (aac)" in capsys.readouterr().out
    assert kinds(streams(tmp_path / "g:h.mkv")) == ["video", "audio"]


def test_an_output_that_appears_during_the_run_is_not_replaced(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_testsrc(tmp_path / "in.mp4")
    out = tmp_path / "out.mkv"
    read_back = encode.check_encoded

    def another_run_finishes_first(*args: Any, **kwargs: Any) -> None:
        out.write_text("the other run's result")  # after the start's check, before the rename
        read_back(*args, **kwargs)

    monkeypatch.setattr(encode, "check_encoded", another_run_finishes_first)
    assert run(src, "-o", out, "--model", weights) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "appeared while this run wrote it" in err and "--overwrite" in err, err
    assert out.read_text() == "the other run's result" and [p.name for p in tmp_path.glob(".out.mkv*")] == []
    assert run(src, "-o", out, "--model", weights, "--overwrite") == 0  # asked for: replaced
    assert kinds(streams(out)) == ["video", "audio"]


@pytest.mark.slow
def test_two_runs_to_one_output_at_once_keep_exactly_one_result(tmp_path: Path, weights: str) -> None:
    # Two real processes started together: both pass the start's check, and each finishes into the name only
    # if it is still free, so one result is kept whole and the other run says it was not (both once said rc 0).
    src = make_testsrc(tmp_path / "in.mp4", frames=25)
    out = tmp_path / "out.mkv"
    cmd = [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(out), "--model", weights, "--no-progress"]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=240) for run in runs]  # read while they run: a full pipe would stall them
    results = [(run.returncode, *output) for run, output in zip(runs, outputs, strict=True)]
    assert sorted(status for status, _, _ in results) == [0, 1], results
    (_, kept_summary, _), (_, _, refused) = sorted(results)
    assert "-> " in kept_summary and refused.count("\n") == 1, refused
    assert "appeared while this run wrote it" in refused or "exists; pass --overwrite" in refused
    assert kinds(streams(out)) == ["video", "audio"] and streams(out)["streams"][0]["nb_read_packets"] == "50"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []  # no temporary left


def test_a_single_run_removes_the_folder_an_interrupted_chunked_run_left(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_testsrc(tmp_path / "in.mp4")
    out = tmp_path / "out.mkv"
    with WorkFolder(out) as work:
        (work.path / "chunk-00000.nut").write_bytes(b"a finished segment")
    assert run(src, "-o", out, "--model", weights) == 0
    assert f"removed {work.path}: the unfinished chunks of an earlier --workers run" in capsys.readouterr().err
    assert not work.path.exists() and [p.name for p in tmp_path.glob(".*")] == []


def test_rgb_input_is_written_as_yuv_444(tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "rgb.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=0.2",
        "-c:v",
        "libx264rgb",
        "-pix_fmt",
        "rgb24",
        str(src),
    )
    out = tmp_path / "out.mkv"
    assert run(src, "-o", out, "--model", weights, "--codec", "ffv1") == 0
    err = capsys.readouterr().err
    assert err == f"note: {src} is RGB (RGB24); it is written as YUV444P8 with the usual colour for its size\n"
    video = streams(out)["streams"][0]
    assert (video["pix_fmt"], video["nb_read_packets"]) == ("yuv444p", "10")

    def first_frame(path: Path) -> bytes:
        cmd = [FFMPEG, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        return subprocess.run(cmd, capture_output=True, check=True).stdout

    a, b = first_frame(src), first_frame(out)  # a source frame, through 8-bit YUV and back
    assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 4


def test_frames_too_large_for_the_memory_are_refused_up_front(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a 16000x16000 input on a machine with less than 30 GiB: VapourSynth aborted the process (exit 134).
    src = make_testsrc(tmp_path / "in.mp4")
    monkeypatch.setattr(transcode, "memory_limit", lambda: 100_000, raising=False)
    assert run(src, "-o", tmp_path / "out.mkv", "--model", weights) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is 64x48: frames that large need at least 0.0 GiB of memory here" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the address-space limit (ulimit -v) is set the Linux way")
def test_a_real_16000_pixel_square_input_is_refused_in_one_line(tmp_path: Path, weights: str) -> None:
    # One grey frame, 16000x16000, under an 8 GiB address-space limit (any machine, whatever its memory):
    # decoding it once aborted the whole process (exit 134, "terminate called") and left a 0-byte .part.
    src = tmp_path / "huge.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16000x16000:r=1", "-frames:v", "1", "-c:v", "ffv1", f"file:{src}")

    cmd = [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(tmp_path / "out.mkv"), "--model", weights]
    limited = ["sh", "-c", f'ulimit -v {8 << 20} && exec "$@"', "sh", *cmd]  # KiB; no preexec_fn in a threaded test
    done = subprocess.run(limited, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and "is 16000x16000: frames that large need at least" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []


@pytest.mark.parametrize(("call", "shown"), [("sys.exit(0)", "sys.exit(0)"), ("sys.exit('bye')", "sys.exit('bye')")])
def test_a_script_that_exits_is_a_failure_that_says_so(
    tmp_path: Path, call: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "exits.vpy"
    script.write_text(
        f"import sys\nimport vapoursynth as vs\nvs.core.std.BlankClip(format=vs.YUV420P8).set_output()\n{call}\n"
    )
    out = tmp_path / "out.mkv"
    assert main(["render", str(script), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    expected = f"{script} stopped with {shown} before it could be rendered; a script ends with clip.set_output()"
    assert err == f"vs-superslomo render: error: {expected}\n"
    assert not out.exists()


def test_rotated_phone_video_gives_no_odd_size_warning(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = make_testsrc(tmp_path / "plain.mp4", audio=False)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))  # rotation side data
    assert run(rotated, "-o", tmp_path / "out.mp4", "--model", weights) == 0
    assert capsys.readouterr().err == ""
    video = streams(tmp_path / "out.mp4")["streams"][0]
    assert (video["width"], video["height"]) == (48, 64)  # upright, as it plays


def test_sigterm_removes_the_partial_file_and_says_so(tmp_path: Path, weights: str) -> None:
    src = make_testsrc(tmp_path / "in.mp4", frames=50)
    out = tmp_path / "out.mkv"
    command = [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(out), "--model", weights, "--factor", "8"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not list(tmp_path.glob(".out.mkv.*.part.mkv")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the job ended before it could be stopped"
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.rstrip().endswith("(the partial file was removed)"), err
    assert not out.exists() and list(tmp_path.glob(".out.mkv*")) == []
