"""Fixtures shared by every test (helpers that are not fixtures live in helpers.py)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_model
from hypothesis import settings

from vs_superslomo import SuperSloMo
from vs_superslomo.weights import save_model

ROOT = Path(__file__).resolve().parent.parent

# Deadlines measure the machine, not the code: a busy 2-core CI machine misses them at random.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

# The suite runs on PyTorch eager unless told otherwise (VS_SUPERSLOMO_BACKEND=onnxruntime pytest runs it all
# through onnxruntime, slowly: an export per network and size); tests/test_backends.py covers every backend.
os.environ.setdefault("VS_SUPERSLOMO_BACKEND", "torch")


@pytest.fixture(autouse=True, scope="session")
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exported ONNX graphs (and any other cache) go to a folder of the test session, never ~/.cache."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))


@pytest.fixture(scope="session")
def tiny_model() -> SuperSloMo:
    return make_model()


@pytest.fixture(scope="session")
def vspipe_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
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


@pytest.fixture(scope="session")
def tiny_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(make_model(), path)
    return path


@pytest.fixture
def checkout(tmp_path: Path, vspipe_venv: Path) -> Path:
    """A folder laid out as the checkout after `make demo` (examples/, build/, .venv/ the set-up environment),
    for running the documented command lines as written."""
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "build").mkdir()
    (work / ".venv").symlink_to(vspipe_venv)
    return work
