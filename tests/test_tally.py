"""The summary line's counts (held frames replaced, scene cuts kept), where the networks ran, and stretched
audio as long as the video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model

from vs_superslomo.cli import main
from vs_superslomo.frameplan import CUT_PROP, HELD_PROP, NEXT_PROP
from vs_superslomo.tally import Tally, engine_text
from vs_superslomo.weights import save_model

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "examples" / "bbb_640x360.mp4"


def tagged(props: list[dict[str, int]]) -> vs.VideoNode:
    """A tiny clip whose frame n carries ``props[n]``."""
    blank = vs.core.std.BlankClip(width=8, height=8, format=vs.GRAY8, length=len(props))

    def tag(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        out.props.update(props[n])
        return out

    return vs.core.std.ModifyFrame(blank, blank, tag)


def test_held_frames_replaced_are_the_interpolated_held_positions() -> None:
    props = [
        {HELD_PROP: 0},  # a distinct frame, copied
        {HELD_PROP: 1, NEXT_PROP: 2},  # held, interpolated: replaced
        {HELD_PROP: 1},  # held, but copied (a still shot, or a cut): not replaced
        {HELD_PROP: 0, NEXT_PROP: 4},  # interpolated, not held
        {HELD_PROP: 1, NEXT_PROP: 5},
    ]
    tally = Tally()
    clip = tally.watch(tagged(props))
    for n in [4, 0, 1, 1, 2, 3]:  # any order, a frame requested twice counts once
        clip.get_frame(n)
    assert tally.held_replaced == 2 and tally.cuts == 0


def test_cuts_are_counted_by_pair_whatever_the_order_and_repeats() -> None:
    tally = Tally()
    # Two pairs: one starting at source frame 0 (three copies), one at frame 2 (one copy).
    clip = tally.watch(tagged([{}, {CUT_PROP: 0}, {CUT_PROP: 0}, {CUT_PROP: 0}, {}, {CUT_PROP: 2}, {}]))
    for n in [5, 2, 1, 2, 0, 3, 6, 4]:
        clip.get_frame(n)
    assert tally.cuts == 2 and tally.cut_pairs == {0, 2}


def test_engine_text_names_backend_device_and_precision() -> None:
    assert engine_text(-1, None, "torch") == "torch on cpu, fp32"
    assert engine_text(-1, None, None).endswith(" on cpu, fp32")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_model(make_model(), path)
    return str(path)


@pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs the bestsource plugin")
def test_summary_line_names_the_backend_and_counts(
    tmp_path: Path, weights: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.y4m"
    argv = [str(BUNDLED), "-o", str(out), "--model", weights, "--end", "0.2", "--device", "cpu", "--backend", "torch"]
    assert main([*argv, "--dedup"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "; networks: torch on cpu, fp32; " in line
    assert "; 0 held frames replaced; 0 scene cuts kept; " in line  # the bundled clip has neither
    assert main([*argv, "--overwrite", "--no-sc"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "networks: torch on cpu, fp32" in line and "held frames" not in line and "scene cuts" not in line


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None or not hasattr(vs.core, "bs"), reason="needs ffmpeg, bestsource")
def test_stretched_audio_lasts_as_long_as_the_video(tmp_path: Path, weights: str) -> None:
    out = tmp_path / "slow.mp4"
    argv = [str(BUNDLED), "-o", str(out), "--model", weights, "--factor", "4", "--slowmo", "--audio", "stretch"]
    assert main([*argv, "--codec", "x264", "--crf", "40"]) == 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    durations = {s["codec_type"]: float(s["duration"]) for s in json.loads(probe.stdout)["streams"]}
    assert durations["video"] == pytest.approx(48 * 4 / 25)
    assert abs(durations["audio"] - durations["video"]) < 1 / 25  # within one frame
