"""Samples and augmentation: flips, reversal and crops keep the flows (and accelerations) consistent;
accelerations as the filter computes them; colour jitter is seeded."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import torch
from helpers import accelerating_frames, random_frames, warp_error

from vs_superslomo.training import samples, synthetic
from vs_superslomo.training.samples import Sample


def test_augmentations_keep_flows_consistent(photos: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    scene = dataclasses.replace(synthetic.random_scene(photos, 64, 10, rng, layers=(0, 0)), gain=0.0)
    sample = synthetic.scene_sample(scene, 0.3)
    transforms: dict[str, Callable[[Sample], Sample]] = {
        "none": lambda s: s,
        "reverse": samples.reverse,
        "flip x": lambda s: samples.flip(s, "x"),
        "flip y": lambda s: samples.flip(s, "y"),
        "reverse, flip x, crop": lambda s: samples.crop(samples.flip(samples.reverse(s), "x"), 5, 9, 48, 48),
        "fit": lambda s: samples.fit(s, 96),
        "random": lambda s: samples.augment(s, np.random.default_rng(1), 64, samples.Augment(jitter=0.0)),
    }
    baseline = max(warp_error(sample))
    wrong = replace_flows(sample, -sample.flow01, -sample.flow10)
    assert max(warp_error(wrong)) > 5 * baseline  # the check can tell a wrong flow
    for name, fn in transforms.items():
        assert max(warp_error(fn(sample))) < 1.2 * baseline + 0.001, name
    back = samples.reverse(sample)
    assert back.t == pytest.approx(0.7) and np.array_equal(back.i0, sample.i1) and np.array_equal(back.it, sample.it)
    twice = samples.reverse(back)
    assert all(np.array_equal(getattr(twice, k), getattr(sample, k)) for k in ("i0", "flow01", "flow_mask"))


def test_augmentations_move_accelerations_as_they_move_flows(photos: list[np.ndarray]) -> None:
    # Accelerations are vectors at I0 (A0) and I1 (A1), as F01 and F10 are: give a sample A0 = F01 and
    # A1 = F10, and every augmentation must keep them equal (reversal swaps both pairs, flips negate a
    # component of each, fitting scales both).
    rng = np.random.default_rng(0)
    scene = dataclasses.replace(synthetic.random_scene(photos, 64, 10, rng, layers=(1, 1)), gain=0.0)
    plain = synthetic.scene_sample(scene, 0.3)
    sample = dataclasses.replace(plain, accel=np.concatenate((plain.flow01, plain.flow10)))
    transforms: list[Callable[[Sample], Sample]] = [
        samples.reverse,
        lambda s: samples.flip(s, "x"),
        lambda s: samples.flip(s, "y"),
        lambda s: samples.fit(samples.crop(s, 3, 5, 40, 50), 96),
        lambda s: samples.augment(s, np.random.default_rng(1), 64, samples.Augment(hflip=1, vflip=1, reverse=1)),
    ]
    for fn in transforms:
        out = fn(sample)
        assert out.accel is not None and np.allclose(out.accel, np.concatenate((out.flow01, out.flow10)), atol=1e-5)
        assert fn(plain).accel is None
    tensors = sample.to_tensors()
    assert torch.equal(tensors["accel"], torch.from_numpy(sample.accel))
    assert not plain.to_tensors()["accel"].any()  # none: zeros, which is linear motion exactly


def test_accelerations_of_a_sample_are_the_motions() -> None:
    # Shifts 0, 2, 6, 12 px: velocities 2, 4, 6 px a frame, so 2 px a frame² at both ends of the middle pair.
    before, i0, i1, after = accelerating_frames([0, 2, 6, 12])
    sample = Sample.without_flow(i0, i1, i0, 0.5)
    with pytest.raises(ValueError, match="with_dis_flows"):
        sample.with_accelerations(before, after)
    quadratic = sample.with_dis_flows().with_accelerations(before, after)
    assert quadratic.accel is not None and quadratic.accel.shape == (4, *i0.shape[1:])
    inner = quadratic.accel[:, 16:-16, 32:-32]
    assert np.median(inner[0]) == pytest.approx(2, abs=0.2) and np.median(inner[2]) == pytest.approx(2, abs=0.2)
    assert np.abs(np.median(inner[1::2], axis=(1, 2))).max() < 0.2
    # Constant velocity: nothing to add.
    before, i0, i1, after = accelerating_frames([-2, 2, 6, 10])
    still = Sample.without_flow(i0, i1, i0, 0.5).with_dis_flows().with_accelerations(before, after).accel
    assert still is not None and np.abs(np.median(still[:, 16:-16, 32:-32], axis=(1, 2))).max() < 0.2


def replace_flows(sample: Sample, f01: np.ndarray, f10: np.ndarray) -> Sample:
    return Sample(sample.i0, sample.i1, sample.it, sample.t, f01, f10, sample.flow_mask, True)


def test_colour_jitter_is_the_same_for_all_frames_and_seeded() -> None:
    frame = random_frames(1, 16, 16)[0]
    sample = Sample.without_flow(frame, frame.copy(), frame.copy(), 0.5)
    a = samples.colour_jitter(sample, np.random.default_rng(4))
    b = samples.colour_jitter(sample, np.random.default_rng(4))
    assert np.array_equal(a.i0, a.i1) and np.array_equal(a.i0, a.it) and np.array_equal(a.i0, b.i0)
    assert not np.allclose(a.i0, frame) and a.i0.min() >= 0 and a.i0.max() <= 1
