"""The frame-drop harness on tiny y4m clips: exact scores on a ramp, frame alignment, every method, the outputs."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import clip_from_arrays, make_model, random_frames, read_frame

from vs_superslomo import SuperSloMo, metrics
from vs_superslomo.errors import JobError
from vs_superslomo.evaluation import cli, protocol, report
from vs_superslomo.evaluation.methods import build_methods
from vs_superslomo.weights import save_model

core = vs.core
pytestmark = pytest.mark.skipif(not hasattr(core, "bs"), reason="the bestsource plugin is not installed")
HAS_MVTOOLS = hasattr(core, "mv")
needs_mvtools = pytest.mark.skipif(not HAS_MVTOOLS, reason="the mvtools plugin is not installed")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not on PATH")

RAMP_START = 3  # frames before the window differ, so a window read from the wrong start breaks the ramp
RAMP_STEP = 4  # luma codes per frame: limited-range RGB moves 4/219 a frame


def _write_y4m(clip: vs.VideoNode, path: Path) -> Path:
    with open(path, "wb") as fh:
        clip.output(fh, y4m=True)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ramp.y4m: flat grey frames, luma rising RAMP_STEP a frame from RAMP_START; tex.y4m: a moving texture."""
    folder = tmp_path_factory.mktemp("clips")
    levels = [200] * RAMP_START + [16 + RAMP_STEP * i for i in range(protocol.WINDOW_LENGTH)]
    flat = [core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=1, color=[y, 128, 128]) for y in levels]
    _write_y4m(core.std.Splice(flat), folder / "ramp.y4m")
    # Low contrast keeps consecutive kept frames under the filter's scene-cut threshold, so it interpolates.
    # A fine 4-pixel grain: detail that blending smears and motion compensation keeps.
    frames = [0.3 + 0.4 * f for f in random_frames(protocol.WINDOW_LENGTH, 48, 64, grain=4)]
    texture = core.resize.Bicubic(clip_from_arrays(frames), format=vs.YUV420P8, matrix_s="709")
    _write_y4m(texture, folder / "tex.y4m")
    return folder


def _run(
    clips: Path,
    name: str,
    start: int,
    ks: list[int],
    *,
    models: dict[str, SuperSloMo] | None = None,
    flowfps: bool,
    minterpolate: bool = False,
    flows: tuple[str, ...] = ("auto",),
    held: bool = False,
) -> list[protocol.ClipResult]:
    window = protocol.Window(name, f"{name}.y4m", start)
    methods = build_methods(models, flowfps=flowfps, minterpolate=minterpolate, flows=flows, held=held)
    results, _ = protocol.evaluate_windows([(window, clips / window.file)], ks, methods)
    return results


def test_psnr_is_capped_for_identical_frames_and_exact_otherwise() -> None:
    a = np.full((4, 5, 3), 0.5, np.float32)
    assert metrics.psnr(a, a) == metrics.PSNR_CAP_DB
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)
    b = np.random.default_rng(0).random((16, 16, 3))
    assert metrics.ssim(b, b) == pytest.approx(1.0) and metrics.ssim(b, 1 - b) < 0


def test_crop_goes_where_content_moved_and_ignores_cuts() -> None:
    prev, real, nxt = (np.zeros((40, 60, 3), np.float32) for _ in range(3))
    prev[5:15, 5:15], real[20:30, 30:40], nxt[25:35, 45:55] = 1, 1, 1  # a square crossing the picture
    top, left, motion = protocol.box_motion(real, prev, nxt, 10)
    assert (top, left) == (20, 30) and motion == 1.0
    assert protocol.box_motion(nxt, prev, nxt, 10)[2] == 0.0  # real equals the next kept frame: a cut, no motion


def test_ramp_gives_exact_repeat_and_perfect_blend_at_the_right_frames(clips: Path) -> None:
    for result in _run(clips, "ramp", RAMP_START, [2, 4], flowfps=False):
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
        _run(clips, "ramp", 4, [2], flowfps=False)
    with pytest.raises(JobError, match="is no default window"):
        protocol.parse_windows("nosuchclip", clips)
    with pytest.raises(JobError, match="no such folder"):
        protocol.parse_windows(None, clips / "missing")
    assert protocol.parse_windows("ramp@3,TEX.y4m@0", clips) == [
        (protocol.Window("ramp", "ramp", 3), clips / "ramp.y4m"),
        (protocol.Window("TEX", "TEX.y4m", 0), clips / "tex.y4m"),
    ]


@needs_mvtools
def test_flowfps_is_aligned_and_beats_blend_on_motion(clips: Path) -> None:
    ramp, texture = (_run(clips, name, start, [2], flowfps=True) for name, start in (("ramp", RAMP_START), ("tex", 0)))
    # Flat frames: any frame off by one would be RAMP_STEP codes away (about 35 dB), not near perfect.
    assert min(s.psnr for s in ramp[0].scores["flowfps"]) > 60
    # A texture moving 4 px between kept frames: motion compensation wins by far when the frames line up.
    assert texture[0].mean("flowfps", "psnr") > texture[0].mean("blend", "psnr") + 6


@needs_ffmpeg
@pytest.mark.parametrize("k", [2, 4])
def test_minterpolate_is_aligned_and_beats_blend_on_motion(clips: Path, k: int) -> None:
    ramp, texture = (
        _run(clips, name, start, [k], flowfps=False, minterpolate=True)[0]
        for name, start in (("ramp", RAMP_START), ("tex", 0))
    )
    # Flat frames: one frame off would be RAMP_STEP codes away; the last interval is scored too.
    assert [s.frame for s in ramp.scores["minterpolate"]] == [s.frame for s in ramp.scores["blend"]]
    assert min(s.psnr for s in ramp.scores["minterpolate"]) > 45
    assert texture.mean("minterpolate", "psnr") > texture.mean("blend", "psnr") + 2  # 16 px blocks on 64×48


def test_superslomo_method_runs_with_a_tiny_model(clips: Path) -> None:
    (result,) = _run(clips, "tex", 0, [4], models={"tiny": make_model()}, flowfps=False)
    scores = result.scores["tiny"]
    assert len(scores) == 30 and all(10 < s.psnr < metrics.PSNR_CAP_DB and 0 < s.ssim < 1 for s in scores)
    assert scores != result.scores["repeat"]  # interpolated, not copies at scene cuts


def test_main_writes_tables_json_and_plots(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "tiny.safetensors"
    save_model(make_model(), weights)
    out = tmp_path / "out"
    argv = ["--model", str(weights), "--extra", f"other={weights}", "--clips", str(clips), "--out", str(out)]
    argv += ["--only", f"ramp@{RAMP_START},tex.y4m@0", "--k", "2", "4"]
    if not HAS_MVTOOLS:
        argv.append("--no-flowfps")
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["crop.png", "psnr_vs_t.png", "results.json", "results.md"]
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in ("crop.png", "psnr_vs_t.png"))
    data = json.loads((out / "results.json").read_text())
    assert [(c["name"], c["k"]) for c in data["clips"]] == [("ramp", 2), ("ramp", 4), ("tex", 2), ("tex", 4)]
    ramp2 = data["clips"][0]
    assert [f["frame"] for f in ramp2["frames"]["superslomo"]] == list(range(RAMP_START + 1, RAMP_START + 40, 2))
    assert set(ramp2["frames"]) == {"repeat", "blend", "superslomo", "other", *(["flowfps"] if HAS_MVTOOLS else [])}
    report = (out / "results.md").read_text()
    assert printed.strip() == report.strip()
    mean_row = next(line for line in report.splitlines() if line.startswith("| **mean**"))
    header = next(line for line in report.splitlines() if line.startswith("| clip"))
    column = header.split(" | ").index("repeat k=2")
    expected = np.mean([c["mean"]["repeat"]["psnr"] for c in data["clips"] if c["k"] == 2])
    assert mean_row.split(" | ")[column] == f"{expected:.2f}"
    assert "| superslomo k=4 |" in header and "| other k=2 |" in header


def test_main_reports_usage_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--clips", str(tmp_path), "--no-superslomo"]) == 1
    assert "holds none of the default clips; name windows with --only FILE@START" in capsys.readouterr().err


def test_each_model_runs_with_each_flow_source_asked_for(clips: Path) -> None:
    """An interpolation net that adds nothing (zero residuals, equal visibility) turns DIS flows into a
    motion-compensated blend: exact on flat frames (zero flow), far above blend on a moving texture."""
    model = make_model()
    for parameter in model.interp.conv3.parameters():
        parameter.data.zero_()
    models = {"tiny": model}
    ramp, texture = (
        _run(clips, name, start, [2], models=models, flowfps=False, flows=("auto", "net", "dis"))[0]
        for name, start in (("ramp", RAMP_START), ("tex", 0))
    )
    assert set(ramp.scores) == {"repeat", "blend", "tiny", "tiny+dis"}  # auto is net for these weights: once
    assert [s.frame for s in ramp.scores["tiny+dis"]] == [s.frame for s in ramp.scores["blend"]]
    assert min(s.psnr for s in ramp.scores["tiny+dis"]) > 60
    assert texture.mean("tiny+dis", "psnr") > texture.mean("blend", "psnr") + 3
    assert texture.mean("tiny+dis", "psnr") != texture.mean("tiny", "psnr")  # auto is the flow net here


@pytest.mark.parametrize("k", [2, 3])
def test_held_protocol_on_ks_at_factor_1_matches_the_distinct_frames_at_factor_k(clips: Path, k: int) -> None:
    (result,) = _run(clips, "tex", 0, [k], models={"tiny": make_model()}, flowfps=False, held=True)
    held, distinct = result.scores["tiny+held"], result.scores["tiny"]
    assert [s.frame for s in held] == [s.frame for s in distinct]
    assert abs(result.mean("tiny+held", "psnr") - result.mean("tiny", "psnr")) < 0.1
    assert result.mean("tiny+held", "psnr") > result.mean("repeat", "psnr") + 1  # not the held copies
    copies = protocol.held_version(protocol.Kept(clip_from_arrays(random_frames(2, 8, 8)), k))
    assert copies.num_frames == 2 * k and not np.array_equal(*(read_frame(copies.get_frame(i)) for i in (0, 1)))


def test_held_picture_shows_a_clip_before_and_after_dedup(tmp_path: Path) -> None:
    pictures = random_frames(3, 32, 48, seed=8, grain=4)
    clip = core.resize.Bicubic(
        clip_from_arrays([pictures[0], pictures[0], pictures[1], pictures[1], pictures[2]]),
        format=vs.YUV444P8,
        matrix_s="709",
    )
    report.plot_held(clip, 0, make_model(), tmp_path / "held.png")
    assert (tmp_path / "held.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cadence_protocol_matches_the_drawings_placed_at_their_times(clips: Path) -> None:
    assert protocol.cadence_positions(12, [2, 2, 3]) == [0, 2, 4, 7, 9, 11]
    source = core.bs.VideoSource(str(clips / "tex.y4m"), cachemode=0)
    got = protocol.evaluate_cadence(source, protocol.Window("tex", "tex.y4m", 0), [2, 2, 3], make_model())
    assert abs(got["held"] - got["distinct"]) < 0.1
    assert got["held"] > got["repeat"] + 1
    with pytest.raises(JobError, match="a cadence is holds of 1 frame or more"):
        protocol.cadence_positions(5, [2, 0])
