"""Where the two U-Nets run: PyTorch eager, ``torch.compile``, or an ONNX export in onnxruntime or OpenVINO.

Only the U-Nets move: the flow U-Net whole, and the interpolation U-Net from its first convolution on
(:meth:`UNet.forward_from_conv1`: the engine still computes that convolution's t-independent share once per
pair). Warps, flow formulas and the blend stay in PyTorch, the same code for every backend.

``compile`` compiles each U-Net once per input shape, for the life of the process. The ONNX backends export
each U-Net once per input size to the user's cache folder (keyed by the weights' hash, the size and the
versions of torch and of the runtime) and load it once per process (:mod:`.onnxgraphs`). Their graphs take any
batch size: on the CPU the engine runs one t per forward, but a user's ``batch_size`` and the last, smaller
batch of a pair would otherwise each need their own export. A missing package or a failed export is a
:class:`BackendError` naming the extra to install: a backend never falls back to another one, whose
frames would differ in their last bits.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from .errors import BackendError
from .network import SuperSloMo, UNet
from .onnxgraphs import (
    CONV1_INPUT,
    FLOW_INPUT,
    FLOW_OUTPUT,
    INTERP_OUTPUT,
    OnnxNet,
    first_line,
    install_hint,
    weights_digest,
)

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "Backend",
    "BackendError",
    "FromConv1",
    "Nets",
    "available_backends",
    "default_backend",
    "load_nets",
]

Backend = Literal["torch", "compile", "onnxruntime", "openvino"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# Chooses the default backend (e.g. for the command line): the same names, checked as an argument would be.
BACKEND_ENV = "VS_SUPERSLOMO_BACKEND"
# The modules each backend needs: its runtime, imported when a filter is made so that a broken one fails then, and
# the ONNX exporter's onnxscript, only looked up then (importing it costs half a second of start-up, and a cached
# graph needs no export). :func:`.onnxgraphs.install_hint` names the extra that installs them.
_RUNTIMES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "compile": (),
    "onnxruntime": ("onnxruntime",),
    "openvino": ("openvino",),
}
_EXPORTER = "onnxscript"
_MODULES: dict[str, tuple[str, ...]] = {b: (*m, _EXPORTER) if m else () for b, m in _RUNTIMES.items()}
# The default on the CPU: the first installed of these. Measured on this project's 2-core CPU (README, Speed;
# make bench, one run): the filter at 448×256 8× with the full network ran 1.77× the reference loop on
# OpenVINO, 1.67× on onnxruntime, 1.38× with compile, 1.09× on torch; OpenVINO also used the least CPU time
# per frame, there and in single-threaded runs of the U-Net alone. ``compile`` is never the default: its
# first frames wait for the compiler (up to a minute per frame size; it needs a C++ compiler on the CPU).
_CPU_PREFERENCE: tuple[Backend, ...] = ("openvino", "onnxruntime")


class FromConv1(nn.Module):
    """The interpolation U-Net after its first convolution: what the engine runs per t (a module to export)."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, conv1: Tensor) -> Tensor:
        return self.unet.forward_from_conv1(conv1)


@dataclass(frozen=True)
class Nets:
    """The two U-Net calls of the engine, on one backend (see :meth:`SuperSloMo.prepare`)."""

    backend: Backend
    flow: Callable[[Tensor], Tensor]
    interp_rest: Callable[[Tensor], Tensor]


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked), or without a spec
        return False


def _installed(backend: str) -> bool:
    return all(_found(module) for module in _MODULES[backend])


def available_backends() -> tuple[Backend, ...]:
    """The backends whose packages are installed (``torch`` and ``compile`` always are)."""
    return tuple(b for b in get_args(Backend) if _installed(b))


def default_backend(device: torch.device) -> str:
    """``$VS_SUPERSLOMO_BACKEND`` when set, else the fastest installed backend for ``device``: OpenVINO, then
    onnxruntime on the CPU; torch on CUDA (the ONNX backends run on the CPU only)."""
    chosen = os.environ.get(BACKEND_ENV)
    if chosen:
        return chosen
    if device.type == "cpu":
        for backend in _CPU_PREFERENCE:
            if _installed(backend):
                return backend
    return "torch"


def _import(backend: str) -> None:
    """Import the backend's runtime now and look its exporter up, so a missing or broken one fails when the filter
    is made."""
    for module in _MODULES[backend]:
        try:
            if module in _RUNTIMES[backend]:
                importlib.import_module(module)
            elif not _found(module):
                raise ImportError(f"No module named {module!r}")
        except ImportError as exc:
            raise BackendError(
                f"backend={backend!r} needs the {module} package, which cannot be imported ({exc}); install it with "
                f"{install_hint(backend)}, or choose another backend (installed: {', '.join(available_backends())})"
            ) from None


_COMPILE_LOCK = threading.Lock()


class _CompiledNet:
    """One U-Net through ``torch.compile`` (inductor, weights frozen as constants), compiled once per shape.

    Dynamo keeps the compiled code per function for the process; past its recompile limit it would quietly
    run eager code instead, so that is made an error here rather than frames that change mid-clip.
    """

    def __init__(self, module: nn.Module) -> None:
        import torch._dynamo  # not imported with torch; its config is patched on every call below

        self.module = module
        self.compiled: Callable[..., Any] = torch.compile(module, dynamic=False, options={"freezing": True})
        self._seen: set[tuple[Any, ...]] = set()

    def __call__(self, x: Tensor) -> Tensor:
        key = (tuple(x.shape), x.dtype, x.device, torch.is_autocast_enabled(x.device.type))
        config = torch._dynamo.config.patch(fail_on_recompile_limit_hit=True, recompile_limit=64)
        if key in self._seen:
            with config:
                return self.compiled(x)  # type: ignore[no-any-return]
        with _COMPILE_LOCK, config:  # the first call compiles: never two threads at once
            try:
                out = self.compiled(x)
            except Exception as exc:
                first = first_line(exc)
                raise BackendError(
                    f"torch.compile failed for the input shape {tuple(x.shape)}: {first} (on the CPU it needs a C++ "
                    "compiler such as gcc); use backend='torch', or 'onnxruntime' "
                    f"({install_hint('onnxruntime')})"
                ) from exc
            self._seen.add(key)
            return out  # type: ignore[no-any-return]


# Compiled U-Nets for the process, by weights and device: two filters with the same weights compile once.
_COMPILED: dict[tuple[str, str, str], _CompiledNet] = {}


def _compiled(module: nn.Module, part: str, device: torch.device) -> _CompiledNet:
    key = (part, weights_digest(module), str(device))
    with _COMPILE_LOCK:
        if key not in _COMPILED:
            _COMPILED[key] = _CompiledNet(module)
        return _COMPILED[key]


def load_nets(backend: str | None, model: SuperSloMo, device: torch.device, streams: int = 1) -> Nets:
    """The U-Net calls for ``model`` (already on ``device``) on ``backend`` (None: :func:`default_backend`), for
    ``streams`` forwards at once, each on torch's thread count.

    Raises :class:`BackendError` for an unknown backend, a missing package (naming the extra to install) or
    an ONNX backend asked to run on a GPU.
    """
    if backend is None:
        backend = default_backend(device)
        if backend not in BACKENDS:
            raise BackendError(f"{BACKEND_ENV} must be one of {BACKENDS} (or unset), got {backend!r}")
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS} or None (the fastest installed), got {backend!r}")
    _import(backend)
    rest = FromConv1(model.interp).eval()
    if backend == "torch":
        return Nets("torch", model.flow, model.interp.forward_from_conv1)
    if backend == "compile":
        return Nets("compile", _compiled(model.flow, "flow", device), _compiled(rest, "interp", device))
    if device.type != "cpu":
        raise BackendError(
            f"backend={backend!r} runs on the CPU only; on {device} use backend='torch' or 'compile', "
            "or device_index=-1 for the CPU"
        )
    name: Backend = "onnxruntime" if backend == "onnxruntime" else "openvino"
    return Nets(
        name,
        OnnxNet(model.flow, "flow", (FLOW_INPUT, FLOW_OUTPUT), name, model.flow, streams),
        OnnxNet(rest, "interp", (CONV1_INPUT, INTERP_OUTPUT), name, model.interp, streams),
    )
