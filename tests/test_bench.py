"""The benchmark command on a tiny size: every method runs, the numbers are consistent, JSON is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vs_superslomo import bench


def test_run_bench_times_all_three_methods() -> None:
    result = bench.run_bench((64, 32), 4, width=0.0625, pairs=2, reps=2)
    assert result.output_frames == 12 and result.precision == "fp32" and result.device == "cpu"
    assert set(result.seconds) == set(bench.METHODS) and all(s > 0 for s in result.seconds.values())
    for method, seconds in result.seconds.items():
        assert result.fps[method] == pytest.approx(12 / seconds)
    assert result.e2e_vs_network == pytest.approx(result.seconds["network"] / result.seconds["e2e"])
    assert all(peak > 0 for peak in result.peak_host_mib.values())
    row = bench.table([result]).splitlines()[-1]
    assert row.startswith("| 64×32 | 4× | 0.0625 | net | cpu | fp32 |")


def test_main_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    argv = ["--size", "32x32", "--factor", "2", "--width", "0.0625", "--pairs", "1", "--reps", "1", "--json", str(out)]
    assert bench.main([*argv, "--flow", "net", "dis"]) == 0
    assert "e2e / network" in capsys.readouterr().out
    entries = json.loads(out.read_text())
    assert [e["flow"] for e in entries] == ["net", "dis"]
    assert all(e["output_frames"] == 4 and e["factor"] == 2 and "e2e_vs_reference" in e for e in entries)
    with pytest.raises(SystemExit):
        bench.main(["--size", "big"])


def test_moving_texture_moves_without_looking_like_a_cut() -> None:
    frames = bench.moving_texture(3, 64, 96)
    assert all(f.shape == (3, 64, 96) for f in frames)
    assert 0 < abs(frames[1] - frames[0]).mean() < 0.05
