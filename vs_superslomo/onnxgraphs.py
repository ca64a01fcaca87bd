"""The ONNX backends' graphs: each U-Net exported once per input size to the user's cache folder (keyed by the
weights' hash, the size and the versions of torch and of the runtime, checked against a stored SHA-256 before every
use), loaded once per process, and run on the CPU by onnxruntime or OpenVINO, several forwards at once where the
filter computes several pairs at once (:mod:`.parallel`). :mod:`.backends` chooses among them and the others.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import io
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import BackendError
from .files import atomic_write, prune_least_recent, user_cache_dir
from .network import UNet

if TYPE_CHECKING:
    from .backends import Backend

__all__ = [
    "CONV1_INPUT",
    "FLOW_INPUT",
    "FLOW_OUTPUT",
    "INTERP_INPUT",
    "INTERP_OUTPUT",
    "ONNX_CACHE_BYTES",
    "OPSET",
    "OnnxNet",
    "export_onnx",
    "first_line",
    "install_hint",
    "onnx_cache_dir",
    "weights_digest",
]

# The extra that installs each ONNX backend's packages.
_EXTRAS: dict[str, str] = {"onnxruntime": "onnx", "openvino": "openvino"}
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def install_hint(backend: str) -> str:
    return f"pip install 'vs-superslomo[{_EXTRAS[backend]}]'"


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
        first = first_line(exc)
        raise BackendError(
            f"exporting {path.name} to ONNX failed: {first}; the exporter comes with {install_hint('onnxruntime')} "
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


# Loaded graphs for the process, by file, OpenVINO's static shape, thread count and streams.
_LOADED: dict[tuple[str, tuple[int, ...], int, int], Any] = {}
_LOAD_LOCK = threading.Lock()
_OPENVINO_READY: list[bool] = []  # whether OpenVINO's binding has run its first inference in this process


def _infer(request: Any, x: np.ndarray) -> np.ndarray:
    """One OpenVINO inference, the input shared (not copied), the output copied: the request reuses its buffer."""
    return np.array(request.infer({0: x}, share_inputs=True)[0])


class OnnxNet:
    """One U-Net through an ONNX runtime on the CPU: exported once per input size (on disk, across processes),
    loaded once per size and process; forwards on float32 tensors."""

    def __init__(
        self, module: nn.Module, part: str, names: tuple[str, str], backend: Backend, unet: UNet, streams: int
    ):
        self.module, self.unet, self.part = module, unet, part  # unet: whose weights key the cache
        self.input_name, self.output_name = names
        self.backend = backend
        self._digest: str | None = None  # on first use: the flow net of DIS weights never runs
        self.threads = torch.get_num_threads()  # fixed for the runner: frames must not depend on VapourSynth's
        self.streams = streams  # forwards at once, each on ``threads`` threads
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
        key = (str(path), shape if self.backend == "openvino" else (), self.threads, self.streams)
        with _LOAD_LOCK:  # one session (compiled model) per graph and process, shared by every filter
            loaded = _LOADED.get(key)
            if loaded is None:
                loaded = _LOADED[key] = self._open(path, shape)
            if self.backend == "openvino" and not _OPENVINO_READY:
                # Its Python binding sets up C++ statics (its data types) on the first inference of the process: two
                # threads doing that at once deadlocked on a static's guard (1 run in 30 with two streams). So one
                # inference first, alone.
                _infer(loaded.create_infer_request(), np.zeros(shape, np.float32))
                _OPENVINO_READY.append(True)
        if self.backend == "onnxruntime":
            name = self.input_name
            return lambda x: np.asarray(loaded.run(None, {name: x})[0])  # run() is thread-safe
        idle: queue.SimpleQueue[Any] = queue.SimpleQueue()  # requests are not: one for each forward in flight
        for _ in range(self.streams):
            idle.put(loaded.create_infer_request())

        def infer(x: np.ndarray) -> np.ndarray:
            request = idle.get()
            try:
                return _infer(request, x)
            finally:
                idle.put(request)

        return infer

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
            # One CPU stream runs one request at a time: two requests on one stream took turns (measured).
            "NUM_STREAMS": self.streams,
            "INFERENCE_NUM_THREADS": self.threads * self.streams,
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
                        first = first_line(exc)
                        raise BackendError(
                            f"{self.backend} cannot load the exported {self.part} U-Net ({path}): {first}; "
                            f"reinstall it with {install_hint(self.backend)}, or use backend='torch'"
                        ) from exc
                self._runs[shape] = run
        return run

    def __call__(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            raise BackendError(f"backend={self.backend!r} runs float32 on the CPU, got {x.dtype} on {x.device}")
        run = self._run_for(x)
        return torch.from_numpy(run(x.contiguous().numpy()))
