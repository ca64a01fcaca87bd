"""YUV ⇄ RGB conversion around the filter, with the source's colour props (or defaults by resolution).

``core.resize`` reads ``_Matrix``/``_Transfer``/``_Primaries``/``_Range`` from frame props; many files
leave them unset, and then it refuses to convert. Unset values get the usual defaults: BT.709 above SD,
BT.601 (170m/470bg by height) for SD, limited range for YUV. RGB to RGB changes the bit depth alone
(vsutil's ``depth``, rounding to nearest as ``resize.Point`` does: no dithering).
"""

from __future__ import annotations

from dataclasses import dataclass

import vapoursynth as vs
from vsutil import Dither, depth

__all__ = ["UNSPECIFIED", "ColourProps", "from_rgb", "source_colour", "to_rgb"]

UNSPECIFIED = 2  # the H.273 code for "unspecified" in _Matrix, _Transfer and _Primaries


@dataclass(frozen=True)
class ColourProps:
    """H.273 codes as VapourSynth's frame props use them."""

    matrix: int
    transfer: int
    primaries: int
    range: int  # 0 = limited, 1 = full (vs.Range)

    def as_props(self) -> dict[str, int]:
        return {"_Matrix": self.matrix, "_Transfer": self.transfer, "_Primaries": self.primaries, "_Range": self.range}


def _defaults(clip: vs.VideoNode) -> ColourProps:
    if clip.width > 1024 or clip.height > 576:
        return ColourProps(matrix=1, transfer=1, primaries=1, range=0)  # BT.709
    if clip.height == 576:
        return ColourProps(matrix=5, transfer=6, primaries=5, range=0)  # BT.601 625-line (470bg)
    return ColourProps(matrix=6, transfer=6, primaries=6, range=0)  # BT.601 525-line (170m)


def source_colour(clip: vs.VideoNode) -> ColourProps:
    """The colour props of ``clip``'s first frame, with unset or unspecified ones filled by defaults."""
    props = clip.get_frame(0).props
    default = _defaults(clip)
    is_rgb = clip.format.color_family == vs.RGB

    def pick(name: str, fallback: int) -> int:
        value = props.get(name)
        return fallback if value is None or int(value) == UNSPECIFIED else int(value)

    return ColourProps(
        matrix=0 if is_rgb else pick("_Matrix", default.matrix),
        transfer=pick("_Transfer", default.transfer),
        primaries=pick("_Primaries", default.primaries),
        range=int(props.get("_Range", 1 if is_rgb else default.range)),
    )


def to_rgb(clip: vs.VideoNode, colour: ColourProps | None = None, format: int = vs.RGBS) -> vs.VideoNode:
    """Convert any constant-format clip to ``format`` (RGBS by default) with its matrix and range."""
    colour = colour or source_colour(clip)
    if clip.format is not None and clip.format.color_family == vs.RGB:
        target = vs.core.get_video_format(format)
        return depth(clip, target.bits_per_sample, target.sample_type, dither_type=Dither.NONE)
    tagged = vs.core.std.SetFrameProps(clip, **colour.as_props())
    return vs.core.resize.Bicubic(tagged, format=format)


def from_rgb(rgb: vs.VideoNode, like: vs.VideoNode, colour: ColourProps | None = None) -> vs.VideoNode:
    """Convert ``rgb`` back to ``like``'s format and bit depth, tagging the colour props of ``like``."""
    colour = colour or source_colour(like)
    assert like.format is not None
    if like.format.color_family == vs.RGB:
        out = depth(rgb, like.format.bits_per_sample, like.format.sample_type, dither_type=Dither.NONE)
    else:
        out = vs.core.resize.Bicubic(rgb, format=like.format.id, matrix=colour.matrix, range=colour.range)
    return vs.core.std.SetFrameProps(out, **colour.as_props())
