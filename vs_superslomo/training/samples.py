"""Training samples: three frames (I0, the target It at time t, I1) with optional flows and accelerations,
and augmentation.

A sample's frames are (3, H, W) float32 RGB in [0, 1] and its flows F01/F10 (2, H, W) in pixels (see
:class:`Sample`). Every item of a training stream is a pure function of ``(seed, index)``
(:func:`sample_rng`), so streams are reproducible and resumable, with any number of DataLoader workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from ..flow import dis_flow_labels, dis_gray, gray8
from ..luma import luma
from ..motion import accelerations
from ..warp import Warp

__all__ = [
    "DEFAULT_AUGMENT",
    "STREAM_MIX",
    "STREAM_REAL",
    "STREAM_SYNTHETIC",
    "Augment",
    "Sample",
    "augment",
    "best_crop",
    "colour_jitter",
    "crop",
    "fit",
    "flip",
    "reverse",
    "sample_rng",
]

# Separate random streams per purpose, so e.g. the mixing coin never shifts the synthetic stream.
STREAM_SYNTHETIC, STREAM_REAL, STREAM_MIX = 1, 2, 3


def sample_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random numbers of item ``index`` of a stream: a pure function of the three numbers."""
    return np.random.default_rng([seed, index, stream])


@dataclass
class Sample:
    """One training triple, frames (3, H, W) float32 in [0, 1] and flows (2, H, W) in pixels.

    ``flow_mask`` (2, H, W) is 1 where channel 0 = F01 / channel 1 = F10 is trustworthy; both flows and the
    mask are zero and ``has_flow`` False when the motion is unknown. ``accel`` (4, H, W), A0 then A1 in
    pixels, is quadratic motion's accelerations (:func:`.motion.accelerations`); None: the paper's linear
    motion, as the filter has at clip ends and cuts.
    """

    i0: np.ndarray
    i1: np.ndarray
    it: np.ndarray
    t: float
    flow01: np.ndarray
    flow10: np.ndarray
    flow_mask: np.ndarray
    has_flow: bool
    accel: np.ndarray | None = None

    @classmethod
    def without_flow(cls, i0: np.ndarray, i1: np.ndarray, it: np.ndarray, t: float) -> Sample:
        zeros = np.zeros((2, *i0.shape[1:]), np.float32)
        return cls(i0, i1, it, t, zeros, zeros.copy(), zeros.copy(), False)

    def with_dis_flows(self) -> Sample:
        """This sample with DIS flows between its I0 and I1 as its flows and mask (:func:`.flow.dis_flow_labels`)."""
        f01, f10, mask = dis_flow_labels(self.i0, self.i1)
        return replace(self, flow01=f01, flow10=f10, flow_mask=mask, has_flow=True)

    def with_accelerations(self, before: np.ndarray, after: np.ndarray, warp: Warp = "exact") -> Sample:
        """This sample (with DIS flows) with quadratic motion's accelerations from the frames one interval
        before I0 and after I1, computed as the filter computes them (DIS on whole frames, the same test)."""
        if not self.has_flow:
            raise ValueError("accelerations need the sample's DIS flows first (with_dis_flows)")
        outward = dis_gray(gray8(self.i0), gray8(before)), dis_gray(gray8(self.i1), gray8(after))
        f01, f10, f0m, f12 = (torch.from_numpy(f)[None] for f in (self.flow01, self.flow10, *outward))
        a0, a1 = accelerations(f01, f10, f0m, f12, warp)
        return replace(self, accel=torch.cat((a0, a1), 1)[0].numpy())

    @property
    def shape(self) -> tuple[int, int]:
        return self.i0.shape[1], self.i0.shape[2]

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Sample:
        """Apply one spatial operation to every array (frames, flows, mask, accelerations) alike."""
        arrays = (self.i0, self.i1, self.it, self.flow01, self.flow10, self.flow_mask)
        i0, i1, it, f01, f10, mask = (np.ascontiguousarray(fn(a), dtype=np.float32) for a in arrays)
        accel = None if self.accel is None else np.ascontiguousarray(fn(self.accel), dtype=np.float32)
        return Sample(i0, i1, it, self.t, f01, f10, mask, self.has_flow, accel)

    def to_tensors(self) -> dict[str, Tensor]:
        # Copies: an uncropped frame may still be a view into a clip's frames, which must stay untouched.
        out = {k: torch.from_numpy(np.array(getattr(self, k), dtype=np.float32)) for k in _ARRAY_KEYS}
        out["t"] = torch.tensor(self.t, dtype=torch.float32)
        out["has_flow"] = torch.tensor(float(self.has_flow), dtype=torch.float32)
        # Zero accelerations are linear motion exactly: samples with and without them batch together.
        accel = np.zeros((4, *self.shape), np.float32) if self.accel is None else self.accel
        out["accel"] = torch.from_numpy(np.array(accel, dtype=np.float32))
        return out


_ARRAY_KEYS = ("i0", "i1", "it", "flow01", "flow10", "flow_mask")


def flip(sample: Sample, axis: Literal["x", "y"]) -> Sample:
    """Mirror left-right (``x``) or upside down (``y``); that flow (and acceleration) component changes sign."""
    dim, channel = (2, 0) if axis == "x" else (1, 1)
    out = sample.map(lambda a: np.flip(a, dim).copy())  # a copy: the flows are negated in place below
    out.flow01[channel] *= -1
    out.flow10[channel] *= -1
    if out.accel is not None:
        out.accel[channel::2] *= -1
    return out


def reverse(sample: Sample) -> Sample:
    """Play the triple backwards: I0 ⇄ I1, t → 1 − t, F01 ⇄ F10 (F01 of the reversed clip is F10), A0 ⇄ A1
    (the reversed clip's A0 = F10 + F12 is A1; the acceleration term is symmetric in t and 1 − t)."""
    mask = sample.flow_mask[::-1].copy()
    accel = None if sample.accel is None else np.concatenate((sample.accel[2:], sample.accel[:2]))
    return Sample(
        sample.i1, sample.i0, sample.it, 1.0 - sample.t, sample.flow10, sample.flow01, mask, sample.has_flow, accel
    )


def crop(sample: Sample, y: int, x: int, height: int, width: int) -> Sample:
    return sample.map(lambda a: a[:, y : y + height, x : x + width])


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (C, H, W) array bilinearly (cv2 works on H, W, C and drops a single channel)."""
    out = cv2.resize(array.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
    return out.reshape(height, width, -1).transpose(2, 0, 1)


def fit(sample: Sample, size: int) -> Sample:
    """Upscale (keeping the aspect) so both sides are at least ``size``; flows scale with the picture."""
    h, w = sample.shape
    scale = size / min(h, w)
    if scale <= 1:
        return sample
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = sample.map(lambda a: _resize(a, nh, nw))
    for flow in (out.flow01, out.flow10, *([] if out.accel is None else [out.accel])):
        flow[0::2] *= nw / w
        flow[1::2] *= nh / h
    out.flow_mask = (out.flow_mask > 0.999).astype(np.float32)
    return out


def colour_jitter(sample: Sample, rng: np.random.Generator, strength: float = 1.0) -> Sample:
    """One random gamma, channel gain, saturation, contrast and brightness for all three frames."""
    if strength <= 0:
        return sample
    gamma = math.exp(rng.uniform(-0.2, 0.2) * strength)
    gains = (1 + rng.uniform(-0.06, 0.06, 3) * strength).astype(np.float32).reshape(3, 1, 1)
    saturation = 1 + rng.uniform(-0.3, 0.3) * strength
    contrast = 1 + rng.uniform(-0.2, 0.2) * strength
    brightness = rng.uniform(-0.06, 0.06) * strength

    def apply(frame: np.ndarray) -> np.ndarray:
        x = np.power(np.clip(frame, 0, 1), gamma) * gains
        grey = luma(x)[None]
        x = grey + saturation * (x - grey)
        return np.clip((x - 0.5) * contrast + 0.5 + brightness, 0, 1).astype(np.float32)

    return replace(sample, i0=apply(sample.i0), i1=apply(sample.i1), it=apply(sample.it))


def _motion_score(sample: Sample) -> float:
    return float(np.abs(luma(sample.i1) - luma(sample.i0)).mean())


def best_crop(sample: Sample, size: int, positions: Sequence[tuple[int, int]]) -> Sample:
    """The crop with the most change between I0 and I1: static corners teach the network nothing."""
    crops = [crop(sample, y, x, size, size) for y, x in positions]
    return max(crops, key=_motion_score)


@dataclass(frozen=True)
class Augment:
    """Probabilities and strengths of the random augmentations (all applied to the whole sample)."""

    hflip: float = 0.5
    vflip: float = 0.1
    reverse: float = 0.5
    jitter: float = 1.0
    crop_tries: int = 3

    @classmethod
    def none(cls) -> Augment:
        return cls(hflip=0.0, vflip=0.0, reverse=0.0, jitter=0.0, crop_tries=1)


DEFAULT_AUGMENT = Augment()


def augment(sample: Sample, rng: np.random.Generator, size: int, options: Augment = DEFAULT_AUGMENT) -> Sample:
    """Fit, random ``size``² crop (best of ``crop_tries``), flips, temporal reversal and colour jitter."""
    sample = fit(sample, size)
    h, w = sample.shape
    tries = max(1, options.crop_tries)
    positions = [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))) for _ in range(tries)]
    sample = best_crop(sample, size, list(dict.fromkeys(positions)))
    if rng.random() < options.hflip:
        sample = flip(sample, "x")
    if rng.random() < options.vflip:
        sample = flip(sample, "y")
    if rng.random() < options.reverse:
        sample = reverse(sample)
    return colour_jitter(sample, rng, options.jitter)
