"""Training data: synthetic scenes and their exact flows, augmentation, real windows, DIS labels, splits.

Everything is generated here (tiny photos, a tiny y4m clip), so ../shared is never needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from conftest import clip_from_arrays, random_frames
from torch.utils.data import Dataset

from vs_superslomo.errors import JobError
from vs_superslomo.flow import dis_flow_labels
from vs_superslomo.luma import luma
from vs_superslomo.training import samples, stream, synthetic, windows
from vs_superslomo.training.samples import Sample
from vs_superslomo.training.synthetic import Layer, Motion, Scene
from vs_superslomo.warp import backwarp

# --- helpers shared with test_train --------------------------------------------------------------------


def write_photos(folder: Path, count: int = 3, size: tuple[int, int] = (120, 160)) -> Path:
    """Textured random JPEGs (blurred noise plus a few shapes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        img = cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float32), (0, 0), 2.0) * 255
        for _ in range(4):
            centre = (int(rng.integers(size[1])), int(rng.integers(size[0])))
            cv2.circle(img, centre, int(rng.integers(5, 25)), rng.integers(0, 255, 3).tolist(), -1)
        cv2.imwrite(str(folder / f"photo{i}.jpg"), np.clip(img, 0, 255).astype(np.uint8))
    return folder


def write_y4m(path: Path, frames: list[np.ndarray]) -> Path:
    """A lossless-ish 8-bit 4:4:4 y4m tagged as BT.601, which is what colour.to_rgb assumes for SD."""
    clip = vs.core.resize.Bicubic(clip_from_arrays(frames), format=vs.YUV444P8, matrix_s="170m")
    with open(path, "wb") as fh:
        clip.output(fh, y4m=True)
    return path


def cut_clip_frames(size: int = 64) -> list[np.ndarray]:
    """12 frames: 0-6 a bright moving picture, 7-9 a dark different one (a cut), 10-11 repeat 9 (static)."""
    a = [0.6 + 0.4 * f for f in random_frames(7, size, size, seed=1)]
    b = [0.4 * f for f in random_frames(3, size, size, seed=2)]
    return a + b + [b[-1], b[-1]]


needs_bestsource = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="bestsource plugin not installed")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    return synthetic.load_photos(write_photos(tmp_path_factory.mktemp("photos")), max_side=128)


def translation_scene(photos: list[np.ndarray], size: int = 64) -> Scene:
    """Background moving (+5, −3) px and an elliptical layer moving (−4, +6) px between s = 0 and 1."""
    bg = Motion(anchor=(size / 2, size / 2), pivot=(64.0, 48.0), delta=np.array([5.0, -3.0, 0, 0, 0, 0]))
    mask = np.zeros((30, 30), np.float32)
    cv2.ellipse(mask, (15, 15), (12, 10), 0, 0, 360, 1.0, -1)
    fg = Motion(anchor=(30.0, 34.0), pivot=(14.5, 14.5), delta=np.array([-4.0, 6.0, 0, 0, 0, 0]))
    return Scene((Layer(photos[0], bg), Layer(np.ascontiguousarray(photos[1][:30, :30]), fg, mask)), size, size)


def warp_error(sample: Sample) -> tuple[float, float]:
    """Mean |backwarp(I1, F01) − I0| and |backwarp(I0, F10) − I1| where the flow is known and stays in frame."""

    def one(src: np.ndarray, dst: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> float:
        h, w = flow.shape[1:]
        gy, gx = np.mgrid[0:h, 0:w]
        inside = (gx + flow[0] >= 0) & (gx + flow[0] <= w - 1) & (gy + flow[1] >= 0) & (gy + flow[1] <= h - 1)
        warped = backwarp(torch.from_numpy(src)[None], torch.from_numpy(flow)[None], "exact")[0].numpy()
        keep = inside & (mask > 0)
        return float(np.abs(warped - dst).mean(0)[keep].mean())

    m = sample.flow_mask
    return one(sample.i1, sample.i0, sample.flow01, m[0]), one(sample.i0, sample.i1, sample.flow10, m[1])


# --- synthetic scenes ----------------------------------------------------------------------------------


def test_synthetic_samples_have_shapes_ranges_and_are_deterministic(photos: list[np.ndarray]) -> None:
    ds = synthetic.SyntheticDataset(photos, 64, max_motion=12, seed=3)
    fresh = synthetic.SyntheticDataset(photos, 64, max_motion=12, seed=3)
    a, again, other = ds[5], ds[5], ds[6]
    assert set(a) == {"i0", "i1", "it", "t", "flow01", "flow10", "flow_mask", "has_flow"}
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


def test_motion_curriculum_ramps_with_the_sample_index(photos: list[np.ndarray]) -> None:
    ramp = synthetic.LinearRamp(4.0, 20.0, 100)
    assert (ramp(0), ramp(50), ramp(100), ramp(10_000)) == (4.0, 12.0, 20.0, 20.0)
    ds = synthetic.SyntheticDataset(photos, 32, max_motion=ramp)
    assert ds.motion_at(0) == 4.0 and ds.motion_at(200) == 20.0


# --- real clips ----------------------------------------------------------------------------------------


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


def test_fast_clips_get_proportionally_longer_windows() -> None:
    frames = np.stack(random_frames(30, 32, 32))
    ds = windows.RealWindowDataset([windows.Clip("fast", frames, fps=120.0)], 32, windows=(3,), pseudo_flow=False)
    assert {ds.window_of(i)[2] for i in range(20)} == {8}  # 2 frames at 30 fps = 8 at 120 fps


def test_dis_pseudo_flow_has_the_f01_sign() -> None:
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((112, 112, 3)).astype(np.float32), (0, 0), 1.5).transpose(2, 0, 1)
    big = (big - big.min()) / (big.max() - big.min())
    i0 = np.ascontiguousarray(big[:, 8:104, 8:104])
    i1 = np.ascontiguousarray(big[:, 10:106, 5:101])  # I1(x) = I0(x − (3, −2)): content moved right 3, up 2
    f01, f10, mask = dis_flow_labels(i0, i1)
    inner = (slice(None), slice(16, 80), slice(16, 80))
    assert np.median(f01[inner], axis=(1, 2)) == pytest.approx([3, -2], abs=0.3)
    assert np.median(f10[inner], axis=(1, 2)) == pytest.approx([-3, 2], abs=0.3)
    assert mask[inner].mean() > 0.9


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


def test_photo_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        synthetic.load_photos(tmp_path / "missing")
    with pytest.raises(JobError, match="no photos found"):
        synthetic.load_photos(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(JobError, match=r"broken\.jpg: cannot be read"):
        synthetic.load_photos(tmp_path)


class _Constant(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, value: float) -> None:
        self.value = value

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"source": torch.tensor(self.value)}


def test_mixing_follows_the_fraction_and_is_seeded() -> None:
    mixed = stream.MixedDataset(_Constant(1.0), _Constant(0.0), 0.25, seed=5)
    drawn = [float(mixed[i]["source"]) for i in range(400)]
    assert 0.18 < sum(drawn) / 400 < 0.32
    assert drawn == [
        float(stream.MixedDataset(_Constant(1.0), _Constant(0.0), 0.25, seed=5)[i]["source"]) for i in range(400)
    ]
    assert all(float(stream.MixedDataset(_Constant(1.0), None, 1.0)[i]["source"]) == 1 for i in range(10))
    with pytest.raises(JobError, match="needs both sources"):
        stream.MixedDataset(_Constant(1.0), None, 0.5)


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
