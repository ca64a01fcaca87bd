"""Compiled CPU loops: they compile where no cache folder can be written, too."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pytest

from vs_superslomo import kernels


def _double(out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        out[i] *= 2


def test_without_a_writable_cache_folder_kernels_compile_in_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    real = numba.njit
    asked: list[dict[str, Any]] = []

    def njit(*functions: Any, **options: Any) -> Any:
        if functions:  # numba's own modules decorating theirs
            return real(*functions, **options)
        asked.append(options)
        if options.get("cache"):  # what numba raises when neither its folder nor the user's cache can be written
            raise RuntimeError("cannot cache function '_double': no locator available for file 'kernels.py'")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)
    double = kernels._jit(_double)
    out = np.arange(4, dtype=np.float32)
    double(out)
    assert out.tolist() == [0, 2, 4, 6]
    assert [bool(options.get("cache")) for options in asked] == [True, False]
