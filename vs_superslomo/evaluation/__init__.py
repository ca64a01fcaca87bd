"""Frame-drop evaluation against classical interpolators (``vs-superslomo eval``).

``protocol`` (windows, kept frames, scores, the held-frame protocols), ``methods`` (repeat, blend, FlowFPS,
minterpolate, models), ``report`` (tables, JSON, plots) and ``cli``. Nothing in the inference core imports
this package.
"""

__all__: list[str] = []
