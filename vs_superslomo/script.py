"""A VapourSynth script's output clip, evaluated as vspipe evaluates it: from the script's own folder, with
``-a NAME=VALUE`` arguments as global strings, output 0."""

from __future__ import annotations

import os
import runpy
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

from .colour import source_colour
from .errors import JobError
from .job import Prepared

__all__ = ["load_script", "prepare_script"]


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def load_script(path: Path, args: Mapping[str, str] | None = None) -> vs.VideoNode:
    """Run the script at ``path`` and return its output 0 (a video clip); JobError when it fails or has none."""
    if not path.is_file():
        raise JobError(f"script {path} does not exist or is not a file")
    vs.clear_outputs()
    folder, script = os.getcwd(), path.resolve()  # resolved before the chdir, which changes what "a/b.vpy" means
    os.chdir(script.parent)  # relative paths in a script are relative to it, as in vspipe
    try:
        runpy.run_path(str(script), init_globals=dict(args or {}), run_name="__vapoursynth__")
    except SystemExit as exc:  # sys.exit() ends the script, not this program: it made no output
        raise JobError(
            f"{path} stopped with sys.exit({exc.code!r}) before it could be rendered; a script ends with "
            "clip.set_output()"
        ) from None
    except Exception as exc:  # anything the script raises is the script's own error, in one line
        raise JobError(f"{path} failed: {_last_line(exc)}") from None
    finally:
        os.chdir(folder)
    outputs = vs.get_outputs()
    if 0 not in outputs:
        raise JobError(f"{path} sets no output: end it with clip.set_output()")
    output = outputs[0]
    clip = output.clip if isinstance(output, vs.VideoOutputTuple) else output
    if not isinstance(clip, vs.VideoNode):
        raise JobError(f"{path}'s output 0 is not video")
    return clip


def prepare_script(path: Path, args: Mapping[str, str] | None = None) -> Prepared:
    """The script's output as a job's graph: its own source, at factor 1 (its frames are the output's)."""
    clip = load_script(path, args)
    fmt = clip.format
    if fmt is None or fmt.id == vs.NONE or clip.width == 0 or clip.height == 0:
        raise JobError(f"{path}'s output has no constant format and size; fix them in the script")
    if fmt.color_family not in (vs.YUV, vs.GRAY):
        raise JobError(
            f"{path}'s output is {fmt.name}, but ffmpeg takes YUV or GRAY (y4m): convert it at the end of the "
            "script, e.g. with vs_superslomo.colour.from_rgb(rgb, like=src)"
        )
    if clip.fps_num <= 0 or clip.fps_den <= 0:
        raise JobError(f"{path}'s output has no constant frame rate: set one with std.AssumeFPS")
    fps = Fraction(clip.fps_num, clip.fps_den)
    return Prepared(clip, 0, fps, Fraction(1), None, source_colour(clip), clip)
