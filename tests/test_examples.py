"""vspipe after set-up: the environment's vspipe runs the examples with nothing exported, and every command
line in the examples' headers runs as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model

from vs_superslomo.weights import save_model

ROOT = Path(__file__).resolve().parent.parent

needs_bestsource = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs the bestsource plugin")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment set up as `make` sets up .venv: its packages are this one's (a .pth file, instead
    of installing them again), then `.ci/venv-vspipe`."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True, capture_output=True)
    packages = subprocess.run(
        [folder / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(packages, "parent.pth").write_text("\n".join([str(ROOT), *site.getsitepackages()]) + "\n")
    subprocess.run([ROOT / ".ci" / "venv-vspipe", folder], check=True, capture_output=True)
    return folder


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """Nothing exported: no XDG_CONFIG_HOME, and an empty HOME that must stay empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_CONFIG")}
    env["HOME"] = str(tmp_path / "home")
    Path(env["HOME"]).mkdir()
    env["PYTHONPATH"] = str(ROOT)  # this checkout's package, whatever the environment has installed
    return env


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(make_model(), path)
    return path


def test_make_sets_up_vspipe_after_installing() -> None:
    # make -n prints the set-up recipe for a venv elsewhere without running it.
    run = subprocess.run(
        ["make", "-n", "-B", "VENV=/nonexistent/venv", "/nonexistent/venv/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "pip install" in line and "-e" in line)
    assert any(line.strip() == ".ci/venv-vspipe /nonexistent/venv" for line in lines[install + 1 :])
    assert "XDG_CONFIG_HOME" not in Path(ROOT / "Makefile").read_text()  # nothing left to export


@needs_bestsource
def test_vspipe_runs_an_example_with_nothing_exported(venv: Path, bare_env: dict[str, str]) -> None:
    info = subprocess.run(
        [venv / "bin" / "vspipe", "--info", "examples/double_rate.vpy"],
        cwd=ROOT,
        env=bare_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert info.returncode == 0, info.stderr
    assert "Frames: 96" in info.stdout and "FPS: 50/1" in info.stdout
    assert not any(Path(bare_env["HOME"]).iterdir())  # no ~/.config/vapoursynth written on the way


def example_commands() -> list[tuple[str, str]]:
    """(script, command) for every command line in the examples' header comments."""
    found = []
    for script in sorted((ROOT / "examples").glob("*.vpy")):
        for line in script.read_text().splitlines():
            command = re.match(r"#\s+(\.venv/bin/vspipe .*)$", line)
            if command:
                found.append((script.name, command.group(1)))
    return found


def test_every_example_has_a_command_line() -> None:
    scripts = {path.name for path in (ROOT / "examples").glob("*.vpy")}
    assert scripts and {script for script, _ in example_commands()} == scripts


@pytest.mark.slow
@needs_bestsource
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize(("script", "command"), example_commands())
def test_example_commands_run_as_written(
    venv: Path, bare_env: dict[str, str], tiny_weights: Path, tmp_path: Path, script: str, command: str
) -> None:
    """Run from a folder laid out as the checkout (examples/, build/), with .venv/bin/ being the set-up
    environment; only fewer frames (-e 2) and tiny weights are added, for speed."""
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "build").mkdir()
    (work / ".venv").symlink_to(venv)
    fast = command.replace(".venv/bin/vspipe ", f".venv/bin/vspipe -e 2 -a model={shlex.quote(str(tiny_weights))} ", 1)
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", fast], cwd=work, env=bare_env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    outputs = [work / word for word in shlex.split(command) if word.startswith("build/")]
    assert outputs and all(path.stat().st_size > 0 for path in outputs)
