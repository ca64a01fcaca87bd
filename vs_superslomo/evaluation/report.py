"""The evaluation's outputs: Markdown tables, every number as JSON, PSNR against t, the most-moving crop, and
held frames before and after dedup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import vapoursynth as vs

from ..colour import to_rgb
from ..files import atomic_write
from ..metrics import PSNR_CAP_DB, psnr
from ..network import SuperSloMo
from ..plugin import HELD_PROP, NEXT_PROP, T_PROP, superslomo
from .protocol import (
    COLOUR_NOTE,
    CROP_SIZE,
    UNDER_BLEND_DB,
    ClipResult,
    Showcase,
    box_motion,
    read_rgb,
    scoring_colour,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "cadence_table",
    "markdown_tables",
    "plot_crop",
    "plot_held",
    "plot_psnr_vs_t",
    "plot_worst",
    "worst_case_table",
    "write_outputs",
]


def _columns(results: Sequence[ClipResult]) -> list[tuple[int, str]]:
    methods = list(dict.fromkeys(m for r in results for m in r.scores))
    return [(k, m) for k in sorted({r.k for r in results}) for m in methods]


def markdown_tables(results: Sequence[ClipResult]) -> str:
    """PSNR and SSIM tables: a row per window, a column per k × method, and a mean row over the clips."""
    columns = _columns(results)
    rows = list(dict.fromkeys(r.window.name for r in results))
    cell = {(r.window.name, r.k, m): r for r in results for m in r.scores}
    blocks = []
    for metric, unit, digits in (("psnr", "dB", 2), ("ssim", "", 4)):
        head = [f"{m} k={k}" for k, m in columns]
        lines = [
            f"{metric.upper()}{f' ({unit})' if unit else ''}, mean over dropped frames",
            "",
            "| clip | " + " | ".join(head) + " |",
            "|---|" + "---|" * len(head),
        ]
        means: dict[tuple[int, str], list[float]] = {c: [] for c in columns}
        for name in rows:
            values = []
            for k, m in columns:
                result = cell.get((name, k, m))
                if result is None:
                    values.append("–")
                    continue
                means[(k, m)].append(result.mean(m, metric))
                values.append(f"{means[(k, m)][-1]:.{digits}f}")
            lines.append(f"| {name} | " + " | ".join(values) + " |")
        lines.append("| **mean** | " + " | ".join(f"{np.mean(means[c]):.{digits}f}" for c in columns) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def worst_case_table(results: Sequence[ClipResult]) -> str:
    """Per clip and k, each method's frames more than :data:`.protocol.UNDER_BLEND_DB` under blend (of how many)
    and its worst frame's margin over blend; empty without blend."""
    methods = [m for m in dict.fromkeys(m for r in results for m in r.scores) if m not in ("repeat", "blend")]
    if not methods or not all("blend" in r.scores for r in results):
        return ""
    lines = [
        f"Worst case: frames more than {UNDER_BLEND_DB:g} dB under blend (of the dropped frames) / the worst "
        "frame's PSNR minus blend's (dB)",
        "",
        "| clip | k | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for r in results:
        cells = []
        for m in methods:
            margins = r.margins(m) if m in r.scores else []
            under = sum(x < -UNDER_BLEND_DB for x in margins)
            cells.append(f"{under}/{len(margins)} / {min(margins):+.2f}" if margins else "–")
        lines.append(f"| {r.window.name} | {r.k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _report(results: Sequence[ClipResult]) -> str:
    windows = ", ".join(f"{n}@{s}" for n, s in dict.fromkeys((r.window.name, r.window.start) for r in results))
    return (
        "# Frame-drop evaluation\n\n"
        f"Windows (name@first frame, {results[0].window.length} frames): {windows}. Input: every k-th frame; "
        f"scores on the dropped frames, {COLOUR_NOTE}; PSNR of identical frames capped at {PSNR_CAP_DB:g} dB.\n\n"
        + markdown_tables(results)
        + ("\n" + worst if (worst := worst_case_table(results)) else "")
    )


def _as_json(results: Sequence[ClipResult]) -> dict[str, object]:
    return {
        "protocol": {"psnr_cap_db": PSNR_CAP_DB, "colour": COLOUR_NOTE},
        "clips": [
            {
                "name": r.window.name,
                "file": r.path,
                "start": r.window.start,
                "length": r.window.length,
                "k": r.k,
                "mean": {m: {"psnr": r.mean(m, "psnr"), "ssim": r.mean(m, "ssim")} for m in r.scores},
                "worst_vs_blend": {m: min(r.margins(m)) for m in r.scores} if "blend" in r.scores else {},
                "frames": {
                    m: [{"frame": s.frame, "t": float(s.t), "psnr": s.psnr, "ssim": s.ssim} for s in frames]
                    for m, frames in r.scores.items()
                },
            }
            for r in results
        ],
    }


def _psnr_by_t(results: Sequence[ClipResult], k: int, method: str) -> tuple[list[float], list[float]]:
    """t and PSNR at t: mean over a clip's frames at that t, then over clips."""
    per_t: dict[Fraction, list[float]] = {}
    for r in (r for r in results if r.k == k and method in r.scores):
        frames = r.scores[method]
        for t in sorted({s.t for s in frames}):
            per_t.setdefault(t, []).append(float(np.mean([s.psnr for s in frames if s.t == t])))
    ts = sorted(per_t)
    return [float(t) for t in ts], [float(np.mean(per_t[t])) for t in ts]


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(figure: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    _pyplot().close(figure)


def plot_psnr_vs_t(results: Sequence[ClipResult], path: Path) -> None:
    """One panel per k: mean PSNR over clips against t, a line per method (as figure 8 of the paper)."""
    plt = _pyplot()
    ks = sorted({r.k for r in results})
    methods = list(dict.fromkeys(m for r in results for m in r.scores))
    figure, axes = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 3.8), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        clips = len({r.window.name for r in results if r.k == k})
        for method in methods:
            ax.plot(*_psnr_by_t(results, k, method), marker="o", label=method)
        ax.set_xticks([p / k for p in range(1, k)], [str(Fraction(p, k)) for p in range(1, k)])
        ax.set(xlim=(0, 1), xlabel="t", ylabel="PSNR (dB)", title=f"k = {k}, mean of {clips} clip(s)")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    figure.tight_layout()
    _save_figure(figure, path)


def plot_crop(show: Showcase, path: Path) -> None:
    """The truth and each method's rebuilt crop side by side, each labelled with its PSNR on the crop."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(show.crops), figsize=(3.2 * len(show.crops), 3.6), squeeze=False)
    truth = show.crops["ground truth"]
    for ax, (name, crop) in zip(axes[0], show.crops.items(), strict=True):
        ax.imshow(crop, interpolation="nearest")
        ax.set_title(name if crop is truth else f"{name} {psnr(truth, crop):.2f} dB")
        ax.axis("off")
    top, left, size = show.box
    figure.suptitle(
        f"{show.name} frame {show.frame} (k = {show.k}, t = {show.t}), {size}×{size} crop at x={left}, y={top}"
    )
    figure.tight_layout()
    _save_figure(figure, path)


def plot_worst(results: Sequence[ClipResult], path: Path) -> None:
    """A row per clip and k: the crop of the frame where the first model falls furthest under blend, ground truth
    beside the model, blend and FlowFPS, each labelled with its PSNR on the crop."""
    shown = [r.worst for r in results if r.worst is not None]
    if not shown:
        return
    plt = _pyplot()
    columns = max(len(s.crops) for s in shown)
    figure, axes = plt.subplots(len(shown), columns, figsize=(3.2 * columns, 3.5 * len(shown)), squeeze=False)
    for row, show in zip(axes, shown, strict=True):
        truth = show.crops["ground truth"]
        for ax in row:
            ax.axis("off")
        for ax, (name, crop) in zip(row, show.crops.items(), strict=False):
            ax.imshow(crop, interpolation="nearest")
            ax.set_title(name if crop is truth else f"{name} {psnr(truth, crop):.2f} dB", fontsize=9)
        top, left, _ = show.box
        row[0].set_title(
            f"{show.name} k={show.k} frame {show.frame} (t = {show.t}): {show.margin:+.2f} dB vs blend\n"
            f"ground truth, crop at x={left}, y={top}",
            fontsize=9,
        )
    figure.tight_layout()
    _save_figure(figure, path)


def plot_held(source: vs.VideoNode, start: int, model: SuperSloMo, path: Path, count: int = 4) -> None:
    """A clip with real held frames, judged by eye: ``count`` source frames from ``start`` above the same
    frames through the filter at factor 1 with ``dedup=True``, on the crop that moves most."""
    rgb = to_rgb(source[start : start + count + 1], scoring_colour(source))
    deduped = superslomo(rgb, 1, model=model, dedup=True)
    above = [read_rgb(rgb.get_frame(i)) for i in range(count)]
    below = [deduped.get_frame(i) for i in range(count)]
    size = min(CROP_SIZE, rgb.width, rgb.height)
    top, left, _ = box_motion(above[-1], above[0], above[0], size)
    plt = _pyplot()
    figure, axes = plt.subplots(2, count, figsize=(3.2 * count, 7.0), squeeze=False)
    for i in range(count):
        frame = below[i]
        held = " (held)" if frame.props.get(HELD_PROP) else ""
        nxt = start + int(frame.props.get(NEXT_PROP, 0))
        t = f"t = {frame.props[T_PROP]:.2f} to {nxt}" if NEXT_PROP in frame.props else "copy"
        for row, image, title in ((0, above[i], f"source {start + i}{held}"), (1, read_rgb(frame), f"dedup: {t}")):
            axes[row][i].imshow(image[top : top + size, left : left + size], interpolation="nearest")
            axes[row][i].set_title(title)
            axes[row][i].axis("off")
    figure.suptitle(f"held frames: source (top) and superslomo(clip, 1, dedup=True) (bottom), x={left}, y={top}")
    figure.tight_layout()
    _save_figure(figure, path)


def write_outputs(results: Sequence[ClipResult], show: Showcase | None, out_dir: Path) -> str:
    """Write results.md, results.json, psnr_vs_t.png, crop.png and worst.png (each atomically); the Markdown."""
    report = _report(results)
    atomic_write(out_dir / "results.md", lambda tmp: tmp.write_text(report, encoding="utf-8"))
    text = json.dumps(_as_json(results), indent=1)
    atomic_write(out_dir / "results.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    plot_psnr_vs_t(results, out_dir / "psnr_vs_t.png")
    if show is not None:
        plot_crop(show, out_dir / "crop.png")
    plot_worst(results, out_dir / "worst.png")
    return report


def cadence_table(rows: Sequence[tuple[str, Sequence[int], dict[str, float]]]) -> str:
    """The held-frame protocol by cadence (:func:`~vs_superslomo.evaluation.protocol.evaluate_cadence`): a row
    per (window name, cadence, scores)."""
    lines = [
        "| clip | cadence | repeat | blend | held (factor 1, dedup) | distinct (timestamps) |",
        "|---|---|---|---|---|---|",
    ]
    for name, pattern, got in rows:
        scores = " | ".join(f"{got[m]:.2f}" for m in ("repeat", "blend", "held", "distinct"))
        lines.append(f"| {name} | {'-'.join(map(str, pattern))} | {scores} |")
    return "# Held-frame protocol by cadence (PSNR, dB, on the copies' positions)\n\n" + "\n".join(lines) + "\n"
