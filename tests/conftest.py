"""Fixtures shared by every test (helpers that are not fixtures live in helpers.py)."""

from __future__ import annotations

import os

import pytest
from helpers import make_model
from hypothesis import settings

from vs_superslomo import SuperSloMo

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
