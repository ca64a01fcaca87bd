"""Opening a video file with bestsource: one way, with one message when the plugin is missing, for the
command line, training and evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import vapoursynth as vs

from .errors import JobError

__all__ = ["open_video"]


def open_video(path: str | os.PathLike[str], *, index_dir: Path | None = None, **options: object) -> vs.VideoNode:
    """``path``'s video (bestsource's ``VideoSource``), its index kept in ``index_dir`` or, when None, nowhere.

    ``options`` go to ``VideoSource`` as they are (e.g. ``timecodes``). Raises :class:`JobError` naming the fix
    when the plugin is missing, the file is not there or it does not decode.
    """
    if not hasattr(vs.core, "bs"):
        raise JobError("the bestsource plugin is missing: pip install vapoursynth-bestsource")
    file = Path(path)
    if not file.is_file():
        raise JobError(f"input {file} does not exist or is not a file")
    index = {"cachemode": 0} if index_dir is None else {"cachemode": 1, "cachepath": str(index_dir)}
    try:
        return vs.core.bs.VideoSource(str(file), showprogress=0, **index, **options)
    except vs.Error as exc:
        raise JobError(f"cannot read {file} as video: {exc}") from None
