"""Real video windows: cuts, holds and static windows dropped, window lengths by frame rate, held-out
splits, the fixed validation set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    cut_clip_frames,
    needs_bestsource,
    random_frames,
    write_y4m,
)

from vs_superslomo.errors import JobError
from vs_superslomo.luma import luma
from vs_superslomo.training import samples, windows


@needs_bestsource
def test_real_windows_drop_cuts_holds_and_static_and_give_the_right_t(tmp_path: Path) -> None:
    frames = cut_clip_frames()
    clip = windows.load_clip(write_y4m(tmp_path / "cut.y4m", frames))
    assert clip.frames.shape == (12, 3, 64, 64) and clip.fps == pytest.approx(24000 / 1001)
    assert np.abs(clip.frames - np.stack(frames)).mean() < 0.01
    assert windows.valid_windows(clip, 3) == [0, 1, 2, 3, 4, 7]  # 5, 6 cross the cut; 8 holds; 9 is static
    assert windows.valid_windows(clip, 5) == [0, 1, 2]
    # A caller's luma (the dataset computes it once per clip) is what decides: the same windows for the
    # clip's own, none for a static one.
    y = luma(clip.frames)
    assert windows.valid_windows(clip, 5, y=y) == [0, 1, 2]
    assert windows.valid_windows(clip, 5, y=np.zeros_like(y)) == []
    ds = windows.RealWindowDataset([clip], 64, windows=(3, 5), pseudo_flow=False, augmentation=samples.Augment.none())
    spans = set()
    for index in range(40):
        _, start, span, k = ds.window_of(index)
        item = ds[index]
        spans.add(span)
        assert float(item["t"]) == pytest.approx(k / span) and 0 < k < span
        assert torch.equal(item["it"], torch.from_numpy(clip.frames[start + k]))
        assert torch.equal(item["i1"], torch.from_numpy(clip.frames[start + span]))
        assert float(item["has_flow"]) == 0 and not item["flow01"].any()
    assert spans == {2, 4}
    small = windows.load_clip(tmp_path / "cut.y4m", max_width=32, max_frames=5)
    assert small.frames.shape == (5, 3, 32, 32)


def test_quadratic_windows_carry_accelerations_only_with_uncut_frames_around_them() -> None:
    clip = windows.Clip("cut", np.stack(cut_clip_frames()), fps=24000 / 1001)
    ds = windows.RealWindowDataset([clip], 64, windows=(3,), quadratic=True, augmentation=samples.Augment.none())
    linear = windows.RealWindowDataset([clip], 64, windows=(3,), augmentation=samples.Augment.none())
    seen = {}
    for index in range(40):
        start = ds.window_of(index)[1]
        sample = ds.sample(index)
        # Valid starts 0, 1, 2, 3, 4, 7 and a cut between frames 6 and 7: only start 2 has frames 0 and 6,
        # one span before and after, with no cut between them (as the filter: none at clip ends and cuts).
        seen[start] = sample.accel is not None
        assert linear.sample(index).accel is None
        if sample.accel is not None:
            assert sample.accel.shape == (4, 64, 64) and float(ds[index]["accel"].abs().max()) > 0
    assert seen == {0: False, 1: False, 2: True, 3: False, 4: False, 7: False}


def test_fast_clips_get_proportionally_longer_windows() -> None:
    frames = np.stack(random_frames(30, 32, 32))
    ds = windows.RealWindowDataset([windows.Clip("fast", frames, fps=120.0)], 32, windows=(3,), pseudo_flow=False)
    assert {ds.window_of(i)[2] for i in range(20)} == {8}  # 2 frames at 30 fps = 8 at 120 fps


def test_split_clips_by_name(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.avi", "c.y4m", "notes.txt"):
        (tmp_path / name).touch()
    train, held = windows.split_clips(tmp_path, ["b", "c.y4m"])
    assert [p.name for p in train] == ["a.mp4"] and [p.name for p in held] == ["b.avi", "c.y4m"]
    assert windows.split_clips([tmp_path / "a.mp4"], []) == ([tmp_path / "a.mp4"], [])
    with pytest.raises(JobError, match=r"'zzz'.*not found"):
        windows.split_clips(tmp_path, ["zzz"])
    with pytest.raises(JobError, match="does not exist"):
        windows.split_clips(tmp_path / "missing", [])


def test_validation_set_is_fixed() -> None:
    frames = np.stack(random_frames(20, 40, 48))
    clip = windows.Clip("held", frames, fps=25.0)
    first = windows.validation_set([clip], size=32, count=5)
    second = windows.validation_set([clip], size=32, count=5)
    assert len(first) == 5 and all(torch.equal(a[k], b[k]) for a, b in zip(first, second, strict=True) for k in a)
    assert all(s["it"].shape == (3, 32, 32) and float(s["t"]) == 0.5 for s in first)
    assert len({float(s["i0"].sum()) for s in first}) == 5  # five different windows
    with pytest.raises(JobError, match="no usable validation windows"):
        windows.validation_set([windows.Clip("still", np.repeat(frames[:1], 5, 0), fps=25.0)], size=32)
