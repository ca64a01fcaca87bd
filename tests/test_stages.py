"""Where the time goes: stage marks, VapourSynth's filter timings, and the command line's --stages."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model, random_frames

from vs_superslomo import stages, superslomo
from vs_superslomo.cli import main
from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.weights import save_model


def _row(times: stages.StageTimes, name: str) -> tuple[float, int, dict[str, float]]:
    (found,) = [(s, c, t) for n, s, c, t in times.rows() if n == name]
    return found


def test_a_stage_inside_another_counts_once_per_thread() -> None:
    assert stages.active() is None
    with stages.timed("outside any collection"):  # nothing to collect into: no error, no record
        pass
    with stages.collecting() as times:
        assert stages.active() is times

        def work() -> None:
            with stages.timed("outer"):
                time.sleep(0.05)
                with stages.timed("inner"):
                    time.sleep(0.1)

        worker = threading.Thread(target=work, name="worker")
        worker.start()
        work()
        worker.join()
    assert stages.active() is None
    outer, inner = _row(times, "outer"), _row(times, "inner")
    assert outer[1] == inner[1] == 2
    assert 0.1 <= outer[0] < 0.18, outer  # the outer stage's own 2 × 0.05 s, without the inner 2 × 0.1 s
    assert 0.2 <= inner[0] < 0.3, inner
    assert set(outer[2]) == {"MainThread", "worker"}
    assert "outside any collection" not in {row[0] for row in times.rows()}
    table = times.table()
    assert "outer" in table and "inner" in table and "worker" in table


def test_vapoursynth_filters_are_timed_by_vapoursynth_and_python_callbacks_by_their_marks() -> None:
    frames = random_frames(4, 32, 48, seed=2)
    with stages.collecting() as times:
        clip = vs.core.resize.Bicubic(clip_from_arrays(frames), width=64, height=48)
        out = superslomo(clip, 2, model=make_model(), backend="torch", flow="dis")
        times.watch(out)
        for n in range(out.num_frames):
            out.get_frame(n)
    names = {row[0] for row in times.rows()}
    # The filter's own stages, each pair once; VapourSynth's resize by its own timing; ModifyFrame (the filter's
    # callback, whose time the marks hold) never.
    assert {"motion: DIS", "network: interpolation U-Net (torch)", "confidence", "fallback to blend"} <= names
    assert _row(times, "motion: DIS")[1] == 6  # three pairs, both ways
    assert "VapourSynth Bicubic" in names and "VapourSynth ModifyFrame" not in names
    assert vs.core.timings.enabled is False  # as it was before


def test_command_line_prints_the_stages_after_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    save_model(make_model(), tmp_path / "tiny.safetensors")
    src = tmp_path / "in.y4m"
    with open(src, "wb") as fh:
        vs.core.std.BlankClip(width=48, height=32, format=vs.YUV420P8, length=4, fpsnum=10).output(fh, y4m=True)
    args = [str(src), "-o", str(tmp_path / "out.y4m"), "--model", str(tmp_path / "tiny.safetensors"), "--stages"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "4 frames at 10 fps" in captured.out and "where the time went" not in captured.out
    assert "where the time went" in captured.err and "since the process started" in captured.err
    assert "encode: writing to ffmpeg or the file" in captured.err and "the first frame after" in captured.err
    assert main([*args, "--overwrite", "--workers", "1", "--chunk-seconds", "1"]) == 1
    assert "--stages times a single run" in capsys.readouterr().err
