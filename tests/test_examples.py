"""vspipe after set-up: the environment's vspipe runs the examples with nothing exported, and every command
line in the examples' headers runs as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import vapoursynth as vs

from vs_superslomo.script import load_script

ROOT = Path(__file__).resolve().parent.parent

needs_bestsource = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs the bestsource plugin")


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
def test_vspipe_runs_an_example_with_nothing_exported(vspipe_venv: Path, bare_env: dict[str, str]) -> None:
    info = subprocess.run(
        [vspipe_venv / "bin" / "vspipe", "--info", "examples/double_rate.vpy"],
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
    checkout: Path, bare_env: dict[str, str], tiny_weights_file: Path, script: str, command: str
) -> None:
    """Run from the checkout's root after set-up; only fewer frames (-e 2) and tiny weights are added."""
    run_vspipe_line(command, checkout, bare_env, tiny_weights_file)


def run_vspipe_line(command: str, checkout: Path, env: dict[str, str], weights: Path) -> None:
    """Run a documented `.venv/bin/vspipe ...` line (a pipe into ffmpeg too) in ``checkout``, with 3 frames and
    ``weights``; it must succeed and write the files it names under build/."""
    fast = command.replace(".venv/bin/vspipe ", f".venv/bin/vspipe -e 2 -a model={shlex.quote(str(weights))} ", 1)
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", fast], cwd=checkout, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    outputs = [checkout / word for word in shlex.split(command) if word.startswith("build/")]
    assert all(path.stat().st_size > 0 for path in outputs)
    if " -c y4m " in command:
        assert outputs, "a rendering command names its output"


@needs_bestsource
def test_a_script_named_by_a_relative_path_loads(monkeypatch: pytest.MonkeyPatch, tiny_weights_file: Path) -> None:
    # `vs-superslomo render examples/double_rate.vpy` from the checkout's root, as the README writes it.
    monkeypatch.chdir(ROOT)
    clip = load_script(Path("examples/double_rate.vpy"), {"model": str(tiny_weights_file)})
    assert clip.num_frames == 96 and Path.cwd() == ROOT
