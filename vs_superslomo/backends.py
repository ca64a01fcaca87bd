"""Where the two U-Nets run: PyTorch eager, ``torch.compile``, or an ONNX export in onnxruntime or OpenVINO.

Only the U-Nets move: the flow U-Net whole, and the interpolation U-Net from its first convolution on
(:meth:`UNet.forward_from_conv1`: the engine still computes that convolution's t-independent share once per
pair). Warps, flow formulas and the blend stay in PyTorch, the same code for every backend.

``compile`` compiles each U-Net once per input shape, for the life of the process. The ONNX backends export
each U-Net once per input size to the user's cache folder (keyed by the weights' hash, the size and the
versions of torch and of the runtime) and load it once per process. Their graphs take any batch size: on the
CPU the engine runs one t per forward, but a user's ``batch_size`` and the last, smaller batch of a pair
would otherwise each need their own export. A missing package or a failed export is a
:class:`BackendError` naming the extra to install: a backend never falls back to another one, whose
frames would differ in their last bits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import importlib.util
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from .errors import BackendError
from .files import atomic_write, prune_least_recent, user_cache_dir
from .network import SuperSloMo, UNet

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "ONNX_CACHE_BYTES",
    "OPSET",
    "Backend",
    "BackendError",
    "FromConv1",
    "Nets",
    "available_backends",
    "default_backend",
    "export_onnx",
    "load_nets",
    "onnx_cache_dir",
    "weights_digest",
]

Backend = Literal["torch", "compile", "onnxruntime", "openvino"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# Chooses the default backend (e.g. for the command line): the same names, checked as an argument would be.
BACKEND_ENV = "VS_SUPERSLOMO_BACKEND"
# The extra that installs each backend's packages, and the modules it needs: its runtime, imported when a filter
# is made so that a broken one fails then, and the ONNX exporter's onnxscript, only looked up then (importing it
# costs half a second of start-up, and a cached graph needs no export).
_EXTRAS: dict[str, str] = {"onnxruntime": "onnx", "openvino": "openvino"}
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
# The graphs' tensor names (documented in the README for the exported files).
FLOW_INPUT, FLOW_OUTPUT = "frames", "flows"
INTERP_INPUT, INTERP_OUTPUT = "features", "refinement"
CONV1_INPUT = "conv1"
# The lowest opset torch's exporter writes (it turns 17 into 18): the graphs use only Conv, Resize,
# AveragePool, LeakyRelu and Concat, which TensorRT 10 and the CPU runtimes read.
OPSET = 18
_ORT_SPIN = "0"
_FORMAT = 5  # bump when the exported graphs change, so old cache files are not used (5: convolutions in phases)
# The cache folder's size: a graph is 20-80 MB (default to full network), one per weights, frame size and
# torch/backend version, so without a bound it grows with every new size and upgrade. Past this, the graphs
# used longest ago go (exported again when next needed); 1 GiB holds about 50 sizes of the default weights.
ONNX_CACHE_BYTES = 1 << 30


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


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _install_hint(backend: str) -> str:
    return f"pip install 'vs-superslomo[{_EXTRAS[backend]}]'"


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
                f"{_install_hint(backend)}, or choose another backend (installed: {', '.join(available_backends())})"
            ) from None


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and values): what a cached graph is keyed by."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def onnx_cache_dir() -> Path:
    """Where exported graphs are kept: ``$XDG_CACHE_HOME/vs-superslomo/onnx`` (default ``~/.cache/...``)."""
    return user_cache_dir() / "onnx"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter prints progress to stdout (vspipe's video stream) and logs warnings: keep both out."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(module: nn.Module, example: Tensor, path: Path, input_name: str, output_name: str) -> None:
    """Write ``module`` (one tensor in, one out) to ``path`` as an ONNX graph for inputs shaped like ``example``,
    with any batch size; atomically, so a reader never sees half a file. Raises :class:`BackendError`, or
    OSError when ``path``'s folder cannot be written."""
    module = module.eval()
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before it fails deep inside)
    except ImportError:
        raise BackendError(
            "exporting to ONNX needs the onnxscript package; install it with pip install 'vs-superslomo[onnx]'"
        ) from None
    # Batch 2 in the example: torch.export would specialise a batch of 1 to a constant.
    example = example[:1].expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=4096)

    def write(tmp: Path) -> None:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=({0: batch},),
                external_data=False,
                dynamo=True,
                opset_version=OPSET,
            )

    try:
        atomic_write(path, write, suffix=".part.onnx")
    except (BackendError, OSError):  # OSError: the folder cannot be written, which the caller handles
        raise
    except Exception as exc:
        first = _first_line(exc)
        raise BackendError(
            f"exporting {path.name} to ONNX failed: {first}; the exporter comes with {_install_hint('onnxruntime')} "
            "(torch and onnxscript), or use backend='torch'"
        ) from exc


def _digest_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".sha256")


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _intact(graph: Path) -> bool:
    """Whether the cached ``graph`` is there and exactly as exported: its bytes hash to the digest stored with
    it. A damaged one (a flipped bit in its weights gave every frame as solid green) is exported again."""
    try:
        return _digest_path(graph).read_text().strip() == _file_digest(graph)
    except OSError:
        return False


_SCRATCH: list[Path] = []  # the process's own folder for graphs when the cache folder cannot be written


def _scratch_folder(exc: OSError) -> Path:
    """A temporary folder for this process's graphs, made (and the user told, once) on first need."""
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="vs-superslomo-onnx-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(folder)
        print(
            f"vs-superslomo: warning: cannot write the ONNX cache {onnx_cache_dir()} ({exc.strerror or exc}): "
            "graphs are exported for this run only; make it writable, or set XDG_CACHE_HOME to a writable folder",
            file=sys.stderr,
        )
    return _SCRATCH[0]


def _version(backend: str) -> str:
    return str(importlib.import_module(backend).__version__).split("-")[0].replace("/", "_")


# Loaded graphs for the process, by file, OpenVINO's static shape and thread count.
_LOADED: dict[tuple[str, tuple[int, ...], int], Any] = {}
_LOAD_LOCK = threading.Lock()


class _OnnxNet:
    """One U-Net through an ONNX runtime on the CPU: exported once per input size (on disk, across processes),
    loaded once per size and process; forwards on float32 tensors."""

    def __init__(
        self, module: nn.Module, part: str, input_name: str, output_name: str, backend: Backend, unet: UNet
    ) -> None:
        self.module = module
        self.unet = unet  # whose weights key the cache
        self.part = part
        self.input_name, self.output_name = input_name, output_name
        self.backend = backend
        self._digest: str | None = None  # on first use: the flow net of DIS weights never runs
        self.threads = torch.get_num_threads()  # fixed for the runner: frames must not depend on VapourSynth's
        self._runs: dict[tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {}
        self._lock = threading.Lock()

    def path(self, height: int, width: int) -> Path:
        """The cache file of this U-Net's graph for inputs of ``height`` × ``width``."""
        if self._digest is None:
            self._digest = weights_digest(self.unet)
        versions = f"torch{torch.__version__}-{self.backend}{_version(self.backend)}-f{_FORMAT}"
        return onnx_cache_dir() / f"{self.part}-{self._digest[:20]}-{width}x{height}-{versions}.onnx"

    def _graph(self, example: Tensor) -> Path:
        path = self.path(*example.shape[-2:])
        if _intact(path):
            with contextlib.suppress(OSError):  # a cache this user may only read is still used
                os.utime(path)  # used now: the last to go when the cache is pruned
            return path
        try:
            self._export(example, path)
        except OSError as exc:  # the cache folder cannot be written (read-only, full, another user's)
            path = _scratch_folder(exc) / path.name
            if not _intact(path):
                try:
                    self._export(example, path)
                except OSError as again:
                    raise BackendError(
                        f"cannot write the exported {self.part} U-Net to {path.parent}: {again.strerror or again}"
                    ) from None
            return path
        for pruned in prune_least_recent(path.parent, "*.onnx", ONNX_CACHE_BYTES, keep=path):
            _digest_path(pruned).unlink(missing_ok=True)
        return path

    def _export(self, example: Tensor, path: Path) -> None:
        """Export the graph to ``path`` and store its SHA-256 beside it, checked before every later use."""
        _digest_path(path).unlink(missing_ok=True)
        export_onnx(self.module, example.detach().float().cpu(), path, self.input_name, self.output_name)
        digest = _file_digest(path)
        atomic_write(_digest_path(path), lambda tmp: tmp.write_text(digest))

    def _load(self, path: Path, shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
        key = (str(path), shape if self.backend == "openvino" else (), self.threads)
        with _LOAD_LOCK:  # one session (compiled model) per graph and process, shared by every filter
            loaded = _LOADED.get(key)
            if loaded is None:
                loaded = _LOADED[key] = self._open(path, shape)
        if self.backend == "onnxruntime":
            name = self.input_name
            return lambda x: np.asarray(loaded.run(None, {name: x})[0])  # run() is thread-safe
        request = loaded.create_infer_request()  # requests are not: one per runner, whose calls are serialised
        return lambda x: np.array(request.infer({0: x})[0])  # a copy: the request reuses its output buffer

    def _open(self, path: Path, shape: tuple[int, ...]) -> Any:
        """An onnxruntime session, or an OpenVINO model compiled for ``shape``."""
        if self.backend == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # No busy-waiting between operators: VapourSynth's threads (DIS, frame copies) need those cycles.
            options.add_session_config_entry("session.intra_op.allow_spinning", _ORT_SPIN)
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        model.reshape({self.input_name: list(shape)})  # static shapes run faster; one compile per batch size
        config = {
            "INFERENCE_PRECISION_HINT": "f32",  # never bf16 behind our back (this CPU has it)
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            "ENABLE_CPU_PINNING": False,  # VapourSynth's threads share the cores; a pinned thread cannot move
        }
        return core.compile_model(model, "CPU", config)

    def _run_for(self, x: Tensor) -> Callable[[np.ndarray], np.ndarray]:
        shape = tuple(x.shape) if self.backend == "openvino" else tuple(x.shape[-2:])
        with self._lock:
            run = self._runs.get(shape)
            if run is None:
                path = self._graph(x)
                try:
                    run = self._load(path, tuple(x.shape))
                except Exception:
                    # A cache file that does not load (another version's, damaged): export it again, once.
                    path.unlink(missing_ok=True)
                    try:
                        run = self._load(self._graph(x), tuple(x.shape))
                    except BackendError:
                        raise
                    except Exception as exc:
                        first = _first_line(exc)
                        raise BackendError(
                            f"{self.backend} cannot load the exported {self.part} U-Net ({path}): {first}; "
                            f"reinstall it with {_install_hint(self.backend)}, or use backend='torch'"
                        ) from exc
                self._runs[shape] = run
        return run

    def __call__(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            raise BackendError(f"backend={self.backend!r} runs float32 on the CPU, got {x.dtype} on {x.device}")
        run = self._run_for(x)
        return torch.from_numpy(run(x.contiguous().numpy()))


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
                first = _first_line(exc)
                raise BackendError(
                    f"torch.compile failed for the input shape {tuple(x.shape)}: {first} (on the CPU it needs a C++ "
                    "compiler such as gcc); use backend='torch', or 'onnxruntime' "
                    f"({_install_hint('onnxruntime')})"
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


def load_nets(backend: str | None, model: SuperSloMo, device: torch.device) -> Nets:
    """The U-Net calls for ``model`` (already on ``device``) on ``backend`` (None: :func:`default_backend`).

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
        _OnnxNet(model.flow, "flow", FLOW_INPUT, FLOW_OUTPUT, name, model.flow),
        _OnnxNet(rest, "interp", CONV1_INPUT, INTERP_OUTPUT, name, model.interp),
    )
