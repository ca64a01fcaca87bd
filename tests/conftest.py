"""Fixtures shared by every test (helpers that are not fixtures live in helpers.py)."""

from __future__ import annotations

import pytest
from helpers import make_model
from hypothesis import settings

from vs_superslomo import SuperSloMo

# Deadlines measure the machine, not the code: a busy 2-core CI machine misses them at random.
settings.register_profile("project", deadline=None)
settings.load_profile("project")


@pytest.fixture(scope="session")
def tiny_model() -> SuperSloMo:
    return make_model()
