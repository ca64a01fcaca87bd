"""Start-up: what a short clip needs, and nothing more, is imported when a filter is made."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from vs_superslomo import backends

# A fresh interpreter: the test session has imported everything by now.
CHECK = textwrap.dedent(
    """
    import sys
    from vs_superslomo import backends
    from vs_superslomo.weights import load_model
    load_model()
    for backend in backends.available_backends():
        backends._import(backend)
    print(" ".join(m for m in ("torch._dynamo", "onnxscript") if m in sys.modules))
    """
)


def test_loading_weights_and_backends_imports_neither_compiler_nor_exporter() -> None:
    if "openvino" not in backends.available_backends() and "onnxruntime" not in backends.available_backends():
        pytest.skip("no ONNX backend installed")
    run = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # torch's compiler costs about a second of start-up, onnxscript half of one; neither is needed for a cached graph.
    assert run.stdout.strip() == "", f"imported at start-up: {run.stdout.strip()}"
