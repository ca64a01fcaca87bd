"""vs-superslomo: Super SloMo frame interpolation for VapourSynth.

Use ``superslomo(clip, ...)`` in a ``.vpy`` script; see its docstring for every parameter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import SuperSloMoError
    from .network import SuperSloMo
    from .plugin import superslomo
    from .weights import ModelInfo, WeightsError, convert, load_model, save_model

__all__ = [
    "ModelInfo",
    "SuperSloMo",
    "SuperSloMoError",
    "WeightsError",
    "convert",
    "load_model",
    "save_model",
    "superslomo",
]
__version__ = "0.1.0"

# Imported on first use (PEP 562): the command line starts without torch and VapourSynth, so a Ctrl-C
# while they load reaches its handler instead of printing a traceback.
_HOMES = {"SuperSloMo": ".network", "SuperSloMoError": ".errors", "superslomo": ".plugin"} | dict.fromkeys(
    ("ModelInfo", "WeightsError", "convert", "load_model", "save_model"), ".weights"
)


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
