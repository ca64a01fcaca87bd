"""Samples and augmentation: flips, reversal and crops keep the flows consistent; colour jitter is seeded."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from helpers import random_frames, warp_error

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


def replace_flows(sample: Sample, f01: np.ndarray, f10: np.ndarray) -> Sample:
    return Sample(sample.i0, sample.i1, sample.it, sample.t, f01, f10, sample.flow_mask, True)


def test_colour_jitter_is_the_same_for_all_frames_and_seeded() -> None:
    frame = random_frames(1, 16, 16)[0]
    sample = Sample.without_flow(frame, frame.copy(), frame.copy(), 0.5)
    a = samples.colour_jitter(sample, np.random.default_rng(4))
    b = samples.colour_jitter(sample, np.random.default_rng(4))
    assert np.array_equal(a.i0, a.i1) and np.array_equal(a.i0, a.it) and np.array_equal(a.i0, b.i0)
    assert not np.allclose(a.i0, frame) and a.i0.min() >= 0 and a.i0.max() <= 1
