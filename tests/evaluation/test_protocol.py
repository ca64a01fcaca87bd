"""The frame-drop protocol on tiny y4m clips: exact scores on a ramp, the crop that moved, windows and
their names, the held-frame protocols.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from helpers import (
    RAMP_START,
    RAMP_STEP,
    evaluate_window_named,
    make_model,
    random_frames,
)

from vs_superslomo import metrics
from vs_superslomo.cartoon import CARTOON_CLIPS
from vs_superslomo.errors import JobError
from vs_superslomo.evaluation import protocol
from vs_superslomo.frames import clip_from_arrays, read_frame

core = vs.core


pytestmark = pytest.mark.skipif(not hasattr(core, "bs"), reason="the bestsource plugin is not installed")


def test_crop_goes_where_content_moved_and_ignores_cuts() -> None:
    prev, real, nxt = (np.zeros((40, 60, 3), np.float32) for _ in range(3))
    prev[5:15, 5:15], real[20:30, 30:40], nxt[25:35, 45:55] = 1, 1, 1  # a square crossing the picture
    top, left, motion = protocol.box_motion(real, prev, nxt, 10)
    assert (top, left) == (20, 30) and motion == 1.0
    assert protocol.box_motion(nxt, prev, nxt, 10)[2] == 0.0  # real equals the next kept frame: a cut, no motion


def test_ramp_gives_exact_repeat_and_perfect_blend_at_the_right_frames(clips: Path) -> None:
    for result in evaluate_window_named(clips, "ramp", RAMP_START, [2, 4], flowfps=False):
        k = result.k
        last_kept = (protocol.WINDOW_LENGTH - 1) // k * k
        dropped = [j for j in range(1, last_kept) if j % k]
        for method in ("repeat", "blend"):
            assert [s.frame for s in result.scores[method]] == [RAMP_START + j for j in dropped]
            assert [s.t for s in result.scores[method]] == [Fraction(j % k, k) for j in dropped]
        # repeat is off by RAMP_STEP luma codes per frame since the last kept one, in every RGB channel.
        expected = [-20 * math.log10(RAMP_STEP * (j % k) / 219) for j in dropped]
        assert [s.psnr for s in result.scores["repeat"]] == pytest.approx(expected, abs=1e-3)
        # a linear cross-fade rebuilds a linear ramp exactly: infinite PSNR, reported as the cap.
        assert all(s.psnr == metrics.PSNR_CAP_DB and s.ssim == pytest.approx(1.0) for s in result.scores["blend"])


def test_default_windows_are_found_in_any_folder_that_holds_their_files(tmp_path: Path) -> None:
    for name in ("tupi-data__example.avi", "python3-mecavideo__balle1-vp9.avi", "notes.txt"):
        (tmp_path / name).touch()
    tupi = next(w for w in protocol.DEFAULT_WINDOWS if w.name == "tupi_cartoon")
    found = [(tupi, tmp_path / tupi.file), (protocol.HIGH_FPS_WINDOW, tmp_path / protocol.HIGH_FPS_WINDOW.file)]
    assert protocol.parse_windows(None, tmp_path) == found  # a held-out subset: the defaults it has, in order
    assert protocol.parse_windows("tupi@30, balle", tmp_path) == [(replace(tupi, start=30), found[0][1]), found[1]]
    assert protocol.HIGH_FPS_WINDOW.ks == (8,)


def test_window_and_names_are_checked(clips: Path) -> None:
    with pytest.raises(JobError, match="do not fit the clip's 44 frames; give an earlier start"):
        evaluate_window_named(clips, "ramp", 4, [2], flowfps=False)
    with pytest.raises(JobError, match="is no default window"):
        protocol.parse_windows("nosuchclip", clips)
    with pytest.raises(JobError, match="no such folder"):
        protocol.parse_windows(None, clips / "missing")
    assert protocol.parse_windows("ramp@3,TEX.y4m@0", clips) == [
        (protocol.Window("ramp", "ramp", 3), clips / "ramp.y4m"),
        (protocol.Window("TEX", "TEX.y4m", 0), clips / "tex.y4m"),
    ]


@pytest.mark.parametrize("k", [2, 3])
def test_held_protocol_on_ks_at_factor_1_matches_the_distinct_frames_at_factor_k(clips: Path, k: int) -> None:
    (result,) = evaluate_window_named(clips, "tex", 0, [k], models={"tiny": make_model()}, flowfps=False, held=True)
    held, distinct = result.scores["tiny+held"], result.scores["tiny"]
    assert [s.frame for s in held] == [s.frame for s in distinct]
    assert abs(result.mean("tiny+held", "psnr") - result.mean("tiny", "psnr")) < 0.1
    assert result.mean("tiny+held", "psnr") > result.mean("repeat", "psnr") + 1  # not the held copies
    copies = protocol.held_version(protocol.Kept(clip_from_arrays(random_frames(2, 8, 8)), k))
    assert copies.num_frames == 2 * k
    assert not np.array_equal(read_frame(copies.get_frame(0)), read_frame(copies.get_frame(1)))


def test_estimate_runs_a_dis_model_without_splatting_beside_its_default(clips: Path) -> None:
    model = make_model()
    model.flow_source = "dis"
    (result,) = evaluate_window_named(clips, "tex", 0, [4], models={"tiny": model}, flowfps=False, unsplatted=True)
    assert set(result.scores) == {"repeat", "blend", "tiny", "tiny+estimate"}
    assert result.mean("tiny", "psnr") != result.mean("tiny+estimate", "psnr")


def test_cadence_protocol_matches_the_drawings_placed_at_their_times(clips: Path) -> None:
    assert protocol.cadence_positions(12, [2, 2, 3]) == [0, 2, 4, 7, 9, 11]
    source = core.bs.VideoSource(str(clips / "tex.y4m"), cachemode=0)
    got = protocol.evaluate_cadence(source, protocol.Window("tex", "tex.y4m", 0), [2, 2, 3], make_model())
    assert abs(got["held"] - got["distinct"]) < 0.1
    assert got["held"] > got["repeat"] + 1
    with pytest.raises(JobError, match="a cadence is holds of 1 frame or more"):
        protocol.cadence_positions(5, [2, 0])


def test_cartoon_windows_are_whole_rgb_windows_of_the_generated_set() -> None:
    windows = protocol.cartoon_windows()
    assert [w.name for w, _ in windows] == [c.name for c in CARTOON_CLIPS]
    for window, clip in windows:
        assert (window.file, window.start, clip.num_frames) == (protocol.CARTOON, 0, protocol.WINDOW_LENGTH)
        assert clip.format.id == vs.RGBS and (clip.width, clip.height) == (640, 360)
