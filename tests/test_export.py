"""``vs-superslomo export``: the graphs round-trip through onnxruntime, with the documented names and channels."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import make_model, random_frames

from vs_superslomo.cli import main
from vs_superslomo.engine import Interpolator
from vs_superslomo.export import export_model, flow_path
from vs_superslomo.warp import backwarp
from vs_superslomo.weights import save_model

ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("onnxscript", reason="the [onnx] extra is not installed")


def session(path: Path) -> Any:  # an onnxruntime.InferenceSession (the package has no types)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_exported_graphs_reproduce_the_filter_with_the_documented_interface(tmp_path: Path) -> None:
    """The README's recipe around the two graphs gives the engine's frames; names and shapes as documented."""
    model = make_model()
    written = export_model(model, tmp_path / "ssm.onnx", (50, 30))
    assert [g.path for g in written] == [tmp_path / "ssm.onnx", tmp_path / "ssm.flow.onnx"]
    interp, flow = session(written[0].path), session(written[1].path)
    # 50×30 with margins of 16 px before and 8 after: 74×54, then up to multiples of 32: 96×64
    assert [(i.name, i.shape) for i in interp.get_inputs()] == [("features", ["batch", 20, 64, 96])]
    assert [(o.name, o.shape) for o in interp.get_outputs()] == [("refinement", ["batch", 5, 64, 96])]
    assert [(i.name, i.shape) for i in flow.get_inputs()] == [("frames", ["batch", 6, 64, 96])]
    assert [(o.name, o.shape) for o in flow.get_outputs()] == [("flows", ["batch", 4, 64, 96])]

    frames = random_frames(2, 30, 50, seed=4)
    times = [0.25, 0.5, 0.75]
    engine = Interpolator(model, torch.device("cpu"), backend="torch", flow="net")
    expected = engine.interpolate(frames[0], frames[1], times)
    x0, x1 = engine.upload(frames[0], frames[1])
    i0, i1 = x0 - model.mean, x1 - model.mean
    flows = torch.from_numpy(flow.run(None, {"frames": torch.cat((i0, i1), 1).numpy()})[0])
    f01, f10 = flows[:, 0:2], flows[:, 2:4]
    t = torch.tensor(times).view(-1, 1, 1, 1)
    n = len(times)
    i0, i1, f01, f10 = (x.expand(n, -1, -1, -1) for x in (i0, i1, f01, f10))
    ft0 = -(1 - t) * t * f01 + t * t * f10
    ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
    g0, g1 = backwarp(i0, ft0, "exact"), backwarp(i1, ft1, "exact")
    features = torch.cat((i0, i1, f01, f10, ft1, ft0, g1, g0), 1).contiguous()
    refinement = torch.from_numpy(interp.run(None, {"features": features.numpy()})[0])  # a batch of 3
    v0 = torch.sigmoid(refinement[:, 4:5])
    w0, w1 = (1 - t) * v0, t * (1 - v0)
    warped0 = backwarp(i0, ft0 + refinement[:, 0:2], "exact")
    blended = w0 * warped0 + w1 * backwarp(i1, ft1 + refinement[:, 2:4], "exact")
    got = engine.unpad((blended / (w0 + w1) + model.mean).clamp(0, 1), 30, 50)
    assert float((got - expected).abs().max()) < 1e-4
    assert float((got - torch.from_numpy(frames[0])).abs().max()) > 0.01  # the frames really moved


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "tiny.safetensors"
    dis = make_model()
    dis.flow_source = "dis"
    save_model(dis, weights)
    out = tmp_path / "out" / "tiny.onnx"
    assert main(["export", str(weights), str(out), "--size", "40x24"]) == 0
    printed = capsys.readouterr().out
    assert "40x24 frames run the networks at 64x64" in printed and "features (N, 20, 64, 64)" in printed
    assert out.is_file() and not flow_path(out).exists()  # DIS weights: no flow net to export
    features = np.random.default_rng(0).random((2, 20, 64, 64), dtype=np.float32)
    got = session(out).run(None, {"features": features})[0]
    with torch.no_grad():
        assert np.abs(got - dis.interp(torch.from_numpy(features)).numpy()).max() < 1e-4

    assert main(["export", str(weights), str(out), "--size", "40x24"]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(weights), str(out), "--size", "40x24", "--flow", "net", "--overwrite"]) == 0
    assert flow_path(out).is_file()
    assert main(["export", str(tmp_path / "missing.safetensors"), str(out), "--size", "40x24"]) == 1
    assert "no such weights file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["export", str(weights), str(out), "--size", "40"])
    assert usage.value.code == 2 and "bad size '40'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["export", str(weights), str(tmp_path / "new.onnx"), "--size", "40x24"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pip install 'vs-superslomo[onnx]'" in error
    assert not (tmp_path / "new.onnx").exists()
