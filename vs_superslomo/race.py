"""``vs-superslomo race``: the command line against ffmpeg minterpolate and mvtools FlowFPS, whole processes.

Each tool turns the same clip into ``factor`` times its frames with x264 at CRF 18 (audio copied where the tool
can), as a user would run it: ``vs-superslomo IN -o OUT`` with its defaults, ``ffmpeg -vf minterpolate`` with the
motion-compensated settings its users pick, and a FlowFPS script through ``vspipe | ffmpeg``. The tools take turns
(the order rotates each round), so a machine that slows down over the run slows them all alike; the table gives each
tool's median wall time and its ratio to this project's. With ``--startup`` each round also runs every tool on the
clip's first two frames: that time is the tool's start-up (imports, set-up, the encoder's start and flush), and the
rest of the whole run over the frames after them is its cost a frame once running.
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
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from .commandline import Parser, parse_size, run
from .errors import JobError
from .files import atomic_write

__all__ = ["MINTERPOLATE", "RaceResult", "main", "race"]

_PROG = "vs-superslomo race"
BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "bbb_640x360.mp4"
# The shortest clip every tool interpolates (one pair): its time is the tool's start-up.
STARTUP_FRAMES = 2
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
    input_frames: int
    startup_seconds: list[float] = field(default_factory=list)  # the first frames alone (``STARTUP_FRAMES``)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def startup(self) -> float | None:
        return statistics.median(self.startup_seconds) if self.startup_seconds else None

    @property
    def per_frame(self) -> float | None:
        """Seconds a frame in, beyond the start-up: (whole − start-up) over the frames after the first ones."""
        if self.startup is None or self.input_frames <= STARTUP_FRAMES:
            return None
        return (self.median - self.startup) / (self.input_frames - STARTUP_FRAMES)


def _probe(ffprobe: str, path: Path, field: str) -> str:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", f"stream={field}",
         "-of", "csv=p=0", f"file:{path}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().split(",")[0]


def _reencoded(ffmpeg: str, source: Path, target: Path, *options: str) -> Path:
    """``source`` through ffmpeg's ``options`` into ``target``: the video near-lossless x264, the audio copied."""
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", f"file:{source}", *options, "-c:v", "libx264", "-crf", "10", "-pix_fmt",
         "yuv420p", "-c:a", "copy", f"file:{target}"],
        check=True,
    )  # fmt: skip
    return target


def _scaled(ffmpeg: str, source: Path, size: tuple[int, int], folder: Path) -> Path:
    """``source`` at ``size``, the input every tool then reads."""
    return _reencoded(ffmpeg, source, folder / f"input_{size[0]}x{size[1]}.mp4", "-vf", f"scale={size[0]}:{size[1]}")


def _first_frames(ffmpeg: str, source: Path, fps: Fraction, folder: Path) -> Path:
    """The first ``STARTUP_FRAMES`` frames of ``source`` and its audio for as long, in Matroska (which holds x264
    beside any audio codec)."""
    seconds = f"{float(STARTUP_FRAMES / fps):.6f}"
    return _reencoded(ffmpeg, source, folder / "first_frames.mkv", "-frames:v", str(STARTUP_FRAMES), "-t", seconds)


def _timed(command: list[str], name: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise JobError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


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
    source: Path,
    factor: int,
    rounds: int,
    size: tuple[int, int] | None = None,
    also: Sequence[str] = (),
    startup: bool = False,
) -> list[RaceResult]:
    """Every tool on ``source`` (scaled to ``size`` first when given), ``rounds`` times each, in turns; ``also``:
    this project's command line again with each of these flag strings (e.g. ``"--scale 0.5"``); ``startup``: each
    round also runs every tool on the first ``STARTUP_FRAMES`` frames alone, right after its whole run."""
    ffmpeg = shutil.which("ffmpeg")
    ffprobe = shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise JobError("race needs ffmpeg and ffprobe on PATH (e.g. apt-get install ffmpeg)")
    source = source.resolve()  # vspipe runs the FlowFPS script from the script's folder
    with tempfile.TemporaryDirectory(prefix="vs-superslomo-race-") as tmp:
        folder = Path(tmp)
        if size is not None:
            source = _scaled(ffmpeg, source, size, folder)
        fps = Fraction(_probe(ffprobe, source, "r_frame_rate"))
        commands = _commands(source, factor, fps, folder, ffmpeg, also)
        short: dict[str, tuple[list[str], Path]] = {}
        if startup:
            (folder / "first").mkdir()
            first = _first_frames(ffmpeg, source, fps, folder / "first")
            short = _commands(first, factor, fps, folder / "first", ffmpeg, also)
        names = list(commands)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        startup_seconds: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                seconds[name].append(_timed(commands[name][0], name))
                if startup:
                    startup_seconds[name].append(_timed(short[name][0], f"{name} on the first frames"))
        frames_in = int(_probe(ffprobe, source, "nb_read_packets"))
        return [
            RaceResult(name, shlex.join(command), seconds[name], int(_probe(ffprobe, output, "nb_read_packets")),
                       frames_in, startup_seconds[name])
            for name, (command, output) in commands.items()
        ]  # fmt: skip


def table(results: Sequence[RaceResult], label: str) -> str:
    """A Markdown table: each tool's median seconds and its time over this project's; with start-up runs, also the
    start-up and the milliseconds a frame in after it."""
    ours = results[0].median
    split = results[0].startup is not None
    extra = " start-up s | ms a frame after it |" if split else ""
    rows = [f"| {label} | median s | runs (s) | × vs-superslomo's time | frames out |{extra}", "|---|---|---|---|---|"]
    if split:
        rows[1] += "---|---|"
    for r in results:
        runs = ", ".join(f"{s:.1f}" for s in r.seconds)
        row = f"| {r.tool} | {r.median:.1f} | {runs} | {r.median / ours:.2f} | {r.output_frames} |"
        if split:
            per_frame = "–" if r.per_frame is None else f"{1000 * r.per_frame:.1f}"
            row += f" {r.startup:.2f} | {per_frame} |"
        rows.append(row)
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
    p.add_argument(
        "--startup",
        action="store_true",
        help=f"also time each tool on the first {STARTUP_FRAMES} frames alone: its start-up, then its cost a frame",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    return run(_PROG, lambda: _run(args), also=(subprocess.CalledProcessError,))


def _run(args: argparse.Namespace) -> None:
    everything = {}
    for size in args.size:
        label = "input size" if size is None else f"{size[0]}×{size[1]}"
        results = race(args.input, args.factor, args.rounds, size, args.also, args.startup)
        print(table(results, label), flush=True)
        everything[label] = [
            asdict(r) | {"median": r.median, "startup": r.startup, "per_frame": r.per_frame} for r in results
        ]
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(everything, indent=2)))
