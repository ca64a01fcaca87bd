"""The errors a user can fix: one base class and a kind per layer, each message naming what is wrong and the fix.

The command line prints any of them as one line and exits 1; the filter raises them as
``vs.Error("superslomo: ...")`` (:class:`vs_superslomo.plugin.FilterError`). Plain Python, no imports: the
pure-arithmetic modules raise these too.
"""

from __future__ import annotations

__all__ = ["BackendError", "EngineError", "JobError", "SuperSloMoError", "TimingError", "WeightsError"]


class SuperSloMoError(Exception):
    """A problem the user can fix (an argument, a file, the device, a setting); the message says how."""


class TimingError(SuperSloMoError, ValueError):
    """A rate, factor or timestamps that give no valid timing."""


class WeightsError(SuperSloMoError, ValueError):
    """A weights file that is missing, unreadable, unsafe or does not fit the network."""


class EngineError(SuperSloMoError, ValueError):
    """A device, precision, batch or tile request that cannot be served."""


class BackendError(EngineError):
    """A backend whose package is missing, that does not run on the device, or whose ONNX export failed."""


class JobError(SuperSloMoError):
    """A job of the command line (a transcode, a training or evaluation run) that cannot be done as asked: its
    input, output, tools or settings."""
