"""Synthetic scenes: exact ground-truth flow, determinism, the motion curriculum, photo errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import translation_scene, warp_error

from vs_superslomo.errors import JobError
from vs_superslomo.training import synthetic
from vs_superslomo.training.synthetic import Layer, Motion, Scene
from vs_superslomo.warp import backwarp


def test_synthetic_samples_have_shapes_ranges_and_are_deterministic(photos: list[np.ndarray]) -> None:
    ds = synthetic.SyntheticDataset(photos, 64, max_motion=12, seed=3)
    fresh = synthetic.SyntheticDataset(photos, 64, max_motion=12, seed=3)
    a, again, other = ds[5], ds[5], ds[6]
    assert set(a) == {"i0", "i1", "it", "t", "flow01", "flow10", "flow_mask", "has_flow", "accel"}
    assert not a["accel"].any()  # synthetic motion: no accelerations (linear motion)
    for key in ("i0", "i1", "it"):
        assert a[key].shape == (3, 64, 64) and a[key].dtype == torch.float32
        assert float(a[key].min()) >= 0 and float(a[key].max()) <= 1
    for key in ("flow01", "flow10", "flow_mask"):
        assert a[key].shape == (2, 64, 64) and bool(torch.isfinite(a[key]).all())
    assert a["t"].shape == () and 0 < float(a["t"]) < 1 and float(a["has_flow"]) == 1
    assert float(a["flow01"].abs().max()) < 40  # 12 px of motion, with some rotation and bending
    assert all(torch.equal(a[k], again[k]) and torch.equal(a[k], fresh[5][k]) for k in a)
    assert not torch.equal(a["i0"], other["i0"])


def test_ground_truth_flow_of_a_translation(photos: list[np.ndarray]) -> None:
    scene = translation_scene(photos)
    sample = synthetic.scene_sample(scene, 0.25)
    _, w0 = scene.render(0.0)
    _, w1 = scene.render(1.0)
    owner0, owner1 = w0.argmax(0), w1.argmax(0)
    on_bg, on_fg = (owner0 == 0) & (sample.flow_mask[0] > 0), (owner0 == 1) & (sample.flow_mask[0] > 0)
    assert on_bg.sum() > 1000 and on_fg.sum() > 200
    assert np.allclose(sample.flow01[:, on_bg].T, [5, -3], atol=1e-4)
    assert np.allclose(sample.flow01[:, on_fg].T, [-4, 6], atol=1e-4)
    assert np.allclose(sample.flow10[:, (owner1 == 0) & (sample.flow_mask[1] > 0)].T, [-5, 3], atol=1e-4)
    # Visible and not occluded: the same layer owns the pixel, fully, in both frames, and it stays in frame.
    h, w = owner0.shape
    gy, gx = np.mgrid[0:h, 0:w]
    x1, y1 = gx + np.rint(sample.flow01[0]).astype(int), gy + np.rint(sample.flow01[1]).astype(int)
    inside = (x1 >= 0) & (x1 < w) & (y1 >= 0) & (y1 < h)
    x1, y1 = x1.clip(0, w - 1), y1.clip(0, h - 1)
    same = (owner1[y1, x1] == owner0) & (w0.max(0) > 0.999) & (w1.max(0)[y1, x1] > 0.999) & inside
    warped = backwarp(torch.from_numpy(sample.i1)[None], torch.from_numpy(sample.flow01)[None], "exact")[0].numpy()
    assert same.sum() > 1500
    assert np.abs(warped - sample.i0).max(0)[same].max() < 1e-3
    it, _ = scene.render(0.25)
    assert np.array_equal(sample.it, it) and sample.t == 0.25


def test_ground_truth_flow_of_rotation_zoom_and_perspective(photos: list[np.ndarray]) -> None:
    motion = Motion(
        anchor=(32.0, 32.0),
        pivot=(70.0, 50.0),
        delta=np.array([3.0, 2.0, 0.08, 0.1, 3e-4, -2e-4]),
        bend=np.array([2.0, -2.0, 0.02, 0, 0, 0]),
    )
    sample = synthetic.scene_sample(Scene((Layer(photos[2], motion),), 64, 64), 0.5)
    moved = float(np.abs(sample.i1 - sample.i0).mean())
    err01, err10 = warp_error(sample)
    assert max(err01, err10) < 0.1 * moved  # bilinear resampling differences only
    assert float(np.abs(sample.flow01).max()) > 4


def test_motion_curriculum_ramps_with_the_sample_index(photos: list[np.ndarray]) -> None:
    ramp = synthetic.LinearRamp(4.0, 20.0, 100)
    assert (ramp(0), ramp(50), ramp(100), ramp(10_000)) == (4.0, 12.0, 20.0, 20.0)
    ds = synthetic.SyntheticDataset(photos, 32, max_motion=ramp)
    assert ds.motion_at(0) == 4.0 and ds.motion_at(200) == 20.0


def test_photo_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        synthetic.load_photos(tmp_path / "missing")
    with pytest.raises(JobError, match="no photos found"):
        synthetic.load_photos(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(JobError, match=r"broken\.jpg: cannot be read"):
        synthetic.load_photos(tmp_path)
