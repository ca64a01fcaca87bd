"""Optical flow from OpenCV's DIS (Kroeger et al., ECCV 2016): the classical flow source.

Plain numpy and OpenCV, no torch or VapourSynth: the filter (``flow="dis"``), training data and
evaluation all compute the same flows here. Frames are (3, H, W) float RGB in [0, 1]; flows are
(2, H, W) float32 in pixels, x then y, in the convention the network uses: ``F01`` maps a pixel of I0 to
where it is in I1.
"""

from __future__ import annotations

from typing import Literal, get_args

import cv2
import numpy as np

from .luma import luma

__all__ = [
    "FLOW_SOURCES",
    "FlowSource",
    "compensated_difference",
    "consistency_mask",
    "dis_flow_labels",
    "dis_flows",
    "dis_gray",
    "dis_scaled",
    "dis_seeded",
    "gray8",
]

FlowSource = Literal["net", "dis"]
FLOW_SOURCES: tuple[str, ...] = get_args(FlowSource)
# Medium: the preset the default weights were trained with (their interpolation net learned its errors),
# and the one a 600-step trial on real clips had shown to beat FlowFPS; 23 ms a direction on one core at
# 640×360 (measured), less than the width-0.25 flow network. Other presets were not measured.
_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM


def gray8(frame: np.ndarray) -> np.ndarray:
    """The luma of a (3, H, W) RGB frame in [0, 1] as contiguous uint8, DIS's input."""
    return _eight_bit(luma(frame))


def _eight_bit(y: np.ndarray) -> np.ndarray:
    return (y.clip(0, 1) * 255 + 0.5).astype(np.uint8)


_MIN_SIDE = 16  # DIS refuses pictures smaller than 12 px both ways; tiny ones are padded up to this


def dis_gray(g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
    """DIS from one 8-bit picture to another, (2, H, W); any size (tiny pictures padded by replication)."""
    h, w = g0.shape
    pad = ((0, max(0, _MIN_SIDE - h)), (0, max(0, _MIN_SIDE - w)))
    g0, g1 = (np.pad(g, pad, mode="edge") for g in (g0, g1))
    # OpenCV allocates the output flow when given None; its stub wants an array there.
    flow = cv2.DISOpticalFlow.create(_PRESET).calc(g0, g1, None)  # type: ignore[call-overload]
    return np.ascontiguousarray(flow[:h, :w].transpose(2, 0, 1))


# A pair whose pictures are shifted by more than this as a whole (phase correlation) gets a second DIS started
# from that shift: medium's pyramid follows some 20-40 px at 640 px wide, a pan can move 100.
_SEED_MIN_PX = 8.0
_MATCH_WINDOW = 9  # px: the side of the local mean warp errors that choose between the two flows


def _warp_error(g0: np.ndarray, g1: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Local mean of |I0 - I1 brought back along ``flow``|, (H, W) float32."""
    gx, gy = _grid(*g0.shape)
    back = cv2.remap(g1, gx + flow[0], gy + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.blur(np.abs(g0 - back), (_MATCH_WINDOW, _MATCH_WINDOW))


def dis_seeded(g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
    """:func:`dis_gray`, and where the pair is shifted as a whole by more than DIS follows, DIS again from that
    shift (a pan); per pixel, the flow that brings I1 back onto I0 better.

    Measured (weights/README.md): a pan of outlined flat shapes moving 86 px between the frames, 17.7 dB
    without the seed and 20.4 with it; clips that do not pan keep plain DIS's flows.
    """
    flow = dis_gray(g0, g1)
    y0, y1 = g0.astype(np.float32), g1.astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(y1, y0)  # how far I0 sits from I1: F01 is about (-dx, -dy)
    if np.hypot(dx, dy) < _SEED_MIN_PX or min(g0.shape) < _MIN_SIDE:
        return flow
    start = np.empty((*g0.shape, 2), np.float32)
    start[..., 0], start[..., 1] = -dx, -dy
    # DIS starts from a flow given with the pictures' size and type (OpenCV's dis_flow.cpp).
    seeded = cv2.DISOpticalFlow.create(_PRESET).calc(g0, g1, start).transpose(2, 0, 1)
    better = _warp_error(y0, y1, seeded) < _warp_error(y0, y1, flow)
    return np.ascontiguousarray(np.where(better[None], seeded, flow), np.float32)


def dis_scaled(g0: np.ndarray, g1: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """:func:`dis_seeded` on the pictures shrunk to ``scale`` of their size (area averages), its flows brought
    back to the full size (bilinear, vectors scaled): for networks that run at that scale (the filter's
    ``scale``), at about a quarter of DIS's time at 0.5. Medium computes its finest flow at half the size it is
    given and upsamples it, so these flows are that much coarser (:func:`.sizing.flow_scale` measures the cost)."""
    if scale >= 1:
        return dis_seeded(g0, g1)
    h, w = g0.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = dis_seeded(*(cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (g0, g1)))
    full = cv2.resize(small.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR)
    full *= np.array([w / size[0], h / size[1]], np.float32)
    return np.ascontiguousarray(full.transpose(2, 0, 1))


def dis_flows(frame0: np.ndarray, frame1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F01, F10)`` between two (3, H, W) RGB frames: DIS both ways, each (2, H, W) float32 pixels.

    DIS ``calc(prev=I0, next=I1)`` gives u with I0(x) ≈ I1(x + u): exactly F01. A new DIS object per
    call: the object keeps state between calls, and one shared object would not be thread-safe.
    """
    g0, g1 = gray8(frame0), gray8(frame1)
    return dis_gray(g0, g1), dis_gray(g1, g0)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def compensated_difference(frame0: np.ndarray, frame1: np.ndarray) -> float:
    """Mean absolute luma difference of I0 and I1 brought back onto it along DIS's F01, in [0, 1].

    A scene cut stays different after motion compensation; large motion does not. Measured on the five
    hard cuts of a real clip, compensation left 0.145 to 0.35 of difference (70 % or more of it), while a
    handheld pan whose frames differed by 0.166 came down to 0.051.
    """
    y0, y1 = luma(np.asarray(frame0, np.float32)), luma(np.asarray(frame1, np.float32))
    f01 = dis_gray(_eight_bit(y0), _eight_bit(y1))  # the same luma DIS would compute again
    gx, gy = _grid(*y0.shape)
    back = cv2.remap(y1, gx + f01[0], gy + f01[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return float(np.abs(y0 - back).mean())


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where ``forward`` (2, H, W) is trustworthy: the backward flow at its target undoes it.

    The forward-backward check of Sundaram et al. (2010); occlusions and failures fail it. (H, W) bool.
    """
    gx, gy = _grid(*forward.shape[1:])
    back = cv2.remap(
        np.ascontiguousarray(backward.transpose(1, 2, 0)),
        gx + forward[0],
        gy + forward[1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).transpose(2, 0, 1)

    def norm2(f: np.ndarray) -> np.ndarray:
        squared: np.ndarray = f[0] ** 2 + f[1] ** 2  # faster than a numpy reduction over an axis of 2
        return squared

    agree: np.ndarray = norm2(forward + back) < 0.01 * (norm2(forward) + norm2(back)) + 0.5
    return agree


def dis_flow_labels(frame0: np.ndarray, frame1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DIS flows as labels: ``(F01, F10, mask)`` (:func:`dis_flows`) with a mask (2, H, W) float32 keeping the
    pixels whose forward and backward flows agree (:func:`consistency_mask`: a pseudo-label's trusted part)."""
    f01, f10 = dis_flows(frame0, frame1)
    masks = [consistency_mask(f01, f10), consistency_mask(f10, f01)]
    return f01, f10, np.stack(masks).astype(np.float32)
