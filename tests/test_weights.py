"""Weights I/O: both formats, the converter, and every way a file can be wrong."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import vapoursynth as vs
from helpers import TINY_WIDTH, make_model, random_frames, write_original_ckpt
from safetensors.torch import load_file, save_file

from vs_superslomo import SuperSloMo, superslomo, weights
from vs_superslomo.cli import main
from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.weights import DEFAULT_WEIGHTS_NAME, WeightsError, default_weights_path, load_model, save_model


def same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float = 0.0) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=atol, rtol=0) for k in sa)


def test_safetensors_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    model = make_model(warp="exact")
    save_model(model, tmp_path / "m.safetensors", provenance="unit test")
    loaded, info = load_model(tmp_path / "m.safetensors")
    assert same_weights(model, loaded)
    assert (info.width, info.warp, info.provenance) == (TINY_WIDTH, "exact", "unit test")
    assert info.mean == pytest.approx((0.429, 0.431, 0.397))
    save_model(model, tmp_path / "h.safetensors", half=True)
    half, _ = load_model(tmp_path / "h.safetensors")
    assert same_weights(model, half, atol=1e-3) and next(half.parameters()).dtype == torch.float32
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * (tmp_path / "m.safetensors").stat().st_size
    assert not list(tmp_path.glob("*.part"))


def test_original_checkpoint_loads_with_legacy_warp(tmp_path: Path) -> None:
    model = make_model(width=0.125, warp="legacy")
    write_original_ckpt(model, tmp_path / "SuperSloMo.ckpt")
    loaded, info = load_model(tmp_path / "SuperSloMo.ckpt")
    assert same_weights(model, loaded)
    assert (info.width, info.warp, loaded.warp) == (0.125, "legacy", "legacy")


def test_converter_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model(warp="legacy")
    write_original_ckpt(model, tmp_path / "in.ckpt")
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(tmp_path / "in.ckpt"), str(out)]) == 0
    loaded, info = load_model(out)
    assert same_weights(model, loaded) and info.warp == "legacy"
    assert main(["convert", str(tmp_path / "in.ckpt"), str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "in.ckpt"), str(out), "--overwrite", "--half"]) == 0
    assert main(["info", str(out)]) == 0
    assert "warp legacy" in capsys.readouterr().out


def test_convert_carries_another_files_flow_net_of_another_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thin, donor = make_model(width=TINY_WIDTH, seed=1), make_model(width=2 * TINY_WIDTH, seed=2)
    save_model(thin, tmp_path / "thin.safetensors", provenance="thin run")
    save_model(donor, tmp_path / "donor.safetensors", provenance="donor run")
    out = tmp_path / "out.safetensors"
    argv = ["convert", str(tmp_path / "thin.safetensors"), str(out), "--flow-net", str(tmp_path / "donor.safetensors")]
    assert main(argv) == 0
    assert f"width {TINY_WIDTH:g} (flow net {2 * TINY_WIDTH:g})" in capsys.readouterr().out
    loaded, info = load_model(out)
    assert (info.width, info.flow_width, loaded.flow_width) == (TINY_WIDTH, 2 * TINY_WIDTH, 2 * TINY_WIDTH)
    assert same_weights(loaded.interp, thin.interp) and same_weights(loaded.flow, donor.flow)
    assert info.provenance.startswith("thin run; flow network") and "[donor run]" in info.provenance
    # Both networks run: the flow net's flows feed the thinner interpolation net.
    frames = superslomo(clip_from_arrays(random_frames(2, 32, 48)), 2, model=loaded, flow="net", backend="torch")
    assert frames.get_frame(1).props["SuperSloMoT"] == 0.5
    # Re-saving keeps both widths; a file of one width writes no flow_width.
    save_model(loaded, tmp_path / "again.safetensors")
    assert load_model(tmp_path / "again.safetensors")[1].flow_width == 2 * TINY_WIDTH
    assert load_model(tmp_path / "thin.safetensors")[1].flow_width is None
    save_model(make_model(warp="legacy"), tmp_path / "legacy.safetensors")
    with pytest.raises(WeightsError, match=r"legacy\.safetensors: its flow network uses the legacy warp"):
        weights.convert(tmp_path / "thin.safetensors", tmp_path / "x.sft", flow_net=tmp_path / "legacy.safetensors")


class _Payload:
    """Pickles to a call of os.system: what a crafted checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_carrying_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dictFC": _Payload(marker), "state_dictAT": {}}, bad)
    # A bare pickle (the pre-zip torch format) carrying code is refused too.
    raw = tmp_path / "evil_raw.ckpt"
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    for path in (bad, raw):
        with pytest.raises(WeightsError) as refused:
            load_model(path)
        message = str(refused.value)
        assert message.startswith(f"{path}: refused as unsafe: ") and "system" in message, message
        # torch's hint would have the user run the file's code: it must never be passed on.
        assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()


_LOAD_UNDER_LIMIT = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # a network of hundreds of GB fails loudly, not slowly
from vs_superslomo.weights import WeightsError, load_model

def peak_kib():
    # This process's own peak (VmHWM): Linux carries ru_maxrss over exec, so it would report the peak of
    # the test process that started this one.
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

start = time.perf_counter()
try:
    load_model(sys.argv[1])
except WeightsError as exc:
    print(f"{time.perf_counter() - start:.3f} {peak_kib()} {exc}")
"""


@pytest.mark.parametrize("kind", ["ckpt", "safetensors"])
def test_oversized_networks_are_refused_before_anything_is_built(tmp_path: Path, kind: str) -> None:
    model = make_model()
    if kind == "ckpt":
        path = tmp_path / "wide.ckpt"
        flow = dict(model.flow.state_dict(), **{"conv1.weight": torch.zeros(32000, 6, 1, 1)})
        torch.save({"state_dictFC": flow, "state_dictAT": model.interp.state_dict()}, path)
        width = "1000"
    else:
        path = tmp_path / "wide.safetensors"
        save_model(model, path)
        tensors = load_file(str(path))
        save_file(tensors, str(path), metadata={"width": "64", "warp": "exact", "mean": "0.4,0.4,0.4"})
        width = "64"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # this checkout's package
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_UNDER_LIMIT, str(path)], capture_output=True, text=True, env=env
    )
    assert child.returncode == 0 and child.stdout, child.stderr[-2000:]
    seconds, peak_kib, message = child.stdout.strip().split(" ", 2)
    assert float(seconds) < 0.5 and int(peak_kib) < 2 << 20  # no network was allocated (peak RSS < 2 GiB)
    assert message.startswith(f"{path}: width {width} is not a Super SloMo network's (0 < width <= 4")


def test_shapes_are_checked_against_the_width_before_the_network_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tensors = {
        f"{p}.{k}": v
        for p, net in (("flow", make_model().flow), ("interp", make_model().interp))
        for k, v in net.state_dict().items()
    }
    # A file that says width 4 but holds a tiny network: building width 4 first would cost hundreds of MB.
    save_file(tensors, str(tmp_path / "w4.safetensors"), metadata={"width": "4", "warp": "exact", "mean": "0,0,0"})
    built: list[float] = []

    def counting(*args: Any, **kwargs: Any) -> SuperSloMo:
        if torch.get_default_device().type != "meta":
            built.append(float(kwargs.get("width", 1.0)))
        return SuperSloMo(*args, **kwargs)

    monkeypatch.setattr(weights, "SuperSloMo", counting)
    with pytest.raises(
        WeightsError, match=r"flow network key 'conv1\.weight' has shape \(2, 6, 7, 7\), expected \(128, 6"
    ):
        load_model(tmp_path / "w4.safetensors")
    assert built == []


@pytest.mark.parametrize("kind", ["ckpt", "safetensors"])
def test_truncated_files_name_the_file(tmp_path: Path, kind: str) -> None:
    model = make_model()
    good = tmp_path / f"good.{kind}"
    if kind == "ckpt":
        write_original_ckpt(model, good)
    else:
        save_model(model, good)
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match=rf"cut\.{kind}: .*(damaged|cannot be read)"):
        load_model(cut)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nope\.ckpt: no such weights file"):
        load_model(tmp_path / "nope.ckpt")


def test_mismatched_shapes_name_the_first_bad_key(tmp_path: Path) -> None:
    model = make_model()
    flow = dict(model.flow.state_dict())
    flow["down2.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save({"state_dictFC": flow, "state_dictAT": model.interp.state_dict()}, tmp_path / "bad.ckpt")
    with pytest.raises(
        WeightsError,
        match=r"bad\.ckpt: flow network key 'down2.conv1.weight' has shape \(3, 3, 3, 3\), expected \(8, 4, 3, 3\)",
    ):
        load_model(tmp_path / "bad.ckpt")
    del flow["down2.conv1.weight"]
    torch.save({"state_dictFC": flow, "state_dictAT": model.interp.state_dict()}, tmp_path / "missing.ckpt")
    with pytest.raises(WeightsError, match=r"lacks key 'down2\.conv1\.weight'"):
        load_model(tmp_path / "missing.ckpt")
    interp = dict(model.interp.state_dict(), extra=torch.zeros(1))
    torch.save({"state_dictFC": model.flow.state_dict(), "state_dictAT": interp}, tmp_path / "extra.ckpt")
    with pytest.raises(WeightsError, match="interp network has unexpected key 'extra'"):
        load_model(tmp_path / "extra.ckpt")
    torch.save({"weights": 1}, tmp_path / "other.ckpt")
    with pytest.raises(WeightsError, match="not an original Super SloMo checkpoint"):
        load_model(tmp_path / "other.ckpt")


def test_bad_safetensors_metadata_and_keys(tmp_path: Path) -> None:
    tensors = {f"flow.{k}": v for k, v in make_model().flow.state_dict().items()}
    save_file(tensors, str(tmp_path / "nometa.safetensors"))
    with pytest.raises(WeightsError, match="metadata needs width, warp and mean"):
        load_model(tmp_path / "nometa.safetensors")
    save_file(
        tensors, str(tmp_path / "warp.safetensors"), metadata={"width": "0.0625", "warp": "bogus", "mean": "0,0,0"}
    )
    with pytest.raises(WeightsError, match="warp must be one of"):
        load_model(tmp_path / "warp.safetensors")
    whole = {f"{p}.{k}": v for p in ("flow", "interp") for k, v in getattr(make_model(), p).state_dict().items()}
    for flow_width, message in (("thin", "flow_width must be a number, got 'thin'"), ("1e9", "width 1e[+]09 is not")):
        meta = {"width": "0.0625", "warp": "exact", "mean": "0,0,0", "flow_width": flow_width}
        save_file(whole, str(tmp_path / "fw.safetensors"), metadata=meta)
        with pytest.raises(WeightsError, match=message):
            load_model(tmp_path / "fw.safetensors")
    save_file({"other.x": torch.zeros(1)}, str(tmp_path / "keys.safetensors"), metadata={"width": "1", "warp": "exact"})
    with pytest.raises(WeightsError, match=r"unexpected key 'other\.x'"):
        load_model(tmp_path / "keys.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(WeightsError, match=r"text\.safetensors: .*damaged"):
        load_model(tmp_path / "text.safetensors")
    (tmp_path / "header.safetensors").write_bytes((40).to_bytes(8, "little") + b"{not json")
    with pytest.raises(WeightsError, match=r"header\.safetensors: damaged or not a safetensors file"):
        load_model(tmp_path / "header.safetensors")


def test_default_weights_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vs_superslomo.weights._weights_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsError, match="no default weights"):
        default_weights_path()
    with pytest.raises(vs.Error, match=r"superslomo: no default weights .* --model on the command line"):
        superslomo(clip_from_arrays(random_frames(2, 8, 8)))
    save_model(make_model(), tmp_path / DEFAULT_WEIGHTS_NAME)
    assert default_weights_path() == tmp_path / DEFAULT_WEIGHTS_NAME
    assert superslomo(clip_from_arrays(random_frames(2, 8, 8))).num_frames == 4


def test_default_weights_dirs_cover_checkout_and_installed_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    from vs_superslomo import weights

    dirs = weights._weights_dirs()
    assert Path(weights.__file__).resolve().parent.parent / "weights" in dirs
    assert any(str(d).endswith(os.path.join("share", "vs_superslomo", "weights")) for d in dirs)
    monkeypatch.setenv("VS_SUPERSLOMO_WEIGHTS_DIR", "/somewhere")
    assert weights._weights_dirs()[0] == Path("/somewhere")


def test_the_shipped_default_weights_load_and_run() -> None:
    from vs_superslomo import weights

    path = Path(weights.__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS_NAME
    if not path.is_file():
        pytest.skip("not a source checkout with weights/")
    model, info = load_model(None)
    assert model.width == info.width
    assert info.warp == "exact" and "held out" in info.provenance
    out = superslomo(clip_from_arrays(random_frames(2, 24, 40)))
    assert out.get_frame(1).props["SuperSloMoT"] == 0.5


def nan_model() -> SuperSloMo:
    model = make_model()
    with torch.no_grad():
        model.interp.conv3.weight[0, 0, 0, 0] = float("nan")
    return model


def test_non_finite_weights_and_metadata_are_refused_when_loaded(tmp_path: Path) -> None:
    save_model(nan_model(), tmp_path / "nan.safetensors")
    with pytest.raises(WeightsError, match=r"nan\.safetensors: interp network key 'conv3\.weight' holds NaN"):
        load_model(tmp_path / "nan.safetensors")
    write_original_ckpt(nan_model(), tmp_path / "nan.ckpt")
    with pytest.raises(WeightsError, match=r"nan\.ckpt: interp network key 'conv3\.weight' holds NaN"):
        load_model(tmp_path / "nan.ckpt")
    tensors = {
        f"{prefix}.{k}": v
        for prefix in ("flow", "interp")
        for k, v in getattr(make_model(), prefix).state_dict().items()
    }
    meta = {"width": str(TINY_WIDTH), "warp": "exact", "mean": "nan,nan,nan"}
    save_file(tensors, str(tmp_path / "mean.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match=r"metadata mean must be 3 finite numbers, got 'nan,nan,nan'"):
        load_model(tmp_path / "mean.safetensors")


def test_a_network_that_outputs_nan_is_an_error_naming_weights_and_backend() -> None:
    clip = superslomo(clip_from_arrays(random_frames(2, 32, 32)), 2, model=nan_model(), backend="torch")
    clip.get_frame(0)  # a source frame
    with pytest.raises(vs.Error, match=r"NaN or infinite values on backend='torch': the weights are damaged"):
        clip.get_frame(1)
