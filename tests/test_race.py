"""The whole-process race against minterpolate and FlowFPS, and the GPU check's command, run for real (small)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vs_superslomo.cli import main
from vs_superslomo.race import BUNDLED, STARTUP_FRAMES, RaceResult, race, table

pytestmark = pytest.mark.slow

# What a race runs: ffmpeg for minterpolate and the encodes, VapourSynth and the vspipe beside this Python for FlowFPS.
_MISSING = (
    "ffmpeg is not installed" if shutil.which("ffmpeg") is None
    else "no VapourSynth" if importlib.util.find_spec("vapoursynth") is None
    else "vspipe is not beside this Python" if not Path(sys.executable).with_name("vspipe").exists()
    else None
)  # fmt: skip
needs_the_tools = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


@needs_the_tools
def test_every_tool_writes_twice_the_frames_and_is_timed() -> None:
    results = race(BUNDLED, 2, 1, (64, 36), also=["--scale 0.5"])
    assert [r.tool for r in results] == ["vs-superslomo", "vs-superslomo --scale 0.5", "minterpolate", "FlowFPS"]
    assert results[1].command.endswith("--scale 0.5") and "ours1.mp4" in results[1].command
    ours = results[0]
    assert ours.output_frames == results[1].output_frames == results[3].output_frames == 96  # 48 frames in
    assert 90 <= results[2].output_frames <= 96  # minterpolate's own rate conversion drops a few at the end
    assert all(len(r.seconds) == 1 and r.median > 0 and r.input_frames == 48 for r in results)
    assert all(r.startup is None and r.per_frame is None for r in results)
    assert "| minterpolate |" in table(results, "64×36") and "start-up" not in table(results, "64×36")


@needs_the_tools
def test_startup_runs_time_every_tool_on_the_first_frames_alone() -> None:
    results = race(BUNDLED, 2, 1, (64, 36), startup=True)
    assert [r.tool for r in results] == ["vs-superslomo", "minterpolate", "FlowFPS"]
    for r in results:
        assert len(r.startup_seconds) == 1 and r.startup is not None and r.per_frame is not None
        assert r.per_frame == pytest.approx((r.median - r.startup) / (48 - STARTUP_FRAMES))
    # Our start-up imports torch and loads the networks: longer than ffmpeg's.
    ours, minterpolate = results[0].startup, results[1].startup
    assert ours is not None and minterpolate is not None and ours > minterpolate
    text = table(results, "64×36")
    assert text.splitlines()[0].endswith("| start-up s | ms a frame after it |")
    assert all(line.count("|") == 8 for line in text.splitlines())


@needs_the_tools
def test_a_webm_given_by_a_relative_path_races_at_its_own_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vspipe runs the FlowFPS script from the script's folder, and a WebM holds no x264: the race must take the
    clip by its whole path and cut its first frames into a file that holds them."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10:duration=1", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=1", "-shortest", "-c:v", "libvpx-vp9", "-c:a", "libopus",
         str(tmp_path / "clip.webm")],
        check=True,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    results = race(Path("clip.webm"), 2, 1, startup=True)
    assert [r.output_frames for r in results if r.tool != "minterpolate"] == [20, 20]
    assert all(r.input_frames == 10 and r.startup is not None for r in results)


def test_the_cost_a_frame_needs_more_frames_than_the_start_up_run() -> None:
    short = RaceResult("x", "x", [2.0], 4, STARTUP_FRAMES, [1.5])
    assert short.startup == 1.5 and short.per_frame is None
    assert RaceResult("x", "x", [3.0, 5.0, 4.0], 8, 12, [1.0, 2.0, 1.5]).per_frame == pytest.approx(0.25)


def test_gpu_check_dry_run_writes_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu.md"
    argv = ["gpu-check", "--device", "cpu", "--size", "96x64", "--pairs", "1", "--reps", "1", "--out", str(out)]
    assert main(argv) == 0
    written = out.read_text()
    assert "| the same frames twice, bit for bit | yes |" in written and "| bound by |" in written
    assert written.strip() == capsys.readouterr().out.strip()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")
def test_gpu_check_without_cuda_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpu-check", "--out", str(tmp_path / "gpu.md")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("no CUDA device here: nothing measured (run it on a machine with a GPU)")
    )
    assert not (tmp_path / "gpu.md").exists()
