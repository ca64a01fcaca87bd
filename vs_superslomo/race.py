"""``vs-superslomo race``: the command line against ffmpeg minterpolate and mvtools FlowFPS, whole processes.

Each tool turns the same clip into ``factor`` times its frames with x264 at CRF 18 (audio copied where the tool
can), as a user would run it: ``vs-superslomo IN -o OUT`` with its defaults, ``ffmpeg -vf minterpolate`` with the
motion-compensated settings its users pick, and a FlowFPS script through ``vspipe | ffmpeg``. The tools take turns
(the order rotates each round), so a machine that slows down over the run slows them all alike; the table gives each
tool's median wall time and its ratio to this project's.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from .commandline import Parser, parse_size, run
from .errors import JobError
from .files import atomic_write

__all__ = ["MINTERPOLATE", "RaceResult", "main", "race"]

_PROG = "vs-superslomo race"
BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "bbb_640x360.mp4"
# ffmpeg's motion-compensated mode with overlapped blocks, bidirectional search and variable-size blocks.
MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"
_X264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p"]
# FlowFPS as its users write it: Super pel=2, both vector fields with overlap 4, then FlowFPS to the new rate.
_FLOWFPS_SCRIPT = """\
import vapoursynth as vs
core = vs.core
clip = core.bs.VideoSource({source!r}, cachemode=0, showprogress=0)
sup = core.mv.Super(clip, pel=2)
backward = core.mv.Analyse(sup, isb=True, overlap=4)
forward = core.mv.Analyse(sup, isb=False, overlap=4)
core.mv.FlowFPS(clip, sup, backward, forward, num=clip.fps_num * {factor}, den=clip.fps_den).set_output()
"""


@dataclass(frozen=True)
class RaceResult:
    """One tool's wall times (seconds, every round) and what it wrote."""

    tool: str
    command: str
    seconds: list[float]
    output_frames: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _probe(ffprobe: str, path: Path, field: str) -> str:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", f"stream={field}",
         "-of", "csv=p=0", f"file:{path}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().split(",")[0]


def _scaled(ffmpeg: str, source: Path, size: tuple[int, int], folder: Path) -> Path:
    """``source`` at ``size`` (near-lossless x264, audio copied), the input every tool then reads."""
    target = folder / f"input_{size[0]}x{size[1]}.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", f"file:{source}", "-vf", f"scale={size[0]}:{size[1]}", "-c:v", "libx264",
         "-crf", "10", "-pix_fmt", "yuv420p", "-c:a", "copy", f"file:{target}"],
        check=True,
    )  # fmt: skip
    return target


def _ours(source: Path, factor: int, output: Path, flags: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "vs_superslomo", str(source), "-o", str(output), "--factor", str(factor),
            "--overwrite", "--no-progress", *flags]  # fmt: skip


def _commands(
    source: Path, factor: int, fps: Fraction, folder: Path, ffmpeg: str, also: Sequence[str] = ()
) -> dict[str, tuple[list[str], Path]]:
    """Each tool's whole command (a shell line for the vspipe pipe) and the file it writes into ``folder``;
    ``also``: more runs of this project's command line, each with these flags added (one quoted string each)."""
    script = folder / "flowfps.vpy"
    script.write_text(_FLOWFPS_SCRIPT.format(source=str(source), factor=factor))
    vspipe = str(Path(sys.executable).with_name("vspipe"))
    target = fps * factor
    flowfps = (
        f"{shlex.quote(vspipe)} -c y4m {shlex.quote(str(script))} - | {shlex.quote(ffmpeg)} -v error -y -i - "
        f"{' '.join(_X264)} {shlex.quote('file:' + str(folder / 'flowfps.mp4'))}"
    )
    ours = [("", "vs-superslomo", []), *((str(i), f"vs-superslomo {f}", shlex.split(f)) for i, f in enumerate(also, 1))]
    commands = {name: (_ours(source, factor, folder / f"ours{n}.mp4", flags), folder / f"ours{n}.mp4")
                for n, name, flags in ours}  # fmt: skip
    commands["minterpolate"] = (
        [ffmpeg, "-v", "error", "-y", "-i", f"file:{source}", "-vf",
         f"minterpolate=fps={target.numerator}/{target.denominator}:{MINTERPOLATE}", *_X264,
         "-c:a", "copy", f"file:{folder / 'minterpolate.mp4'}"],
        folder / "minterpolate.mp4",
    )  # fmt: skip
    commands["FlowFPS"] = (["bash", "-o", "pipefail", "-c", flowfps], folder / "flowfps.mp4")
    return commands


def race(
    source: Path, factor: int, rounds: int, size: tuple[int, int] | None = None, also: Sequence[str] = ()
) -> list[RaceResult]:
    """Every tool on ``source`` (scaled to ``size`` first when given), ``rounds`` times each, in turns; ``also``:
    this project's command line again with each of these flag strings (e.g. ``"--scale 0.5"``)."""
    ffmpeg = shutil.which("ffmpeg")
    ffprobe = shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise JobError("race needs ffmpeg and ffprobe on PATH (e.g. apt-get install ffmpeg)")
    with tempfile.TemporaryDirectory(prefix="vs-superslomo-race-") as tmp:
        folder = Path(tmp)
        if size is not None:
            source = _scaled(ffmpeg, source, size, folder)
        fps = Fraction(_probe(ffprobe, source, "r_frame_rate"))
        commands = _commands(source, factor, fps, folder, ffmpeg, also)
        names = list(commands)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                done = subprocess.run(commands[name][0], capture_output=True, text=True)
                seconds[name].append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise JobError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        return [
            RaceResult(name, shlex.join(command), seconds[name], int(_probe(ffprobe, output, "nb_read_packets")))
            for name, (command, output) in commands.items()
        ]


def table(results: Sequence[RaceResult], label: str) -> str:
    """A Markdown table: each tool's median seconds and its time over this project's."""
    ours = results[0].median
    rows = [f"| {label} | median s | runs (s) | × vs-superslomo's time | frames out |", "|---|---|---|---|---|"]
    for r in results:
        runs = ", ".join(f"{s:.1f}" for s in r.seconds)
        rows.append(f"| {r.tool} | {r.median:.1f} | {runs} | {r.median / ours:.2f} | {r.output_frames} |")
    return "\n".join(rows)


def main(argv: Sequence[str]) -> int:
    p = Parser(prog=_PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path, nargs="?", default=BUNDLED, help="the clip (default: the bundled one)")
    p.add_argument("--size", type=parse_size, nargs="+", default=[None], help="scale to WxH first")
    p.add_argument("--factor", type=int, default=2, help="frames per input frame (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating (default 3)")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="FLAGS",
        help="also time vs-superslomo with these flags added (quoted; repeatable), e.g. --also '--scale 0.5'",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    return run(_PROG, lambda: _run(args), also=(subprocess.CalledProcessError,))


def _run(args: argparse.Namespace) -> None:
    everything = {}
    for size in args.size:
        label = "input size" if size is None else f"{size[0]}×{size[1]}"
        results = race(args.input, args.factor, args.rounds, size, args.also)
        print(table(results, label), flush=True)
        everything[label] = [asdict(r) | {"median": r.median} for r in results]
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(everything, indent=2)))
