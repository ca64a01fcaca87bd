"""The filter gives the same frames, bit for bit, as it did before its per-frame decisions moved into
:mod:`vs_superslomo.frameplan`: the earlier ``plugin.py`` is read from git history and run beside today's on the
bundled clip (so both run on this machine's CPU, whose rounding they share)."""

from __future__ import annotations

import shutil
import subprocess
import types
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vs_superslomo import superslomo
from vs_superslomo.colour import to_rgb
from vs_superslomo.frames import read_frame
from vs_superslomo.source import open_video

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "examples" / "bbb_640x360.mp4"
# The last commit whose plugin.py made every decision itself, in one closure nest.
BEFORE = "6e036365af74fd08501216b4f91e278058a5bb8c"

pytestmark = pytest.mark.slow


def _plugin_before() -> types.ModuleType:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE}:vs_superslomo/plugin.py"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        pytest.skip(f"commit {BEFORE[:7]} is not in this checkout's history (a shallow clone?)")
    module = types.ModuleType("vs_superslomo._plugin_before")
    module.__package__ = "vs_superslomo"  # its relative imports resolve against today's package
    exec(compile(shown.stdout, f"plugin.py@{BEFORE[:7]}", "exec"), module.__dict__)
    return module


def _source() -> vs.VideoNode:
    """Ten frames of the bundled clip at a quarter of its size, in RGBS."""
    if not CLIP.is_file():
        pytest.skip("the bundled clip is missing")
    clip = open_video(CLIP)[:10]
    return to_rgb(vs.core.resize.Bicubic(clip, 160, 90))


def _held(clip: vs.VideoNode) -> vs.VideoNode:
    """The clip on twos and threes (held copies), as animation is drawn."""
    return clip[0] * 2 + clip[2] * 3 + clip[5] * 2 + clip[7] + clip[8] * 2


CASES: dict[str, tuple[Callable[[vs.VideoNode], vs.VideoNode], dict[str, object]]] = {
    "default": (lambda c: c, {"factor_num": 3}),
    "linear": (lambda c: c, {"factor_num": 2, "motion": "linear"}),
    "quadratic-slowmo": (lambda c: c, {"factor_num": 5, "factor_den": 2, "slowmo": True, "motion": "quadratic"}),
    "dedup": (_held, {"factor_num": 2, "dedup": True}),
    "dedup-linear": (_held, {"factor_num": 1, "dedup": True, "motion": "linear"}),
    "vfr": (
        lambda c: c,
        {"fps_num": 30, "timestamps": [Fraction(t, 100) for t in (0, 4, 8, 20, 24, 28, 40, 44, 48, 52, 60)]},
    ),
    "cut": (lambda c: c[:4] + vs.core.std.Invert(c[4:]), {"factor_num": 2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_frames_and_props_are_unchanged(case: str) -> None:
    before = _plugin_before()
    make, options = CASES[case]
    clip = make(_source())
    new, old = superslomo(clip, **options), before.superslomo(clip, **options)  # type: ignore[arg-type]
    assert new.num_frames == old.num_frames
    assert (new.fps_num, new.fps_den) == (old.fps_num, old.fps_den)
    for n in range(new.num_frames):
        a, b = new.get_frame(n), old.get_frame(n)
        np.testing.assert_array_equal(read_frame(a), read_frame(b), err_msg=f"{case}: frame {n}")
        added = ("SuperSloMoCut", "SuperSloMoConfidence")  # the props added since
        props = {k: v for k, v in a.props.items() if k not in added}
        assert props == dict(b.props), f"{case}: frame {n}"
