"""The summary line's counts (held frames replaced, scene cuts kept), where the networks ran, and stretched
audio as long as the video."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model

from vs_superslomo.cli import main
from vs_superslomo.tally import CUT_PROP, HELD_PROP, NEXT_PROP, Tally, count_cuts, engine_text, source_positions
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
    assert tally.held_replaced == 2 and tally.cut_frames == []


def test_cut_frames_are_recorded_once() -> None:
    tally = Tally()
    clip = tally.watch(tagged([{}, {CUT_PROP: 1}, {CUT_PROP: 1}, {}]))
    for n in [2, 1, 2, 0, 3]:
        clip.get_frame(n)
    assert sorted(tally.cut_frames) == [1, 2]


def test_cuts_are_counted_by_pair_at_integer_factors() -> None:
    # Factor 4: source pair (i, i + 1) holds output frames 4i + 1 .. 4i + 3. Cuts after source frames 1 and 2.
    position = source_positions(6, Fraction(4), None, Fraction(100))
    assert count_cuts([5, 6, 7, 9, 10, 11], position) == 2
    assert count_cuts([], position) == 0
    assert count_cuts([7, 5, 6], position) == 1  # the order frames were rendered in does not matter


def test_adjacent_cut_pairs_at_a_fractional_factor_count_twice() -> None:
    # Factor 5/2: positions 0, 0.4, 0.8, 1.2, 1.6, 2.0: frames 2 and 3 are consecutive but in pairs (0, 1)
    # and (1, 2), with source frame 1 between them and no output frame on it.
    position = source_positions(4, Fraction(5, 2), None, Fraction(50))
    assert count_cuts([1, 2, 3, 4], position) == 2
    assert count_cuts([1, 2], position) == 1


def test_held_positions_inside_one_cut_pair_count_once() -> None:
    # dedup at factor 2: a cut pair (A, B) = (0, 2) with frame 1 held; its copies are output frames 1, 2, 3
    # (position 1 is the held frame, flagged too).
    position = source_positions(4, Fraction(2), None, Fraction(50))
    assert count_cuts([1, 2, 3], position) == 1


def test_cuts_with_timestamps() -> None:
    times = [Fraction(0), Fraction(1, 10), Fraction(3, 10), Fraction(4, 10)]
    position = source_positions(4, Fraction(1), times, Fraction(10))  # output frame n at n / 10 s
    assert [position(n) for n in range(4)] == [0, 1, Fraction(3, 2), 2]
    assert count_cuts([2], position) == 1


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
