"""The benchmark command on a tiny size: every method runs, the numbers are consistent, JSON is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import make_model

from vs_superslomo import bench
from vs_superslomo.backends import available_backends


def test_run_bench_times_all_three_methods() -> None:
    (result,) = bench.run_bench((64, 32), 4, width=0.0625, pairs=2, reps=2)
    assert result.output_frames == 12 and result.precision == "fp32" and result.device == "cpu"
    assert result.backend == "torch" and result.flow == "net" and result.first_e2e_seconds > 0
    assert set(result.seconds) == set(bench.METHODS) and all(s > 0 for s in result.seconds.values())
    for method, seconds in result.seconds.items():
        assert result.fps[method] == pytest.approx(12 / seconds)
    assert result.e2e_vs_network == pytest.approx(result.seconds["network"] / result.seconds["e2e"])
    assert all(peak > 0 for peak in result.peak_host_mib.values())
    row = bench.table([result]).splitlines()[-1]
    assert row.startswith("| 64×32 | 4× | 0.0625 | net | torch | cpu | fp32 |")


def test_backends_are_timed_in_one_run_sharing_the_reference() -> None:
    installed = [b for b in ("onnxruntime", "openvino") if b in available_backends()]
    if not installed:
        pytest.skip("no ONNX backend installed")
    model = make_model()
    model.flow_source = "dis"  # the default weights' kind: the flow comes from DIS
    results = bench.run_bench((64, 32), 2, pairs=1, reps=1, backends=["torch", installed[0]], model=model)
    assert [r.backend for r in results] == ["torch", installed[0]]
    assert all(r.flow == "dis+splat" and r.net_width == model.width for r in results)  # the filter's default
    assert results[0].seconds["reference"] == results[1].seconds["reference"]
    assert results[0].seconds["e2e"] != results[1].seconds["e2e"]


def test_main_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    argv = ["--size", "32x32", "--factor", "2", "--width", "0.0625", "--pairs", "1", "--reps", "1", "--json", str(out)]
    assert bench.main([*argv, "--flow", "net", "dis", "--backend", "torch"]) == 0
    assert "e2e / network" in capsys.readouterr().out
    entries = json.loads(out.read_text())
    assert [e["flow"] for e in entries] == ["net", "dis+splat"] and {e["backend"] for e in entries} == {"torch"}
    assert all(e["output_frames"] == 4 and e["factor"] == 2 and "e2e_vs_reference" in e for e in entries)
    assert bench.main([*argv, "--flow", "dis", "--no-splat", "--backend", "torch"]) == 0
    assert [e["flow"] for e in json.loads(out.read_text())] == ["dis"]
    with pytest.raises(SystemExit):
        bench.main(["--size", "big"])
    with pytest.raises(SystemExit):
        bench.main(["--size", "0x32"])
    with pytest.raises(SystemExit):
        bench.main(["--backend", "tensorrt"])


def test_moving_texture_moves_without_looking_like_a_cut() -> None:
    frames = bench.moving_texture(3, 64, 96)
    assert all(f.shape == (3, 64, 96) for f in frames)
    assert 0 < abs(frames[1] - frames[0]).mean() < 0.05
