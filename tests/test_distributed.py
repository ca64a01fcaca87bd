"""Chunked runs on Ray workers (one local Ray session for the module, two CPUs, no GPU): the same file as a
single run, a killed worker's chunk retried, --resume after Ctrl-C, and the one-line errors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from helpers import make_model

from vs_superslomo import distributed
from vs_superslomo.cli import main
from vs_superslomo.commandline import WorkerSettings
from vs_superslomo.distributed import Recipe, work_folder
from vs_superslomo.job import Job
from vs_superslomo.options import FilterOptions
from vs_superslomo.weights import save_model
from vs_superslomo.workfolder import MARKER, WorkFolder

ray = pytest.importorskip("ray")
FFMPEG = shutil.which("ffmpeg") or ""  # "": not installed
pytestmark = pytest.mark.skipif(
    not FFMPEG or shutil.which("ffprobe") is None or not Path("/proc/locks").exists(),
    reason="needs ffmpeg and ffprobe (and Linux's /proc/locks to find a worker to kill)",
)
ROOT = Path(__file__).resolve().parent.parent
# The job every test runs: 3x with held frames (--dedup) and a scene cut between source frames 11 and 12.
# Chunks of 0.5 s (5 source frames) start at source frames 5 (a held frame), 12 (the cut) and 17.
JOB = ["--factor", "3", "--dedup", "--codec", "ffv1"]
CHUNKED = ["--workers", "2", "--threads-per-worker", "1", "--chunk-seconds", "0.5"]


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray for the module; its workers keep bestsource's index out of the home folder."""
    cache = tmp_path_factory.mktemp("cache")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"env_vars": {"XDG_CACHE_HOME": str(cache)}},
    )
    yield cache
    ray.shutdown()


@pytest.fixture(autouse=True)
def private_cache(ray_session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(ray_session))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clip on twos (each picture held for two frames) with a hard cut in the middle, and audio; weights."""
    folder = tmp_path_factory.mktemp("src")
    clip = folder / "src.mp4"
    video = (
        "testsrc2=size=96x64:rate=5:duration=1.2,fps=10[a];"
        "mandelbrot=size=96x64:rate=10,trim=duration=1.2[b];[a][b]concat=n=2:v=1:a=0,format=yuv420p"
    )
    cmd = [FFMPEG, "-v", "error", "-y", "-filter_complex", video, "-f", "lavfi", "-i", "sine=duration=2.4"]
    subprocess.run([*cmd, "-c:v", "libx264", "-c:a", "aac", "-shortest", str(clip)], check=True)
    weights = folder / "tiny.safetensors"
    save_model(make_model(), weights)
    return clip, str(weights)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fingerprint(path: Path, audio: bool = True) -> dict[str, str]:
    """Decoded video frames, audio packets, and every packet's timestamps, each as one hash."""

    def run(*args: str) -> str:
        out = subprocess.run([FFMPEG, "-v", "error", *args], capture_output=True, text=True, check=True).stdout
        return hashlib.sha256("\n".join(x for x in out.splitlines() if not x.startswith("#")).encode()).hexdigest()

    probe = [shutil.which("ffprobe") or "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts,duration"]
    packets = subprocess.run([*probe, "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return {
        "video": run("-i", str(path), "-map", "0:v", "-f", "framemd5", "-"),
        "audio": run("-i", str(path), "-map", "0:a", "-c", "copy", "-f", "framemd5", "-") if audio else "",
        "timestamps": hashlib.sha256(packets.stdout.encode()).hexdigest(),
        "frames": str(packets.stdout.count("\n0,") + packets.stdout.startswith("0,")),
    }


SINGLE_SUMMARY: list[str] = []  # the single run's summary line


def counts(line: str) -> list[str]:
    """A summary line's parts that say where the networks ran, held frames replaced and cuts kept."""
    return [part for part in line.split("; ") if part.startswith("networks:") or part.endswith(("replaced", "kept"))]


@pytest.fixture(scope="module")
def single(source: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The single run's file, with one torch thread as each worker has."""
    clip, weights = source
    out = tmp_path_factory.mktemp("single") / "single.mkv"
    printed = io.StringIO()
    with torch_threads(1), contextlib.redirect_stdout(printed):
        assert main([str(clip), "-o", str(out), "--model", weights, *JOB]) == 0
    SINGLE_SUMMARY.append(printed.getvalue().strip())
    return fingerprint(out)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def summary_count(line: str, what: str) -> int:
    match = re.search(rf"(\d+) {what}", line)
    return int(match.group(1)) if match else 0


def test_workers_give_the_single_runs_file(
    source: tuple[Path, str], single: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "chunked.mkv"
    args = [str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED, "--progress"]
    status, stdout, err = run_cli(args, capsys)
    assert status == 0, err
    assert fingerprint(out) == single
    assert int(single["frames"]) == 72
    assert "72/72" in err  # one bar for the whole job
    assert summary_count(stdout, "chunks on") >= 4 and "on 2 workers" in stdout and "speed-up" in stdout
    # The chunks' own counts add up to the single run's: where the networks ran, held frames replaced, the one cut.
    assert len(counts(stdout)) == 3 and counts(stdout) == counts(SINGLE_SUMMARY[-1]), (stdout, SINGLE_SUMMARY)
    assert not work_folder(out).exists() and os.listdir(tmp_path) == ["chunked.mkv"]


def test_chunks_split_at_the_cuts_the_jobs_threshold_finds(source: tuple[Path, str], tmp_path: Path) -> None:
    clip, weights = source

    def starts(threshold: float) -> list[int]:
        recipe = Recipe(
            Job(clip, tmp_path / "out.mkv", Fraction(3), options=FilterOptions(model=weights, sc_threshold=threshold))
        )
        chunks = distributed._plan(recipe, recipe.build(lambda _: None), WorkerSettings(chunk_seconds=0.5), 2)
        return [chunk.start // 3 for chunk in chunks]  # in source frames (3x)

    assert starts(0.15) == [0, 5, 12, 17]  # every 5 frames, starting again at the cut (after source frame 11)
    assert starts(1.0) == [0, 5, 10, 15, 20]  # no pair differs that much: no cut


def kill_a_worker_mid_chunk(work: Path, stop: threading.Event, killed: list[Path]) -> None:
    """Kill (SIGKILL) the first worker found writing a segment: the process holding a .part file's lock
    (/proc/locks), frozen first so that it is still writing when it dies; ``killed`` gets that file."""
    while not stop.is_set() and not killed:
        for part in work.glob(".chunk-*.part.*") if work.is_dir() else []:
            with contextlib.suppress(OSError):
                inode = part.stat().st_ino
                for line in Path("/proc/locks").read_text().splitlines():
                    fields = line.split()
                    if "FLOCK" in fields and fields[-3].endswith(f":{inode}") and int(fields[4]) != os.getpid():
                        pid = int(fields[4])
                        os.kill(pid, signal.SIGSTOP)
                        if part.exists():  # still inside its atomic write: the chunk is unfinished
                            os.kill(pid, signal.SIGKILL)
                            killed.append(part)
                            return
                        os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)


@contextlib.contextmanager
def killing_a_worker(out: Path) -> Iterator[list[Path]]:
    """While the block runs, kill the first worker caught writing a segment of ``out``; yields the .part files
    the killed workers left."""
    killed: list[Path] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_worker_mid_chunk, args=(work_folder(out), stop, killed))
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join()


def test_a_killed_workers_chunk_is_retried(
    source: tuple[Path, str], single: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "chunked.mkv"
    with killing_a_worker(out) as killed:
        status, stdout, err = run_cli([str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED], capsys)
    assert killed, "no worker was caught writing a segment"
    assert status == 0, err
    assert summary_count(stdout, "retried") == 1
    assert fingerprint(out) == single


def test_a_chunk_whose_worker_always_dies_fails_in_one_line(
    source: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "chunked.mkv"
    with killing_a_worker(out) as killed:
        args = [str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED, "--retries", "0"]
        status, stdout, err = run_cli(args, capsys)
    assert killed and status == 1
    # stdout holds nothing (Ray's own notices of the dead worker go to stderr), and this program says one line
    assert stdout == ""
    ours = [line for line in err.strip().splitlines() if "(raylet)" not in line]
    assert len(ours) == 1, err
    assert re.search(r"chunk \d+ \(output frames \d+-\d+\) failed: its worker died each time it ran, once", ours[0])
    assert "--resume" in ours[0]
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [work_folder(out).name]
    # The session outlives the job: a chunk still running was stopped (its temporary file gone) before the
    # command returned; only the killed worker's is left.
    assert [p for p in work_folder(out).iterdir() if ".part" in p.name] == killed


def test_resume_after_ctrl_c_redoes_only_the_missing_chunks(
    source: tuple[Path, str], single: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "chunked.mkv"
    work = work_folder(out)
    # Ctrl-C as a terminal sends it: to the whole process group of a command run on its own local Ray (whose
    # processes get it too), once a segment is finished. A process of its own: whatever Ray does to it on
    # the way out is this test's failure, not the end of the test run.
    command = [sys.executable, "-m", "vs_superslomo", str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not any(work.glob("chunk-*.nut")) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the job ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "--resume" in err and err.rstrip().endswith("(the partial file was removed)"), err
    assert not out.exists() and not list(tmp_path.glob(".chunked.mkv.*.part*"))
    kept = {p.name: p.stat().st_mtime_ns for p in work.glob("chunk-*.nut")}
    assert kept
    assert len(kept) < len(json.loads((work / "plan.json").read_text())["chunks"]), "interrupted too late"

    # A run without --resume would start afresh; with it, the finished segments stay as they are.
    seen: dict[str, int] = {}

    def watch_kept(stop: threading.Event) -> None:
        while not stop.is_set():
            for name in kept:
                with contextlib.suppress(OSError):
                    seen[name] = (work / name).stat().st_mtime_ns
            time.sleep(0.005)

    stop = threading.Event()
    watcher = threading.Thread(target=watch_kept, args=(stop,))
    watcher.start()
    try:
        status, stdout, err = run_cli(
            [str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED, "--resume"], capsys
        )
    finally:
        stop.set()
        watcher.join()
    assert status == 0, err
    assert summary_count(stdout, "reused") == len(kept)
    assert seen == kept  # never rewritten
    assert fingerprint(out) == single
    assert not work.exists()


def test_render_a_script_in_chunks(
    source: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    script = ROOT / "examples" / "slowmo_8x.vpy"
    args = ["render", str(script), "-a", f"input={clip}", "-a", f"model={weights}", "--codec", "ffv1"]
    with torch_threads(1):
        status, stdout, err = run_cli([*args, "-o", str(tmp_path / "one.mkv")], capsys)
    assert status == 0, err
    status, stdout, err = run_cli(
        [*args, "-o", str(tmp_path / "chunked.mkv"), "--workers", "2", "--threads-per-worker", "1"], capsys
    )
    assert status == 0, err
    assert summary_count(stdout, "chunks on") == 4  # two per worker: the clip is short
    one = fingerprint(tmp_path / "one.mkv", audio=False)
    assert fingerprint(tmp_path / "chunked.mkv", audio=False) == one
    assert one["frames"] == "192"


def test_unreachable_address_and_missing_ray_are_one_line(
    source: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip, weights = source
    out = tmp_path / "out.mkv"
    base = [str(clip), "-o", str(out), "--model", weights, "--codec", "ffv1"]
    status, stdout, err = run_cli([*base, "--workers", "2", "--ray-address", "127.0.0.1:1"], capsys)
    assert status == 1 and stdout == "" and len(err.splitlines()) == 1
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err and "ray start --head" in err
    status, _, err = run_cli([*base, "--workers", "2", "--ray-address", "no-port"], capsys)
    assert status == 1 and "bad Ray address 'no-port'" in err
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    status, _, err = run_cli([*base, "--workers", "2"], capsys)
    assert status == 1 and len(err.splitlines()) == 1
    assert "--workers needs Ray, which is not installed: pip install 'vs-superslomo[ray]'" in err
    assert os.listdir(tmp_path) == []
    with pytest.raises(SystemExit) as exit:  # a chunked-run option without --workers: a usage error
        main([*base, "--resume"])
    assert exit.value.code == 2 and "--resume is for chunked runs" in capsys.readouterr().err


def test_a_work_folder_not_made_here_is_refused_and_left_alone(
    source: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "out.mkv"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "doc.txt").write_text("important")
    work_folder(out).symlink_to(victim)  # a link where the work folder goes: emptying it once emptied victim
    args = [str(clip), "-o", str(out), "--model", weights, "--codec", "ffv1", "--workers", "1", "--chunk-seconds", "1"]
    status, _, err = run_cli(args, capsys)
    assert status == 1 and len(err.splitlines()) == 1 and "did not make what is there" in err, err
    assert (victim / "doc.txt").read_text() == "important" and os.listdir(victim) == ["doc.txt"]
    work_folder(out).unlink()
    work_folder(out).mkdir()  # a folder of that name this program did not make (no marker)
    (work_folder(out) / "plan.json").write_text("{}")
    assert run_cli(args, capsys)[0] == 1
    assert os.listdir(work_folder(out)) == ["plan.json"] and not out.exists()


def test_starting_afresh_removes_only_this_programs_files(
    source: tuple[Path, str], single: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    out = tmp_path / "chunked.mkv"
    with WorkFolder(out) as work:  # an earlier run's folder, with a file someone put there
        (work.path / "chunk-00000.nut").write_bytes(b"an old segment")
        (work.path / "notes.txt").write_text("mine")
    status, _, err = run_cli([str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED], capsys)
    assert status == 0, err
    assert "1 finished chunks of an earlier run were discarded" in err
    assert fingerprint(out) == single
    assert set(os.listdir(work_folder(out))) - {"lock", MARKER} == {"notes.txt"}  # kept, and its folder


def test_a_colon_in_a_chunked_output_name(
    source: tuple[Path, str],
    single: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip, weights = source
    monkeypatch.chdir(tmp_path)
    out = Path("a:b.mkv")  # once read by ffmpeg as the protocol "a", after every chunk was rendered
    status, _, err = run_cli([str(clip), "-o", str(out), "--model", weights, *JOB, *CHUNKED], capsys)
    assert status == 0, err
    assert fingerprint(tmp_path / out) == single and not work_folder(tmp_path / out).exists()


def test_more_local_workers_than_cores_is_refused(
    source: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, weights = source
    cores = os.cpu_count() or 1
    args = [str(clip), "-o", str(tmp_path / "out.mkv"), "--model", weights, "--workers", str(cores + 1)]
    status, _, err = run_cli(args, capsys)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert f"this machine has {cores} CPU cores, and more workers than cores only share them" in err
    assert os.listdir(tmp_path) == []
