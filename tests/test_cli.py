"""The file-to-file command: end to end through ffmpeg/ffprobe when present, its errors, Ctrl-C."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
import vapoursynth as vs
from helpers import make_model, needs_ffmpeg, random_frames

from vs_superslomo import encode, superslomo, transcode
from vs_superslomo.allocator import tuned_environment
from vs_superslomo.backends import load_nets
from vs_superslomo.cli import main
from vs_superslomo.colour import source_colour, to_rgb
from vs_superslomo.errors import JobError
from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.job import Job, parse_factor, parse_fps, parse_time
from vs_superslomo.options import FilterOptions
from vs_superslomo.streams import atempo_chain
from vs_superslomo.transcode import run_job
from vs_superslomo.weights import save_model

FFMPEG, FFPROBE = shutil.which("ffmpeg") or "", shutil.which("ffprobe") or ""  # "": not installed


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_model(make_model(), path)
    return str(path)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def lavfi_clip(
    path: Path,
    *,
    size: str = "96x64",
    rate: int = 10,
    seconds: int = 2,
    pix: str = "yuv420p",
    colour: tuple[str, str, str, str] = ("bt709", "bt709", "bt709", "tv"),
    audio: bool = True,
) -> Path:
    space, primaries, trc, rng = colour
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    cmd += [
        "-c:v",
        "libx264",
        "-pix_fmt",
        pix,
        "-colorspace",
        space,
        "-color_primaries",
        primaries,
        "-color_trc",
        trc,
        "-color_range",
        rng,
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


def probe(path: Path) -> dict[str, dict[str, str]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    streams = {s["codec_type"]: s for s in data["streams"]}
    streams["format"] = data["format"]
    return streams


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


# --- argument parsing -------------------------------------------------------------------------------


def test_rate_and_time_parsing() -> None:
    assert parse_factor("2") == 2 and parse_factor("5/2") == Fraction(5, 2) and parse_factor("2.5") == Fraction(5, 2)
    assert parse_fps("60000/1001") == Fraction(60000, 1001) and parse_fps("59.94") == Fraction(60000, 1001)
    assert (
        parse_fps("23.976") == Fraction(24000, 1001) and parse_fps("60") == 60 and parse_fps("12.5") == Fraction(25, 2)
    )
    assert (
        parse_time("1:05.5") == Fraction(131, 2)
        and parse_time("1:00:00") == 3600
        and parse_time("2.5") == Fraction(5, 2)
    )
    for bad, parse in (
        ("1/2", parse_factor),
        ("x", parse_factor),
        ("0", parse_fps),
        ("1::2", parse_time),
        ("-1", parse_time),
    ):
        with pytest.raises(JobError):
            parse(bad)
    assert atempo_chain(Fraction(1, 8)) == "atempo=0.5,atempo=0.5,atempo=0.5"
    assert atempo_chain(Fraction(2, 5)) == "atempo=0.5,atempo=0.8"


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["in.mp4", "-o", "out.mp4", "--factor", "1/2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "bad factor '1/2': it must be at least 1" in err and "--help" in err
    assert main(["in.mp4", "-o", "out.mp4", "--device", "gpu0"]) == 1
    assert "bad --device 'gpu0'" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["inf", "nan", "0", "-1"])
def test_chunk_seconds_must_be_a_positive_finite_number(
    tmp_path: Path, seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:  # inf was a 31-line OverflowError, its work folder left locked
        main(["in.mp4", "-o", str(tmp_path / "out.mkv"), "--workers", "1", "--chunk-seconds", seconds])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"--chunk-seconds must be a positive number of seconds, got {float(seconds):g}" in err
    assert os.listdir(tmp_path) == []


# --- end to end ---------------------------------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize(
    ("args", "frames", "rate", "seconds"),
    [
        ([], 40, "20/1", 2.0),
        (["--factor", "5/2"], 50, "25/1", 2.0),
        (["--fps", "59.94"], 120, "60000/1001", 2.002),
    ],
)
def test_frame_rate_modes_keep_duration_audio_and_colour(
    tmp_path: Path,
    weights: str,
    args: list[str],
    frames: int,
    rate: str,
    seconds: float,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = lavfi_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    assert main([str(src), "-o", str(out), "--model", weights, *args]) == 0
    assert "in.mp4: 20 frames at 10 fps (2.00 s) -> " in capsys.readouterr().out
    info = probe(out)
    video, audio = info["video"], info["audio"]
    assert int(video["nb_read_frames"]) == frames == math.ceil(20 * Fraction(frames, 20))
    assert video["r_frame_rate"] == rate
    assert float(video["duration"]) == pytest.approx(seconds, abs=0.01)
    assert float(audio["duration"]) == pytest.approx(2.0, abs=0.05)
    assert (
        video["pix_fmt"],
        video["color_space"],
        video["color_primaries"],
        video["color_transfer"],
        video["color_range"],
    ) == ("yuv420p", "bt709", "bt709", "bt709", "tv")
    assert leftovers(tmp_path) == []
    assert not list(tmp_path.glob("*.bsindex"))  # the index never lands beside the input


@needs_ffmpeg
def test_slow_motion_drops_or_stretches_audio(tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = lavfi_clip(tmp_path / "in.mp4")
    assert main([str(src), "-o", str(tmp_path / "drop.mp4"), "--model", weights, "--factor", "4", "--slowmo"]) == 0
    assert "audio dropped (slow motion" in capsys.readouterr().out
    info = probe(tmp_path / "drop.mp4")
    assert "audio" not in info and info["video"]["r_frame_rate"] == "10/1" and info["video"]["nb_read_frames"] == "80"
    assert float(info["video"]["duration"]) == pytest.approx(8.0, abs=0.01)
    stretch = tmp_path / "stretch.mkv"
    assert (
        main([str(src), "-o", str(stretch), "--model", weights, "--factor", "4", "--slowmo", "--audio", "stretch"]) == 0
    )
    info = probe(stretch)
    assert float(info["format"]["duration"]) == pytest.approx(8.0, abs=0.1)
    assert info["audio"]["codec_name"] == "aac"


@needs_ffmpeg
def test_trim_and_ffv1_and_ten_bit_444_with_bt601_full_range(tmp_path: Path, weights: str) -> None:
    src = lavfi_clip(tmp_path / "in.mp4", pix="yuv444p10le", colour=("smpte170m", "smpte170m", "smpte170m", "pc"))
    out = tmp_path / "out.mkv"
    assert (
        main([str(src), "-o", str(out), "--model", weights, "--start", "0.5", "--end", "1.5", "--codec", "ffv1"]) == 0
    )
    info = probe(out)
    video = info["video"]
    assert (video["codec_name"], video["nb_read_frames"], video["pix_fmt"]) == ("ffv1", "20", "yuv444p10le")
    assert (video["color_space"], video["color_primaries"], video["color_transfer"], video["color_range"]) == (
        "smpte170m",
        "smpte170m",
        "smpte170m",
        "pc",
    )
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.06)


def test_without_ffmpeg_a_lossless_y4m_is_written(tmp_path: Path, weights: str) -> None:
    tmp_path = tmp_path / "a folder's name"  # the printed command quotes it
    tmp_path.mkdir()
    src = tmp_path / "in.y4m"
    clip = vs.core.std.BlankClip(width=48, height=32, format=vs.YUV420P8, length=5, fpsnum=10, color=[100, 128, 128])
    with open(src, "wb") as fh:
        clip.output(fh, y4m=True)
    logs: list[str] = []
    umask = os.umask(0o022)
    try:
        summary = run_job(
            Job(src, tmp_path / "out.mp4", options=FilterOptions(model=weights), ffmpeg=None, progress=False),
            log=logs.append,
        )
    finally:
        os.umask(umask)
    assert summary.output == tmp_path / "out.y4m" and summary.output_frames == 10
    assert summary.output.stat().st_mode & 0o777 == 0o644  # what the umask gives, not mkstemp's 0600
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []
    back = vs.core.bs.VideoSource(str(summary.output), cachemode=0)
    assert (back.num_frames, back.fps_num, back.fps_den, back.format.id) == (10, 20, 1, vs.YUV420P8)
    assert any("ffmpeg not found" in line for line in logs)
    (command,) = [line.removeprefix("encode it with: ") for line in logs if line.startswith("encode it with: ")]
    assert shlex.split(command)[:5] == ["ffmpeg", "-i", f"file:{summary.output}", "-i", f"file:{src}"]


def test_flow_option_reaches_the_filter(tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "moving.y4m"
    rgb = clip_from_arrays(random_frames(3, 32, 48, seed=5, grain=4), fps=(10, 1))
    with open(src, "wb") as fh:
        vs.core.resize.Bicubic(rgb, format=vs.YUV444P8, matrix_s="709").output(fh, y4m=True)
    outputs = {}
    for flow in ("net", "dis"):
        job = Job(
            src, tmp_path / f"{flow}.y4m", options=FilterOptions(model=weights, flow=flow), ffmpeg=None, progress=False
        )
        outputs[flow] = run_job(job, log=lambda _: None).output.read_bytes()
    assert outputs["net"] != outputs["dis"]
    estimated = Job(
        src,
        tmp_path / "estimated.y4m",
        options=FilterOptions(model=weights, flow="dis", splat=False),
        ffmpeg=None,
        progress=False,
    )
    assert run_job(estimated, log=lambda _: None).output.read_bytes() != outputs["dis"]
    with pytest.raises(SystemExit):
        main([str(src), "-o", str(tmp_path / "x.y4m"), "--flow", "raft"])
    assert "invalid choice: 'raft'" in capsys.readouterr().err


def test_scene_cut_threshold_reaches_the_filter(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = random_frames(1, 32, 48, seed=4, grain=4)[0]
    src = tmp_path / "cut.y4m"  # a picture, then its negative: a cut at the default threshold
    with open(src, "wb") as fh:
        rgb = clip_from_arrays([picture, 1 - picture], fps=(10, 1))
        vs.core.resize.Bicubic(rgb, format=vs.YUV444P8, matrix_s="709").output(fh, y4m=True)

    def run(name: str, **options: Any) -> bytes:
        job = Job(
            src,
            tmp_path / name,
            options=FilterOptions(model=weights, flow="dis", **options),
            ffmpeg=None,
            progress=False,
        )
        return run_job(job, log=lambda _: None).output.read_bytes()

    default, never = run("default.y4m"), run("never.y4m", sc_threshold=1.0)
    assert default != never and never == run("no-sc.y4m", sc=False)  # T = 1: no pair is a cut
    assert (
        main([str(src), "-o", str(tmp_path / "cli.y4m"), "--model", weights, "--flow", "dis", "--sc-threshold", "1"])
        == 0
    )
    assert (tmp_path / "cli.y4m").read_bytes() == never
    capsys.readouterr()
    assert main([str(src), "-o", str(tmp_path / "bad.y4m"), "--model", weights, "--sc-threshold", "2"]) == 1
    assert "--sc-threshold must be in (0, 1] or None (props only), got 2.0" in capsys.readouterr().err
    assert not (tmp_path / "bad.y4m").exists()


def test_backend_option_reaches_the_filter(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str | None] = []

    def recording(backend: str | None, *args: Any) -> Any:
        asked.append(backend)
        return load_nets(backend, *args)

    monkeypatch.setattr("vs_superslomo.engine.load_nets", recording)
    src = tmp_path / "in.y4m"
    rgb = clip_from_arrays(random_frames(2, 16, 16, seed=2), fps=(10, 1))
    with open(src, "wb") as fh:
        vs.core.resize.Bicubic(rgb, format=vs.YUV444P8, matrix_s="709").output(fh, y4m=True)
    assert main([str(src), "-o", str(tmp_path / "out.y4m"), "--model", weights, "--backend", "torch"]) == 0
    assert asked == ["torch"]
    with pytest.raises(SystemExit):
        main([str(src), "-o", str(tmp_path / "x.y4m"), "--backend", "tensorrt"])
    assert "invalid choice: 'tensorrt'" in capsys.readouterr().err


# --- errors -------------------------------------------------------------------------------------------


@needs_ffmpeg
def test_error_cases_are_one_line_and_leave_nothing(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = lavfi_clip(tmp_path / "in.mp4", seconds=1)
    (tmp_path / "junk.mp4").write_text("not a video")
    (tmp_path / "exists.mp4").write_bytes(b"keep me")
    cases = [
        ([str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")], "does not exist"),
        ([str(tmp_path / "junk.mp4"), "-o", str(tmp_path / "o.mp4")], "cannot read"),
        ([str(src), "-o", str(tmp_path / "exists.mp4")], "exists; pass --overwrite"),
        ([str(src), "-o", str(tmp_path / "o.mp4"), "--codec", "ffv1"], "ffv1 needs a .mkv"),
        ([str(src), "-o", str(tmp_path / "nodir" / "o.mp4")], "does not exist"),
        ([str(src), "-o", str(tmp_path / "o.mp4"), "--crf", "99"], "bad --crf 99"),
        ([str(src), "-o", str(tmp_path / "o.mp4"), "--start", "5"], "select no frames"),
        ([str(src), "-o", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "none.ckpt")], "no such weights file"),
    ]
    for args, message in cases:
        assert main([*args, "--model", weights] if "--model" not in args else args) == 1
        err = capsys.readouterr().err
        assert err.startswith("vs-superslomo: error: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep me"
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []


@needs_ffmpeg
def test_no_space_is_reported_and_the_partial_file_removed(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = lavfi_clip(tmp_path / "in.mp4", seconds=1)

    def full_disk(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(encode, "write_y4m", full_disk)
    for name in ("o.mp4", "o.y4m"):
        assert main([str(src), "-o", str(tmp_path / name), "--model", weights]) == 1
        assert "no space left on the device while writing" in capsys.readouterr().err
        assert not (tmp_path / name).exists()
    assert leftovers(tmp_path) == []


@needs_ffmpeg
def test_ctrl_c_stops_cleanly_and_removes_the_temporary_file(tmp_path: Path, weights: str) -> None:
    src = lavfi_clip(tmp_path / "in.mp4", size="320x240", rate=25, seconds=8)
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(out), "--model", weights, "--factor", "8"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be interrupted"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert not out.exists() and leftovers(tmp_path) == []


def mounted_tmpfs(folder: Path, options: str, why: str) -> Iterator[Path]:
    """A 40 KiB tmpfs mounted on ``folder`` with ``options`` for the test, unmounted after; skipped (``why``)
    where mounting is not allowed."""
    folder.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"{options}size=40k", "tmpfs", str(folder)]
    if subprocess.run(command, capture_output=True).returncode != 0:
        pytest.skip(why)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 KiB tmpfs: a real full disk, where mounting is allowed (root); skipped elsewhere."""
    yield from mounted_tmpfs(tmp_path / "disk", "", "cannot mount a small tmpfs here (needs root)")


@needs_ffmpeg
def test_a_full_disk_while_ffmpeg_writes_its_trailer_keeps_the_old_file(
    tmp_path: Path, tiny_disk: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # ffmpeg 5.1 exits 0 when the trailer does not fit; its output is still not a video.
    src = lavfi_clip(tmp_path / "in.mp4", size="320x240", seconds=3, audio=False)
    out = tiny_disk / "out.mp4"
    out.write_bytes(b"keep me")
    assert main([str(src), "-o", str(out), "--model", weights, "--overwrite", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the device while writing" in err, err
    assert out.read_bytes() == b"keep me" and leftovers(tiny_disk) == []


@needs_ffmpeg
def test_an_ffmpeg_that_exits_0_with_a_truncated_file_is_not_trusted(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffmpeg"
    # The real ffmpeg, then the file it wrote cut to half its size, silently and with exit status 0.
    wrapper.write_text(
        f'#!/bin/sh\n"{FFMPEG}" "$@" || exit $?\nfor last; do :; done\nlast="${{last#file:}}"\n'
        'truncate -s $(( $(stat -c %s "$last") / 2 )) "$last"\n'
    )
    wrapper.chmod(0o755)
    (bin_dir / "ffprobe").symlink_to(FFPROBE)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    src = lavfi_clip(tmp_path / "in.mp4", size="320x240", seconds=3)
    for name in ("out.mkv", "out.mp4"):
        out = tmp_path / name
        out.write_bytes(b"keep me")
        assert main([str(src), "-o", str(out), "--model", weights, "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("vs-superslomo: error: ffmpeg wrote") and err.count("\n") == 1, err
        assert "(nothing was kept)" in err and out.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []


def _y4m_input(path: Path, frames: int = 2) -> Path:
    clip = vs.core.std.BlankClip(
        width=48, height=32, format=vs.YUV420P8, length=frames, fpsnum=10, color=[90, 128, 128]
    )
    with open(path, "wb") as fh:
        clip.output(fh, y4m=True)
    return path


def test_a_huge_factor_is_a_one_line_error_at_once(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _y4m_input(tmp_path / "in.y4m")
    started = time.perf_counter()
    assert main([str(src), "-o", str(tmp_path / "out.y4m"), "--model", weights, "--factor", "1000000"]) == 1
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert err.startswith("vs-superslomo: error: factor 1000000 is above the limit of") and err.count("\n") == 1


def test_an_error_while_frames_render_is_one_line(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vs_superslomo import engine

    def out_of_memory(*_args: object) -> None:
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.Interpolator, "interpolate_with_confidence", out_of_memory)
    src = _y4m_input(tmp_path / "in.y4m")
    assert main([str(src), "-o", str(tmp_path / "out.y4m"), "--model", weights, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "vs-superslomo: error: a frame failed to render: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    )
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.y4m").exists()


def test_ctrl_c_whose_interrupt_vapoursynth_swallows_still_stops_the_job(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python code runs inside VapourSynth's callbacks while it renders; in a weakref callback an exception is
    # only printed and the render goes on. Simulated: Ctrl-C's handler runs, its KeyboardInterrupt is dropped.
    src = _y4m_input(tmp_path / "in.y4m", frames=20)
    make_bar = transcode.progress_bar

    def bar(job: Job, total: int) -> tuple[object, object]:
        update, close = make_bar(job, total)

        def pressed_at_3(done: int, total_: int) -> None:
            if done == 3:
                handler = signal.getsignal(signal.SIGINT)
                assert callable(handler)
                with contextlib.suppress(KeyboardInterrupt):
                    handler(signal.SIGINT, None)
            update(done, total_)

        return pressed_at_3, close

    monkeypatch.setattr(transcode, "progress_bar", bar)
    out = tmp_path / "out.y4m"
    assert main([str(src), "-o", str(out), "--model", weights, "--no-progress"]) == 130
    assert capsys.readouterr().err.startswith("vs-superslomo: interrupted")
    assert not out.exists() and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own handler is back


@pytest.mark.parametrize("delay", [0.3, 0.6])
def test_ctrl_c_while_starting_up_is_exit_130_without_a_traceback(tmp_path: Path, weights: str, delay: float) -> None:
    # Within 0.6 s torch and VapourSynth are still loading (test_ctrl_c_stops_cleanly_... covers rendering).
    src = _y4m_input(tmp_path / "in.y4m", frames=50)
    command = [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(tmp_path / "out.y4m"), "--model", weights]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # this checkout's package
    proc = subprocess.Popen([*command, "--factor", "8"], stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(delay)
    assert proc.poll() is None, "the job ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.startswith("vs-superslomo: interrupted") and err.count("\n") == 1, err


def test_the_command_line_starts_again_once_with_the_allocator_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Exec(Exception):
        pass

    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, args: list[str], env: dict[str, str]) -> NoReturn:
        calls.append((path, args, env))
        raise Exec

    monkeypatch.setattr(os, "execve", execve)
    args = [str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "out.mp4")]
    monkeypatch.setattr(sys, "argv", ["vs-superslomo", *args])
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    expected = tuned_environment(os.environ)
    if expected is None:
        pytest.skip("the C library is not glibc, or the allocator is set in this environment")
    with pytest.raises(Exec):
        main()
    assert calls == [(sys.executable, [sys.executable, "-m", "vs_superslomo", *args], expected)]
    for name in ("GLIBC_TUNABLES", "VS_SUPERSLOMO_TUNED"):  # as the new process finds them: no second exec
        monkeypatch.setenv(name, expected[name])
    assert main() != 0 and len(calls) == 1  # it ran (the input is missing)
    assert "missing.mp4" in capsys.readouterr().err
    # The programs it runs (ffmpeg, the other tools of a race) get the environment as the user had it.
    assert "GLIBC_TUNABLES" not in os.environ and "VS_SUPERSLOMO_TUNED" not in os.environ
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")  # the user's own: kept, and no exec
    assert main() != 0 and len(calls) == 1 and os.environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    assert main(args) != 0 and len(calls) == 1  # called from Python: never

    def refused(path: str, args: list[str], env: dict[str, str]) -> NoReturn:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setattr(os, "execve", refused)
    assert main() != 0 and "missing.mp4" in capsys.readouterr().err  # could not start again: runs as it is


_LEAVING = """
import atexit, sys
from vs_superslomo.cli import entry

class Teardown:
    def __del__(self) -> None:  # runs in Python's teardown, which the program skips
        sys.stderr.write("teardown\\n")

keep = Teardown()
atexit.register(lambda: sys.stderr.write("atexit\\n"))
sys.stdout.write("unflushed")  # no newline: still in the buffer when the program ends
sys.argv = ["vs-superslomo", *sys.argv[1:]]
entry()
"""


def test_the_program_ends_at_once_after_its_exit_functions_with_its_status_and_output(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    done = subprocess.run(
        [sys.executable, "-c", _LEAVING, str(missing), "-o", str(tmp_path / "out.mp4")],
        capture_output=True,
        text=True,
        env={**os.environ, "VS_SUPERSLOMO_TUNED": "1"},  # as if started again already: this script itself runs
    )
    assert done.returncode == 1 and done.stdout == "unflushed"
    assert "missing.mp4" in done.stderr and "atexit" in done.stderr
    assert "teardown" not in done.stderr  # ended before Python's own teardown
    assert not (tmp_path / "out.mp4").exists()


def _environment(pid: int) -> dict[str, str]:
    """The environment process ``pid`` started with (Linux's /proc)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").partition("=")[::2] for e in entries if e)


def _encoder_environment(pid: int) -> dict[str, str] | None:
    """The environment of process ``pid``'s ffmpeg child, once it has one. Other children (the ffprobe calls) may
    end between being listed and being read, so they are passed over."""
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in listing.read_text().split():
            try:
                words = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:2]  # a wrapper script's too
                if any(Path(w.decode(errors="replace")).name == "ffmpeg" for w in words):
                    return _environment(int(child))
            except (ProcessLookupError, FileNotFoundError):  # it ended while we looked
                continue
    return None


@needs_ffmpeg
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads processes through Linux's /proc")
def test_the_running_command_has_the_allocator_set_and_its_encoder_does_not(tmp_path: Path, weights: str) -> None:
    src = lavfi_clip(tmp_path / "in.mp4", size="320x240", rate=25, seconds=8)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "VS_SUPERSLOMO_TUNED")}
    if tuned_environment(env) is None:
        pytest.skip("the C library is not glibc, or the allocator is set in this environment")
    out = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "vs_superslomo", str(src), "-o", str(out), "--model", weights, "--factor", "8"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        encoder: dict[str, str] | None = None
        while encoder is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            encoder = _encoder_environment(proc.pid)
        assert encoder is not None, "the encoder never started"
        # Started again with them (glibc rewrites the variable's text as it reads it, so only its name is checked).
        assert "GLIBC_TUNABLES" in _environment(proc.pid)
        assert "GLIBC_TUNABLES" not in encoder  # ffmpeg: the user's own
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_audio_without_slowmo_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["in.mp4", "-o", "out.mp4", "--audio", "stretch"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "--audio stretch needs --slowmo" in err


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write in: a read-only tmpfs where mounting is allowed (root ignores modes)."""
    folder = tmp_path / "ro"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    yield from mounted_tmpfs(folder, "ro,", "cannot make a read-only folder here")


@needs_ffmpeg
def test_output_mistakes_name_the_real_cause_and_the_fix(
    tmp_path: Path, read_only_dir: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _y4m_input(tmp_path / "in.y4m")
    cases = [
        (tmp_path / "out", "has no extension, and ffmpeg picks the container by it: name it e.g. out.mp4"),
        (tmp_path / "x.webm", "WebM holds only VP8, VP9 or AV1 video, and --codec x264 is none of them; use .mp4"),
        (read_only_dir / "o.mp4", f"cannot write {read_only_dir / 'o.mp4'}: "),
    ]
    for out, message in cases:
        assert main([str(src), "-o", str(out), "--model", weights, "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("vs-superslomo: error: ") and message in err and err.count("\n") == 1, err
        assert ".part" not in err and not out.exists()
    assert "choose another output folder or make it writable" in err
    assert leftovers(tmp_path) == []


def test_cuda_without_cuda_says_so_in_command_line_terms(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    src = _y4m_input(tmp_path / "in.y4m")
    for device in ("cuda", "1"):
        assert main([str(src), "-o", str(tmp_path / "o.y4m"), "--model", weights, "--device", device]) == 1
        err = capsys.readouterr().err
        assert err == f"vs-superslomo: error: --device {device}: CUDA is not available here; use --device cpu\n"


@needs_ffmpeg
def test_a_damaged_input_is_salvaged_with_a_warning(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # With audio, which ffmpeg reads from the damaged file too (and complains about).
    whole = lavfi_clip(tmp_path / "whole.mkv", size="160x120", seconds=4)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a download that stopped half-way
    # The cut loses a frame before its end (B-frames): its timing has a hole, so it takes --fps (20 is 2x).
    for src, warned in ((whole, False), (cut, True)):
        args = [str(src), "-o", str(tmp_path / f"out_{src.name}"), "--model", weights, "--no-progress", "--fps", "20"]
        assert main(args) == 0
        err = capsys.readouterr().err
        assert (f"warning: {cut} looks damaged: its container promises 4.0" in err) == warned
        assert err.count("\n") == warned, err


@needs_ffmpeg
def test_odd_sized_420_input_comes_out_even_sized_with_a_warning(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # ffv1 stores 4:2:0 at odd sizes (x264 refuses them); VapourSynth cannot hold it: 97x65 decodes 96x64.
    src = tmp_path / "odd.mkv"
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=97x65:rate=10:duration=1,format=rgb24"]
    subprocess.run([*cmd, "-pix_fmt", "yuv420p", "-c:v", "ffv1", str(src)], check=True)
    out = tmp_path / "out.mkv"
    assert main([str(src), "-o", str(out), "--model", weights, "--no-progress", "--codec", "ffv1"]) == 0
    err = capsys.readouterr().err
    expected = "is 97x65 yuv420p, which VapourSynth holds only at even sizes: it decodes, and comes out, 96x64"
    assert err == f"warning: {src} {expected}\n"
    video = probe(out)["video"]
    assert (int(video["width"]), int(video["height"]), int(video["nb_read_frames"])) == (96, 64, 20)


# --- variable frame rate ----------------------------------------------------------------------------------


def vfr_clip(path: Path, audio: bool = False) -> Path:
    """The reliability issue's reproduction: 12 frames at 25 fps, then 13 at 12.5 fps (1.52 s)."""
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:duration=1.52", "-c:a", "aac"] if audio else []
    cmd += ["-vf", "settb=1/1000,setpts='N*40+if(gte(N\\,12)\\,(N-12)*40\\,0)'", "-c:v", "libx264"]
    cmd += ["-pix_fmt", "yuv420p", "-fps_mode", "passthrough", str(path)]
    subprocess.run(cmd, check=True)
    return path


def source_times(path: Path) -> list[Fraction]:
    """Each video frame's start time by ffprobe (packets in display order), independently of bestsource."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"]
    out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=True).stdout
    return sorted(Fraction(line.strip().rstrip(",")) for line in out.splitlines() if line.strip())


@needs_ffmpeg
def test_variable_frame_rate_input_keeps_its_timing_at_a_constant_rate(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = vfr_clip(tmp_path / "vfr.mkv")
    times = source_times(src)
    assert len(times) == 25 and times[12] == Fraction(48, 100) and times[13] == Fraction(56, 100)
    out = tmp_path / "out.mkv"
    assert main([str(src), "-o", str(out), "--model", weights, "--fps", "50", "--codec", "ffv1", "--no-progress"]) == 0
    assert "25 frames at a variable rate (~16.447 fps on average) (1.52 s) -> " in capsys.readouterr().out
    info = probe(out)
    assert (info["video"]["nb_read_frames"], info["video"]["r_frame_rate"]) == ("76", "50/1")  # 1.52 s at 50
    assert float(info["format"]["duration"]) == pytest.approx(1.52, abs=0.03)

    def planes(clip: vs.VideoNode, n: int) -> list[np.ndarray]:
        frame = clip.get_frame(n)
        return [np.asarray(frame[p]).astype(np.int16) for p in range(3)]

    source = vs.core.bs.VideoSource(str(src), cachemode=0)
    result = vs.core.bs.VideoSource(str(out), cachemode=0)
    for i, time_i in enumerate(times):
        n = time_i * 50  # the output frame at the source frame's own time: 0.48 s is frame 24
        assert n.denominator == 1
        got, want = planes(result, int(n)), planes(source, i)
        assert np.abs(got[0] - want[0]).max() <= 1, i  # luma: the same picture
        assert all(np.abs(g - w).mean() < 3 for g, w in zip(got[1:], want[1:], strict=True)), i  # 4:2:0 chroma
    # Between frames: through the filter on the same decode, every output frame's t against the definition.
    clip, starts = transcode._open(Job(src, out))
    assert starts == times
    rgb = superslomo(to_rgb(clip, source_colour(clip)), fps_num=50, timestamps=starts, model=weights)
    for frame in range(rgb.num_frames):
        left = max(i for i, s in enumerate(times) if s <= Fraction(frame, 50))
        t = Fraction(0) if left == 24 else (Fraction(frame, 50) - times[left]) / (times[left + 1] - times[left])
        props = rgb.get_frame(frame).props
        assert (props["SuperSloMoSource"], props["SuperSloMoT"]) == (left, float(t)), frame


@needs_ffmpeg
def test_variable_frame_rate_video_keeps_its_place_against_the_audio(tmp_path: Path, weights: str) -> None:
    src = vfr_clip(tmp_path / "vfr.mkv", audio=True)
    times = source_times(src)  # the muxer starts the video 23 ms after the audio (the AAC encoder's delay)
    assert probe(src)["audio"]["start_time"] == "0.000000" and times[0] == Fraction(23, 1000)
    clip, starts = transcode._open(Job(src, tmp_path / "o.mkv"))
    assert transcode._variable_timestamps(Job(src, tmp_path / "o.mkv", fps=Fraction(50)), clip, starts) == times
    out = tmp_path / "out.mkv"
    assert main([str(src), "-o", str(out), "--model", weights, "--fps", "50", "--no-progress"]) == 0
    info = probe(out)
    # 1.543 s of video at 50 fps, the first 23 ms (two frames) a copy of the first frame, as the audio plays.
    assert (info["video"]["nb_read_frames"], info["video"]["start_time"]) == ("78", "0.000000")
    assert info["audio"]["codec_name"] == "aac" and info["audio"]["start_time"] == "0.000000"  # copied


@needs_ffmpeg
def test_variable_frame_rate_without_fps_is_a_one_line_error(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = vfr_clip(tmp_path / "vfr.mkv")
    cases = [
        ([], "give --fps R for constant-rate output with every frame at its true time (e.g. --fps 50)"),
        (["--factor", "3"], "(e.g. --fps 75)"),
        (["--fps", "50", "--slowmo"], "--slowmo needs a constant rate: convert it with --fps R first"),
        (["--fps", "50", "--start", "0.2"], "--start/--end need a constant rate"),
    ]
    for args, message in cases:
        assert main([str(src), "-o", str(tmp_path / "o.mkv"), "--model", weights, *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("vs-superslomo: error: vfr.mkv has a variable frame rate (frames 40 to 80 ms apart); ")
        assert message in err and err.count("\n") == 1, err
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mkv").exists()


@needs_ffmpeg
def test_constant_rate_files_stay_on_the_factor_path(tmp_path: Path) -> None:
    # Matroska rounds 29.97 fps timestamps to whole milliseconds (33, 34, 33, ...): still constant.
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30000/1001:duration=2"]
    src = tmp_path / "ntsc.mkv"
    subprocess.run([*cmd, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], check=True)
    clip, starts = transcode._open(Job(src, tmp_path / "o.mkv"))
    assert starts is not None and len(set(b - a for a, b in itertools.pairwise(starts))) > 1  # rounded
    assert transcode._variable_timestamps(Job(src, tmp_path / "o.mkv"), clip, starts) is None
