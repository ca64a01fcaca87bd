"""``vs-superslomo export WEIGHTS OUT.onnx --size WxH``: the U-Nets as ONNX graphs for TensorRT or vs-mlrt.

``OUT.onnx`` is the interpolation U-Net whole: input ``features`` (N, 20, H', W'), output ``refinement``
(N, 5, H', W'). For weights whose motion comes from the flow network, ``OUT.flow.onnx`` is the flow U-Net:
``frames`` (N, 6, H', W') to ``flows`` (N, 4, H', W'). N is dynamic; H' × W' is the size the filter runs the
networks at for WxH frames (a replicated margin, then up to a multiple of 32). Warps and blend are not in
the graphs: the README (Exporting) gives every channel's meaning and the formulas around them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .commandline import Parser, parse_size, run
from .engine import Interpolator
from .errors import JobError
from .flow import FLOW_SOURCES, FlowSource
from .network import SuperSloMo
from .onnxgraphs import FLOW_INPUT, FLOW_OUTPUT, INTERP_INPUT, INTERP_OUTPUT, export_onnx
from .weights import load_model

__all__ = ["ExportedGraph", "export_model", "flow_path", "main"]

_PROG = "vs-superslomo export"


@dataclass(frozen=True)
class ExportedGraph:
    """A written graph: its file, and its input's and output's names and shapes (N shown as 1)."""

    path: Path
    input_name: str
    input_shape: tuple[int, int, int, int]
    output_name: str
    output_shape: tuple[int, int, int, int]

    def describe(self) -> str:
        def shape(s: tuple[int, ...]) -> str:
            return "(N, " + ", ".join(map(str, s[1:])) + ")"

        return (
            f"{self.path}: {self.input_name} {shape(self.input_shape)} -> {self.output_name} {shape(self.output_shape)}"
        )


def flow_path(out: Path) -> Path:
    """Where the flow U-Net goes beside ``OUT.onnx``: ``OUT.flow.onnx``."""
    return out.with_name(out.stem + ".flow" + (out.suffix or ".onnx"))


def export_model(
    model: SuperSloMo,
    out: Path,
    size: tuple[int, int],
    *,
    flow: FlowSource | None = None,
) -> list[ExportedGraph]:
    """Write the interpolation U-Net (and with ``flow="net"`` the flow U-Net) of ``model`` for frames of
    ``size`` (w, h); returns what was written. ``flow`` None: what the weights were trained with."""
    flow = model.flow_source if flow is None else flow
    engine = Interpolator(model.cpu().eval(), torch.device("cpu"), flow=flow, backend="torch")
    blank = np.zeros((3, size[1], size[0]), np.float32)
    height, width = engine.upload(blank, blank)[0].shape[-2:]
    graphs = [(model.interp, out, INTERP_INPUT, 20, INTERP_OUTPUT, 5)]
    if flow == "net":
        graphs.append((model.flow, flow_path(out), FLOW_INPUT, 6, FLOW_OUTPUT, 4))
    written = []
    for net, path, src, cin, dst, cout in graphs:
        example = torch.zeros(1, cin, height, width)
        export_onnx(net, example, path, src, dst)
        written.append(ExportedGraph(path, src, (1, cin, height, width), dst, (1, cout, height, width)))
    return written


def main(argv: Sequence[str]) -> int:
    """Entry point of ``vs-superslomo export``: one line and status 1 on an error, 2 on a usage error."""
    p = Parser(
        prog=_PROG,
        description="Write the Super SloMo U-Nets as ONNX graphs (for TensorRT's trtexec, vs-mlrt, onnxruntime).",
    )
    p.add_argument("weights", help="a .safetensors or original .ckpt file, or 'default' for the bundled weights")
    p.add_argument("output", type=Path, help="OUT.onnx: the interpolation U-Net; OUT.flow.onnx: the flow U-Net")
    p.add_argument("--size", type=parse_size, required=True, help="the video's frame size, WxH (or 720p, 1080p, …)")
    p.add_argument(
        "--flow",
        choices=("auto", *FLOW_SOURCES),
        default="auto",
        help="write the flow U-Net too (net) or not (dis); auto: what the weights were trained with",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = p.parse_args(argv)
    return run(_PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    weights = None if args.weights == "default" and not Path("default").exists() else args.weights
    model, _ = load_model(weights)
    flow: FlowSource = model.flow_source if args.flow == "auto" else args.flow
    targets = [args.output, *([flow_path(args.output)] if flow == "net" else [])]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.overwrite:
        raise JobError(f"{', '.join(existing)} exists; pass --overwrite to replace it")
    written = export_model(model, args.output, args.size, flow=flow)
    w, h = args.size
    shape = written[0].input_shape
    print(f"{w}x{h} frames run the networks at {shape[3]}x{shape[2]} (replicated margin, multiple of 32):")
    for graph in written:
        print(f"  {graph.describe()}")
