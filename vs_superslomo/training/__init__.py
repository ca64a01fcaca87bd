"""Training Super SloMo networks in plain PyTorch (``vs-superslomo train``).

``samples`` (a training triple and its augmentation), ``windows`` (real video), ``synthetic`` (layered
scenes of photos with exact flow), ``stream`` (the mixed training stream and the validation set),
``config``, ``losses``, ``state`` (what a checkpoint holds), ``loop`` and ``cli``. Nothing in the inference
core imports this package.
"""

__all__: list[str] = []
