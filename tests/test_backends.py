"""Every backend against PyTorch eager on real content, its determinism, its cache and its errors.

Backends whose packages are missing are skipped (the ``test`` extra installs them all); ``compile`` needs a
C++ compiler on the CPU.
"""

from __future__ import annotations

import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import make_model, random_frames

from vs_superslomo import SuperSloMo, backends, onnxgraphs, superslomo
from vs_superslomo.backends import BACKEND_ENV, BackendError, load_nets
from vs_superslomo.engine import EngineError, Interpolator
from vs_superslomo.flow import FlowSource
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.onnxgraphs import weights_digest
from vs_superslomo.weights import load_model

core = vs.core
CPU = torch.device("cpu")
CLIP = Path(__file__).resolve().parent.parent / "examples" / "bbb_640x360.mp4"
ONNX_BACKENDS = ("openvino", "onnxruntime")  # the default's order
HAS_CXX = any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def installed(backend: str) -> bool:
    return backend in backends.available_backends() and (backend != "compile" or HAS_CXX)


def backend_param(backend: str) -> object:
    reason = f"{backend} is not installed (pip install 'vs-superslomo[onnx,openvino]')"
    if backend == "compile":
        reason = "torch.compile needs a C++ compiler on the CPU"
    return pytest.param(backend, marks=pytest.mark.skipif(not installed(backend), reason=reason))


@pytest.fixture(scope="module")
def real_frames() -> list[np.ndarray]:
    """Frames 24..28 of the bundled clip (640×360, Big Buck Bunny in motion) as (3, H, W) RGB in [0, 1]."""
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    for _ in range(29):
        ok, bgr = capture.read()
        assert ok, f"cannot decode {CLIP}"
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / 255)
    capture.release()
    return frames[24:]


@pytest.fixture(scope="module")
def default_model() -> SuperSloMo:
    return load_model(None)[0]


@pytest.mark.parametrize("flow", ["dis", "net"])
@pytest.mark.parametrize("backend", [backend_param(b) for b in ONNX_BACKENDS])
def test_onnx_backends_match_torch_on_real_content(
    backend: str, flow: FlowSource, real_frames: list[np.ndarray], default_model: SuperSloMo
) -> None:
    """The default weights on a real pair (320×192 of it, to keep the test short): within 1e-3 of PyTorch fp32
    (max abs), and the same bits again."""
    times = [0.25, 0.5, 0.75]
    a, b = (np.ascontiguousarray(f[:, 64:256, 160:480]) for f in real_frames[2:4])
    reference = Interpolator(default_model, CPU, backend="torch", flow=flow).interpolate(a, b, times)
    engine = Interpolator(default_model, CPU, backend=backend, flow=flow)
    assert engine.nets.backend == backend
    got = engine.interpolate(a, b, times)
    assert float((got - reference).abs().max()) < 1e-3
    assert float((got - torch.from_numpy(a)).abs().mean()) > 5e-3  # really interpolated, not a copy
    assert torch.equal(engine.interpolate(a, b, times), got)
    assert list(onnxgraphs.onnx_cache_dir().glob(f"interp-{weights_digest(default_model.interp)[:20]}-*{backend}*"))


def all_frames(out: vs.VideoNode, order: list[int], concurrent: bool) -> dict[int, np.ndarray]:
    if not concurrent:
        return {n: read_frame(out.get_frame(n)) for n in order}
    futures = {n: out.get_frame_async(n) for n in order}
    return {n: read_frame(f.result()) for n, f in futures.items()}


@pytest.fixture
def threads() -> Iterator[None]:
    old = core.num_threads
    yield
    core.num_threads = old


@pytest.mark.parametrize("backend", [backend_param(b) for b in (*ONNX_BACKENDS, "compile")])
def test_filter_is_deterministic_within_a_backend_and_close_to_torch(
    backend: str, real_frames: list[np.ndarray], default_model: SuperSloMo, threads: None
) -> None:
    """Any request order and thread count give the same bits on one backend; within 1e-3 of torch."""
    clip = clip_from_arrays([np.ascontiguousarray(f[:, 96:256, 192:448]) for f in real_frames])
    count = 4 * 3 + 1
    core.num_threads = 1
    reference = all_frames(superslomo(clip, 3, model=default_model, backend="torch"), list(range(count)), False)
    sequential = all_frames(superslomo(clip, 3, model=default_model, backend=backend), list(range(count)), False)
    core.num_threads = 2
    for order in (list(range(count))[::-1], random.Random(7).sample(range(count), count)):
        got = all_frames(superslomo(clip, 3, model=default_model, backend=backend), order, True)
        assert all(np.array_equal(got[n], sequential[n]) for n in range(count))
    assert max(float(np.abs(sequential[n] - reference[n]).max()) for n in range(count)) < 1e-3


@pytest.mark.parametrize("backend", [backend_param(b) for b in ONNX_BACKENDS])
def test_graphs_are_exported_once_per_weights_and_size(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exports: list[Path] = []
    export = onnxgraphs.export_onnx

    def recording(module: torch.nn.Module, example: torch.Tensor, path: Path, *names: str) -> None:
        exports.append(path)
        export(module, example, path, *names)

    monkeypatch.setattr(onnxgraphs, "export_onnx", recording)
    frames = random_frames(2, 40, 60, seed=3)
    model = make_model(seed=11)
    first = Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])
    assert len(exports) == 1  # the interpolation U-Net (with DIS flows the flow U-Net never runs)
    again = Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5, 0.25])
    assert len(exports) == 1 and torch.equal(again[:1], first)  # from the cache folder, same frames
    key = weights_digest(model.interp)[:20]
    assert key in exports[0].name and "96x64" in exports[0].name  # 60×40 and margins (16 before, 8 after), to 32s
    taller = random_frames(2, 72, 60, seed=3)
    Interpolator(model, CPU, backend=backend, flow="dis").interpolate(taller[0], taller[1], [0.5])
    Interpolator(make_model(seed=12), CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])
    assert len(exports) == 3  # a new size, then new weights
    assert not list(onnxgraphs.onnx_cache_dir().glob("*.part*"))
    # A cache full past its limit loses its least recently used graphs when a new one is written.
    sizes = [path.stat().st_size for path in exports]
    monkeypatch.setattr(onnxgraphs, "ONNX_CACHE_BYTES", 2 * max(sizes) + 1000)  # room for two graphs
    Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])  # uses the first
    tallest = random_frames(2, 104, 60, seed=3)
    Interpolator(model, CPU, backend=backend, flow="dis").interpolate(tallest[0], tallest[1], [0.5])
    assert len(exports) == 4 and [path.is_file() for path in exports] == [True, False, False, True]


@pytest.mark.parametrize("runtime", [True, False], ids=["runtime", "exporter"])
@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_missing_package_is_one_clear_error_naming_the_extra(
    backend: str, runtime: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exporter (onnxscript) is only looked up when the filter is made, not imported: the same error.
    module = ("onnxruntime" if backend == "onnxruntime" else "openvino") if runtime else "onnxscript"
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    extra = "onnx" if backend == "onnxruntime" else "openvino"
    clip = clip_from_arrays(random_frames(2, 16, 16))
    with pytest.raises(vs.Error, match=rf"superslomo: backend='{backend}' needs the {module} package.*\[{extra}\]"):
        superslomo(clip, model=make_model(), backend=backend)
    assert backend not in backends.available_backends()
    monkeypatch.delenv(BACKEND_ENV)
    assert backends.default_backend(CPU) != backend  # the default takes the next installed one


def test_failed_export_is_one_error_and_never_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", broken)
    out = superslomo(
        clip_from_arrays(random_frames(2, 24, 24, seed=5)), model=make_model(seed=5), backend="onnxruntime"
    )
    assert np.array_equal(read_frame(out.get_frame(0)), read_frame(out.get_frame(0)))  # copies need no network
    with pytest.raises(
        vs.Error, match=r"superslomo: exporting flow-.*onnx to ONNX failed: unsupported operator.*\[onnx\]"
    ):
        out.get_frame(1)
    with pytest.raises(vs.Error, match="failed"):  # and again: nothing else computed the frame meanwhile
        out.get_frame(1)
    assert not list(onnxgraphs.onnx_cache_dir().glob("*.part*"))


def test_backend_choice_and_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    clip = clip_from_arrays(random_frames(2, 16, 16))
    with pytest.raises(vs.Error, match=r"superslomo: backend must be one of \('torch', 'compile'"):
        superslomo(clip, model=make_model(), backend="tensorrt")
    monkeypatch.setenv(BACKEND_ENV, "fast")
    with pytest.raises(vs.Error, match=f"{BACKEND_ENV} must be one of"):
        superslomo(clip, model=make_model())
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert Interpolator(make_model(), CPU).nets.backend == "torch"
    monkeypatch.delenv(BACKEND_ENV)
    expected = next((b for b in ONNX_BACKENDS if b in backends.available_backends()), "torch")
    assert backends.default_backend(CPU) == expected
    assert backends.default_backend(torch.device("cuda")) == "torch"
    for backend in ONNX_BACKENDS:
        if installed(backend):
            with pytest.raises(BackendError, match="runs on the CPU only"):
                load_nets(backend, make_model(), torch.device("cuda"))
    with pytest.raises(EngineError, match="backend must be one of"):
        Interpolator(make_model(), CPU, backend="onnx")


def test_the_test_extra_installs_every_backend() -> None:
    """CI runs the backends' tests: the test extra pulls in the [onnx] and [openvino] extras."""
    setup = (Path(__file__).resolve().parent.parent / "setup.cfg").read_text()
    test_extra = setup.split("\ntest =")[1].split("\n\n")[0]
    assert "onnx" in test_extra and "openvino" in test_extra


@pytest.mark.parametrize("backend", [backend_param(b) for b in ONNX_BACKENDS])
def test_a_damaged_cached_graph_is_exported_again(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    frames = random_frames(2, 40, 60, seed=3)
    model = make_model(seed=13)
    first = Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])
    (graph,) = onnxgraphs.onnx_cache_dir().glob("interp-*.onnx")
    weight = model.interp.conv3.weight.detach().contiguous().numpy().tobytes()
    data = graph.read_bytes()
    assert data.count(weight) == 1
    graph.write_bytes(data.replace(weight, b"\xff" * len(weight)))  # NaNs in its weights: a valid graph still
    monkeypatch.setattr(onnxgraphs, "_LOADED", {})  # a new process: graphs are read from the cache folder again
    again = Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])
    assert torch.equal(again, first) and graph.read_bytes() == data


@pytest.mark.parametrize("backend", [backend_param(b) for b in ONNX_BACKENDS])
def test_an_unwritable_cache_folder_runs_without_it_and_says_so_once(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder would go")  # no folder can be made in it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(onnxgraphs, "_SCRATCH", [], raising=False)  # warned afresh
    frames = random_frames(2, 40, 60, seed=3)
    model = make_model(seed=14)
    reference = Interpolator(model, CPU, backend="torch", flow="dis").interpolate(frames[0], frames[1], [0.5])
    got = Interpolator(model, CPU, backend=backend, flow="dis").interpolate(frames[0], frames[1], [0.5])
    taller = random_frames(2, 72, 60, seed=3)
    Interpolator(model, CPU, backend=backend, flow="dis").interpolate(taller[0], taller[1], [0.5])
    assert float((got - reference).abs().max()) < 1e-3
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the ONNX cache") == 1 and "set XDG_CACHE_HOME" in err, err
