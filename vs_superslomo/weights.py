"""Weights I/O: the original port's ``.ckpt``, this project's safetensors format, and the default file.

Own format: one safetensors file with tensors ``flow.<port key>`` and ``interp.<port key>`` (the port's
``state_dictFC`` and ``state_dictAT`` keys under a prefix) and string metadata ``width``, ``warp``,
``mean`` (three comma-separated floats), ``flow`` (``net`` or ``dis``: the flow the interpolation net was
trained on; ``net`` when absent, as in files written before it existed), ``flow_width`` (the flow net's
channel multiplier where it differs from ``width``, the interpolation net's; absent: the same) and
``provenance``. Tensors may be
stored in fp16 to halve the file; they load as fp32. Pickled checkpoints are read only with
``weights_only=True``: a file that carries code is refused and its code never runs.
"""

from __future__ import annotations

import datetime
import math
import os
import pickle
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .errors import WeightsError
from .files import atomic_write
from .flow import FLOW_SOURCES, FlowSource
from .network import DEFAULT_MEAN, SuperSloMo
from .warp import WARPS, Warp

__all__ = [
    "DEFAULT_WEIGHTS_NAME",
    "ModelInfo",
    "WeightsError",
    "convert",
    "default_weights_path",
    "load_model",
    "save_model",
]

DEFAULT_WEIGHTS_NAME = "superslomo-default.safetensors"
MAX_WIDTH = 4.0  # no trained network is wider; at width 64 a single layer would take 38 GB
_PREFIXES = {"flow": "state_dictFC", "interp": "state_dictAT"}


@dataclass(frozen=True)
class ModelInfo:
    """What a weights file says about the network it holds."""

    width: float = 1.0
    warp: Warp = "exact"
    mean: tuple[float, float, float] = DEFAULT_MEAN
    provenance: str = ""
    flow: FlowSource = "net"
    flow_width: float | None = None  # the flow net's width where it differs from the interpolation net's


def _weights_dirs() -> list[Path]:
    """Where the default weights may live: a source checkout, then an installed wheel's data files."""
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "weights", Path(sys.prefix) / "share" / "vs_superslomo" / "weights"]
    env = os.environ.get("VS_SUPERSLOMO_WEIGHTS_DIR")
    return ([Path(env)] if env else []) + dirs


def default_weights_path() -> Path:
    """The default weights file, or :class:`WeightsError` saying where it was looked for."""
    dirs = _weights_dirs()
    for d in dirs:
        if (d / DEFAULT_WEIGHTS_NAME).is_file():
            return d / DEFAULT_WEIGHTS_NAME
    looked = ", ".join(str(d) for d in dirs)
    raise WeightsError(
        f"no default weights {DEFAULT_WEIGHTS_NAME} found (looked in {looked}); reinstall vs-superslomo "
        "(its wheel carries them), or give a weights file, the original SuperSloMo.ckpt or a .safetensors "
        "(model=... in a script, --model on the command line)"
    )


def _infer_width(flow: Mapping[str, Tensor], path: Path) -> float:
    weight = flow.get("conv1.weight")
    if weight is None or weight.ndim != 4:
        raise WeightsError(f"{path}: flow network has no 4-D conv1.weight, so this is not a Super SloMo checkpoint")
    return weight.shape[0] / 32


def _load_ckpt(path: Path) -> tuple[dict[str, Tensor], dict[str, Tensor], ModelInfo]:
    try:
        # The port stores a datetime in its metadata; allow exactly that class and nothing else.
        with torch.serialization.safe_globals([datetime.datetime]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text suggests weights_only=False, i.e. running the file's code: never repeat it.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"code or objects other than tensors ({found[1]})" if found else "something other than tensors"
        raise WeightsError(
            f"{path}: refused as unsafe: the checkpoint carries {what}, which could run code on loading, so it "
            "was not loaded; use weights from a source you trust, or a .safetensors file"
        ) from None
    except Exception as exc:
        first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: damaged or not a checkpoint, cannot be read: {first}") from None
    if not isinstance(data, dict) or not all(k in data for k in _PREFIXES.values()):
        keys = sorted(map(str, data))[:5] if isinstance(data, dict) else type(data).__name__
        raise WeightsError(
            f"{path}: not an original Super SloMo checkpoint (needs state_dictFC and state_dictAT; has {keys})"
        )
    flow, interp = data["state_dictFC"], data["state_dictAT"]
    return (
        flow,
        interp,
        ModelInfo(width=_infer_width(flow, path), warp="legacy", provenance="original-format checkpoint"),
    )


def _parse_info(meta: Mapping[str, str], path: Path) -> ModelInfo:
    try:
        width = float(meta["width"])
        warp = meta["warp"]
        mean = tuple(float(x) for x in meta.get("mean", ",".join(map(str, DEFAULT_MEAN))).split(","))
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: metadata needs width, warp and mean; got {dict(meta)} ({exc})") from exc
    if warp not in WARPS:
        raise WeightsError(f"{path}: metadata warp must be one of {WARPS}, got {warp!r}")
    if len(mean) != 3:
        raise WeightsError(f"{path}: metadata mean needs 3 values, got {len(mean)}")
    if not all(math.isfinite(m) for m in mean):
        raise WeightsError(f"{path}: metadata mean must be 3 finite numbers, got {meta['mean']!r}: the file is damaged")
    flow = meta.get("flow", "net")
    if flow not in FLOW_SOURCES:
        raise WeightsError(f"{path}: metadata flow must be one of {FLOW_SOURCES}, got {flow!r}")
    try:
        flow_width = float(meta["flow_width"]) if "flow_width" in meta else None
    except ValueError:
        raise WeightsError(f"{path}: metadata flow_width must be a number, got {meta['flow_width']!r}") from None
    # warp, mean and flow are checked above; mypy cannot narrow a str to a Literal or a tuple to 3 items by them.
    provenance = meta.get("provenance", "")
    return ModelInfo(width, warp, mean, provenance, flow, flow_width)  # type: ignore[arg-type]


def _load_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Tensor], ModelInfo]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged or not a safetensors file: {exc}") from exc
    parts: dict[str, dict[str, Tensor]] = {p: {} for p in _PREFIXES}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix not in parts:
            raise WeightsError(f"{path}: unexpected key {key!r} (keys start with 'flow.' or 'interp.')")
        parts[prefix][rest] = value
    return parts["flow"], parts["interp"], _parse_info(meta, path)


def _check_width(width: float, path: Path) -> None:
    """A width outside (0, MAX_WIDTH] would build a network of up to hundreds of GB before failing."""
    if not (math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise WeightsError(
            f"{path}: width {width:g} is not a Super SloMo network's (0 < width <= {MAX_WIDTH:g}; the published "
            "network is 1, i.e. 32 channels in conv1), so the file is damaged or of another network"
        )


def _network(info: ModelInfo) -> SuperSloMo:
    """The network ``info`` describes, with fresh weights."""
    return SuperSloMo(
        width=info.width, warp=info.warp, mean=info.mean, flow_source=info.flow, flow_width=info.flow_width
    )


def _layout(info: ModelInfo) -> SuperSloMo:
    """The network ``info`` describes, on the meta device: every tensor's shape, no memory, no init."""
    with torch.device("meta"):
        return _network(info)


def _check_state(net: torch.nn.Module, state: Mapping[str, Tensor], name: str, path: Path) -> None:
    """Name the first missing, unexpected or mis-shaped key, so a wrong file says what is wrong."""
    expected = net.state_dict()
    for key, want in expected.items():
        got = state.get(key)
        if got is None:
            raise WeightsError(f"{path}: {name} network lacks key {key!r} (expected shape {tuple(want.shape)})")
        if tuple(got.shape) != tuple(want.shape):
            raise WeightsError(
                f"{path}: {name} network key {key!r} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise WeightsError(f"{path}: {name} network has unexpected key {extra[0]!r}")
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(
                f"{path}: {name} network key {key!r} holds NaN or infinite values, so every frame would be "
                "garbage: the file is damaged (or its training diverged); use other weights"
            )


def load_model(path: str | os.PathLike[str] | None = None) -> tuple[SuperSloMo, ModelInfo]:
    """The network and its metadata from a ``.ckpt`` (original format) or ``.safetensors`` file.

    ``None`` loads the default weights. Raises :class:`WeightsError` naming the file and the problem.
    """
    file = default_weights_path() if path is None else Path(path)
    if not file.is_file():
        raise WeightsError(f"{file}: no such weights file")
    with open(file, "rb") as fh:
        head = fh.read(9)
    # safetensors starts with an 8-byte header length and then the JSON header's "{"; anything else is
    # treated as a torch.save checkpoint (zip or legacy pickle).
    loader = _load_safetensors if head[8:9] == b"{" else _load_ckpt
    flow, interp, info = loader(file)
    # Every check before the network is built: a wrong width or shape would allocate it first.
    for width in (info.width, info.flow_width):
        if width is not None:
            _check_width(width, file)
    layout = _layout(info)
    _check_state(layout.flow, flow, "flow", file)
    _check_state(layout.interp, interp, "interp", file)
    model = _network(info)
    for net, state in ((model.flow, flow), (model.interp, interp)):
        net.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval(), info


def save_model(
    model: SuperSloMo,
    path: str | os.PathLike[str],
    *,
    provenance: str = "",
    half: bool = False,
) -> None:
    """Write ``model`` in the project's safetensors format (``half`` stores fp16 tensors)."""
    dtype = torch.float16 if half else torch.float32
    tensors = {
        f"{prefix}.{key}": value.detach().to("cpu", dtype).contiguous()
        for prefix, net in (("flow", model.flow), ("interp", model.interp))
        for key, value in net.state_dict().items()
    }
    mean = ",".join(repr(float(x)) for x in model.mean.flatten())
    meta = {
        "width": repr(float(model.width)),
        "warp": model.warp,
        "mean": mean,
        "flow": model.flow_source,
        "provenance": provenance,
    }
    if model.flow_width != model.width:
        meta["flow_width"] = repr(float(model.flow_width))
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    half: bool = False,
    flow_net: str | os.PathLike[str] | None = None,
) -> ModelInfo:
    """Convert any loadable weights file (e.g. the original ``SuperSloMo.ckpt``) to safetensors.

    ``flow_net``: another weights file whose flow network replaces ``src``'s (any width, the same warp), so
    an interpolation network trained on DIS flows, whose own flow net was never trained, can carry one for
    ``flow="net"``; the provenance says where it came from."""
    model, info = load_model(src)
    provenance = info.provenance or f"converted from {Path(src).name}"
    if flow_net is not None:
        donor, donor_info = load_model(flow_net)
        if donor_info.warp != info.warp:
            raise WeightsError(
                f"{flow_net}: its flow network uses the {donor_info.warp} warp and {src} the {info.warp} warp; "
                "take the flow network from weights of the same warp"
            )
        info = replace(info, flow_width=donor.flow_width if donor.flow_width != info.width else None)
        combined = _network(info)
        combined.interp.load_state_dict(model.interp.state_dict())
        combined.flow.load_state_dict(donor.flow.state_dict())
        model = combined.eval()
        taken = donor_info.provenance or "no provenance recorded"
        provenance += f"; flow network (for flow='net') from {Path(flow_net).name} [{taken}]"
    save_model(model, dst, provenance=provenance, half=half)
    return replace(info, provenance=provenance)
