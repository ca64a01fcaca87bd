"""The examples through vspipe, the command line entry points, and the interpreter finder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model

from vs_superslomo.cli import main
from vs_superslomo.weights import save_model

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def vspipe_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment where vspipe runs: `vapoursynth config` written to a private XDG_CONFIG_HOME."""
    if not (BIN / "vspipe").exists() or not hasattr(vs.core, "bs"):
        pytest.skip("vspipe or the bestsource plugin is not installed in this environment")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("xdg")))
    subprocess.run([BIN / "vapoursynth", "config"], env=env, check=True, capture_output=True)
    return env


@pytest.mark.parametrize(
    ("script", "rate", "frames"),
    [
        ("double_rate.vpy", "F50:1", 96),
        ("film_to_5994.vpy", "F60000:1001", 120),
        ("slowmo_8x.vpy", "F25:1", 384),
        ("anime_dedup.vpy", "F25:1", 48),
    ],
)
def test_examples_run_through_vspipe(
    vspipe_env: dict[str, str], tmp_path: Path, script: str, rate: str, frames: int
) -> None:
    weights = tmp_path / "tiny.safetensors"
    save_model(make_model(), weights)
    info = subprocess.run(
        [BIN / "vspipe", "--info", "-a", f"model={weights}", ROOT / "examples" / script],
        env=vspipe_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert info.returncode == 0, info.stderr
    assert f"Frames: {frames}" in info.stdout and "YUV420P8" in info.stdout
    run = subprocess.run(
        [BIN / "vspipe", "-c", "y4m", "-e", "2", "-a", f"model={weights}", ROOT / "examples" / script, "-"],
        env=vspipe_env,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    header = run.stdout.split(b"\n", 1)[0].decode().split()
    assert header[0] == "YUV4MPEG2" and {"C420", "W640", "H360", rate} <= set(header)
    assert run.stdout.count(b"FRAME") == 3


def test_info_without_default_weights_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("vs_superslomo.weights._weights_dirs", lambda: [tmp_path])
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vs-superslomo: error: no default weights")


def test_python_dash_m_shows_help() -> None:
    run = subprocess.run([sys.executable, "-m", "vs_superslomo", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "convert" in run.stdout and "info" in run.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_find_python_prints_a_python_of_at_least_3_12() -> None:
    found = subprocess.run([ROOT / ".ci" / "find-python"], capture_output=True, text=True, check=True).stdout.strip()
    version = subprocess.run([found, "-c", "import sys; print(sys.version_info >= (3, 12))"], capture_output=True)
    assert version.stdout.strip() == b"True"


def test_find_python_fails_clearly_without_one(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path)}
    run = subprocess.run(["/bin/bash", ROOT / ".ci" / "find-python"], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "no Python >= 3.12 found" in run.stderr
