"""vs-superslomo: Super SloMo frame interpolation for VapourSynth.

Use ``superslomo(clip, ...)`` in a ``.vpy`` script; see its docstring for every parameter.
"""

from __future__ import annotations

from .network import SuperSloMo
from .plugin import superslomo
from .weights import ModelInfo, WeightsError, convert, load_model, save_model

__all__ = ["ModelInfo", "SuperSloMo", "WeightsError", "convert", "load_model", "save_model", "superslomo"]
__version__ = "0.1.0"
