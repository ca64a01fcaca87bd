"""Chunked runs on Ray workers: ``--workers N`` on this machine, ``--ray-address`` on a cluster.

The driver builds the job's filter graph once (its length and timing), scans the source for scene cuts,
plans the chunks (:mod:`vs_superslomo.chunks`) and hands them to Ray tasks, longest first. Every task builds
the same graph over the whole source and encodes only its own output range with the job's codec into a
segment of a work folder beside the output: an encode of its own, so a segment starts with a keyframe and
no frame refers across segments. The driver checks each segment's frame count, joins the segments in order
without re-encoding (ffmpeg's concat demuxer, with durations exact to the microsecond), adds the audio as
a single run does and renames the result into place (:func:`vs_superslomo.encode.encode_file`).

Ray retries a chunk whose worker dies; a chunk that fails otherwise stops the job with its own one-line
error. The work folder (its plan, finished segments) survives an error or Ctrl-C, and ``--resume`` reuses
the segments that are complete and verified. Ray is optional: ``pip install 'vs-superslomo[ray]'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

from .chunks import Chunk, chunk_target, concat_durations_us, first_output_at, longest_first, plan_chunks, source_edges
from .colour import to_rgb
from .commandline import WorkerSettings
from .encode import check_encoded, encode_file, ffprobe_beside, join_segments
from .errors import JobError
from .job import Job, Prepared, Summary
from .raysession import first_line, import_ray, ray_session
from .scenechange import find_cuts
from .script import prepare_script
from .streams import MP4_LIKE
from .tally import Tally, engine_text
from .timing import TimestampTiming, Timing
from .transcode import RENDER_VS_CACHE_MB, check_paths, prepare, progress_bar
from .workfolder import WorkFolder, work_folder

__all__ = [
    "ChunkedSummary",
    "Recipe",
    "run_chunked",
    "work_folder",
]

_POLL_SECONDS = 0.5
_REPORT_SECONDS = 0.25  # how often a worker reports its frames to the progress bar (and asks whether to stop)
_STOP_SECONDS = 30.0  # how long the driver waits for running chunks it asked to stop


@dataclass(frozen=True)
class Recipe:
    """What every worker builds: the command line's job, or a VapourSynth script's output (``script``)."""

    job: Job
    script: bool = False  # job.input is a .vpy; its output is rendered as it is (job's filter options unused)
    args: tuple[tuple[str, str], ...] = ()  # the script's -a NAME=VALUE

    def build(self, log: Callable[[str], None]) -> Prepared:
        return prepare_script(self.job.input, dict(self.args)) if self.script else prepare(self.job, log)


@dataclass(frozen=True)
class ChunkDone:
    """What a worker reports for its chunk."""

    index: int
    seconds: float
    host: str
    pid: int
    engine: str = ""  # where its networks ran (:func:`.tally.engine_text`)
    held_replaced: int = 0  # as the single run's summary counts them (:class:`.tally.Tally`)
    cut_pairs: frozenset[int] = frozenset()  # a pair across two chunks counts once in the union


def _counts(recipe: Recipe, done: list[ChunkDone], resumed: bool) -> tuple[str | None, int | None, int | None]:
    """The summary's engine, held frames replaced and cuts kept, from the chunks' reports; the counts only when
    every chunk was rendered now (a resumed run's earlier chunks reported to a driver that is gone)."""
    if recipe.script:
        return None, None, None
    options = recipe.job.options
    engine = ", ".join(sorted({d.engine for d in done if d.engine})) or None
    whole = not resumed
    held = sum(d.held_replaced for d in done) if options.dedup and whole else None
    cuts = len(frozenset().union(*(d.cut_pairs for d in done))) if options.sc and whole else None
    return engine, held, cuts


@dataclass(frozen=True)
class ChunkedSummary:
    """A chunked job's :class:`Summary`, and how its chunks went."""

    summary: Summary
    chunks: int
    workers: int
    reused: int
    retried: int
    chunk_seconds: float  # the chunks' own render times, added up
    render_seconds: float  # wall time from the first chunk handed out to the last one done

    # The speed-up is the chunk time over the wall time: what one worker would take if each chunk ran as
    # fast alone. Workers that share cores each run slower, so there it overstates (README: measured).

    def line(self, input_name: str) -> str:
        done = self.chunks - self.reused
        speed = f"{self.chunk_seconds / self.render_seconds:.2f}x" if self.render_seconds > 0 and done else "n/a"
        notes = [f"{n} {what}" for n, what in ((self.reused, "reused"), (self.retried, "retried")) if n]
        return (
            f"{self.summary.line(input_name)}; {self.chunks} chunks on {self.workers} workers"
            f"{' (' + ', '.join(notes) + ')' if notes else ''}: {self.chunk_seconds:.1f} s of chunk work in "
            f"{self.render_seconds:.1f} s, speed-up {speed} over one worker (less where workers share cores)"
        )


def _segment_suffix(output: Path) -> str:
    # MP4-like outputs take MP4 segments (the same time scale); others NUT, whose time base is the frame
    # rate itself, where Matroska would round every time to the millisecond.
    suffix = output.suffix.lower()
    return suffix if suffix in MP4_LIKE else ".nut"


def _segment(work: Path, chunk: Chunk, suffix: str) -> Path:
    return work / f"chunk-{chunk.index:05d}{suffix}"


# ---------------------------------------------------------------------------------------------------------
# The worker side: one chunk of the job, into one segment.


class _Progress:
    """A Ray actor the workers tell how far they are; the driver reads it for the progress bar. Its answer
    to a worker says whether the driver wants the chunks stopped."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}
        self.starts: dict[int, int] = {}
        self.stopping = False

    def started(self, index: int) -> bool:
        self.starts[index] = self.starts.get(index, 0) + 1
        self.done[index] = 0
        return self.stopping

    def report(self, index: int, done: int) -> bool:
        self.done[index] = done
        return self.stopping

    def stop(self) -> None:
        self.stopping = True

    def snapshot(self) -> tuple[dict[int, int], dict[int, int]]:
        return dict(self.done), dict(self.starts)


class _Stopped(Exception):
    """Raised in a worker whose chunk the driver asked to stop (Ctrl-C, or another chunk failed)."""


def _render_chunk(recipe: Recipe, chunk: Chunk, segment: Path, threads: int, progress: Any) -> ChunkDone:
    """Build the job's whole graph and encode output frames ``chunk.start`` to ``chunk.end - 1`` to
    ``segment`` (atomically, read back). Runs in a Ray worker."""
    import ray
    import torch
    import vapoursynth as vs

    started = time.perf_counter()
    # The same thread count as a single run with it gives the same frames (torch's reductions split by it).
    torch.set_num_threads(threads)
    vs.core.num_threads = threads
    vs.core.max_cache_size = min(vs.core.max_cache_size, RENDER_VS_CACHE_MB)  # an in-order render, as run_job's
    host = socket.gethostname()
    # Waited for: a worker killed right after this still counts as a try (the call would be lost unsent).
    if ray.get(progress.started.remote(chunk.index)):
        raise _Stopped
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise JobError(f"ffmpeg is not installed on the worker machine {host}: install it on every machine")
    job = replace(recipe.job, ffmpeg=ffmpeg)
    prepared = replace(recipe, job=job).build(lambda _: None)
    if prepared.clip.num_frames < chunk.end:
        raise JobError(
            f"{host} builds {prepared.clip.num_frames} output frames, not the driver's {chunk.end}+: "
            "the input, weights or package differ between machines"
        )
    reported = 0.0

    def update(done: int, total: int) -> None:
        nonlocal reported
        now = time.perf_counter()
        if done == total or now - reported >= _REPORT_SECONDS:
            reported = now
            if ray.get(progress.report.remote(chunk.index, done)):
                raise _Stopped  # out of the render: the segment's temporary file is removed, ffmpeg stopped

    tally = Tally()
    # A segment left incomplete by an earlier run is replaced.
    encode_file(job, prepared, tally.watch(prepared.clip[chunk.start : chunk.end]), segment, update, overwrite=True)
    engine = "" if recipe.script else engine_text(job.device_index, job.options.fp16, job.options.backend)
    seconds = time.perf_counter() - started
    return ChunkDone(chunk.index, seconds, host, os.getpid(), engine, tally.held_replaced, frozenset(tally.cut_pairs))


# ---------------------------------------------------------------------------------------------------------
# The driver side.


def _fingerprint(recipe: Recipe) -> dict[str, str]:
    """What the segments depend on: the job's options that change frames or their encoding, and the input
    files as they are now. A resumed run keeps segments only when this has not changed."""
    skip = {"output", "overwrite", "progress", "ffmpeg", "audio"}
    print_ = {name: str(value) for name, value in asdict(recipe.job).items() if name not in skip}
    model = recipe.job.options.model
    files = [recipe.job.input] + ([Path(model)] if model else [])
    for i, path in enumerate(files):
        stat = path.stat()
        print_[f"file{i}"] = f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    if recipe.script:
        print_["script"] = hashlib.sha256(recipe.job.input.read_bytes()).hexdigest()
        print_["args"] = json.dumps(recipe.args)
    return print_


def _timing(prepared: Prepared) -> Timing | TimestampTiming:
    source = prepared.source.num_frames
    if prepared.timestamps is not None:
        return TimestampTiming.from_timestamps(prepared.timestamps, source, prepared.fps)
    return Timing(source, prepared.factor)


def _plan(recipe: Recipe, prepared: Prepared, settings: WorkerSettings, workers: int) -> list[Chunk]:
    """Chunks at scene cuts (the filter's own test, when the job looks for cuts) or every chunk_seconds."""
    total, source = prepared.clip.num_frames, prepared.source.num_frames
    job = recipe.job
    threshold = job.options.sc_threshold if job.options.sc and not recipe.script else None
    cuts = find_cuts(to_rgb(prepared.source, prepared.colour), threshold) if threshold is not None else []
    target = chunk_target(settings.chunk_seconds, prepared.fps, source, total, workers)
    timing = _timing(prepared)
    return plan_chunks(source_edges(source, target, cuts), lambda i: first_output_at(timing, i), total)


def _complete(ffprobe: str, segment: Path, chunk: Chunk, fps: Fraction) -> bool:
    """Whether ``segment`` opens without an error and holds exactly the chunk's frames."""
    if not segment.is_file():
        return False
    try:
        check_encoded(ffprobe, segment, segment, chunk.frames, fps)
    except JobError:
        return False
    return True


def _stop_chunks(ray: ModuleType, progress: Any, running: list[Any]) -> None:
    """Have the running chunks stop at their next report, and wait for them (a while: one that does not
    answer fails at its next report once the driver kills the progress actor).

    Not ray.cancel: a cancel that crosses the reply of a chunk just finishing fails a check in Ray's task
    manager (Ray 2.60), which ends the driver's whole process with exit status 1 and no message of ours:
    seen about once in twenty Ctrl-C presses."""
    ray.get(progress.stop.remote())
    if running:
        ray.wait(running, num_returns=len(running), timeout=_STOP_SECONDS)


def _chunk_error(ray: ModuleType, exc: BaseException, retries: int) -> str:
    """Why a chunk failed, in one line: the worker's own JobError, or how its worker died."""
    errors = ray.exceptions
    if isinstance(exc, errors.RayTaskError):
        cause = exc.cause
        if isinstance(cause, JobError):
            return str(cause)
        return f"{type(cause).__name__}: {first_line(cause)}" if cause is not None else first_line(exc)
    runs = "once (--retries 0)" if retries == 0 else f"{retries + 1} times (--retries {retries})"
    if isinstance(exc, errors.OutOfMemoryError):
        return f"Ray stopped its worker for lack of memory each time it ran, {runs}; give fewer workers"
    if isinstance(exc, (errors.WorkerCrashedError, errors.NodeDiedError)):
        return f"its worker died each time it ran, {runs}; Ray's worker logs may say why"
    return f"{type(exc).__name__}: {first_line(exc)}"


def _resources(ray: ModuleType, settings: WorkerSettings, job: Job, threads: int) -> tuple[int, int, int]:
    """(CPUs, GPUs) per task and how many tasks run at once."""
    gpus_there = int(ray.cluster_resources().get("GPU", 0))
    if job.device_index is not None and job.device_index >= 0 and gpus_there == 0:
        raise JobError("--device asks for CUDA, but the Ray cluster has no GPUs; use --device cpu")
    if job.device_index != -1 and gpus_there > 0:
        capacity = gpus_there
        gpus = 1
    else:
        capacity = max(1, int(ray.cluster_resources().get("CPU", threads)) // threads)
        gpus = 0
    return threads, gpus, min(capacity, settings.workers or capacity)


def _check_chunked(job: Job, settings: WorkerSettings) -> int:
    """The refusals a chunked job meets before any work (one line each); this machine's core count."""
    check_paths(job)
    if job.ffmpeg is None:
        raise JobError("--workers encodes segments and joins them with ffmpeg, which is not installed here")
    if job.output.suffix.lower() == ".y4m":
        raise JobError("--workers joins encoded segments: name the output .mkv (--codec ffv1 is lossless) or .mp4")
    cores = os.cpu_count() or 1
    if settings.address is None and settings.workers is not None and settings.workers > cores:
        raise JobError(
            f"--workers {settings.workers}: this machine has {cores} CPU cores, and more workers than cores only "
            f"share them (no faster, more memory); give at most {cores}, or --ray-address for a cluster"
        )
    return cores


def run_chunked(
    recipe: Recipe, settings: WorkerSettings, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
) -> ChunkedSummary:
    """Run ``recipe`` in chunks on Ray workers; JobError (one line) for anything the user can fix."""
    ray = import_ray()
    job = recipe.job
    cores = _check_chunked(job, settings)
    assert job.ffmpeg is not None
    started = time.perf_counter()
    # Each worker's threads: this machine's share of its cores; on a cluster 1 unless told.
    threads = settings.threads or (1 if settings.address else max(1, cores // (settings.workers or 1)))
    prepared, ffprobe = recipe.build(log), ffprobe_beside(job.ffmpeg)
    with WorkFolder(job.output.absolute()) as work, ray_session(ray, settings, threads) as local:
        num_cpus, num_gpus, workers = _resources(ray, settings, job, threads)
        chunks = _chunks(work, _fingerprint(recipe), recipe, prepared, settings, workers, log)
        suffix = _segment_suffix(job.output)
        todo = [c for c in chunks if not _complete(ffprobe, _segment(work.path, c, suffix), c, prepared.fps)]
        task = replace(recipe, job=_task_job(job, num_gpus))
        remote = ray.remote(_render_chunk).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=settings.retries, retry_exceptions=False
        )
        progress = ray.remote(num_cpus=0)(_Progress).remote()
        update, close = progress_bar(job, sum(c.frames for c in todo))
        render_started = time.perf_counter()
        done: dict[int, ChunkDone] = {}
        starts: dict[int, int] = {}
        running: dict[Any, Chunk] = {}
        queue = longest_first(todo)
        try:
            while queue or running:
                while queue and len(running) < workers:
                    chunk = queue.pop(0)
                    segment = _segment(work.path, chunk, suffix)
                    running[remote.remote(task, chunk, segment, threads, progress)] = chunk
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_SECONDS)
                for ref in ready:
                    chunk = running.pop(ref)
                    try:
                        done[chunk.index] = ray.get(ref)
                    except Exception as exc:
                        kept = len(chunks) - len(todo) + len(done)
                        raise JobError(
                            f"{chunk.label()} failed: {_chunk_error(ray, exc, settings.retries)}. Nothing was "
                            f"written to {job.output}; {work.path} keeps the plan and {kept} finished chunks "
                            "for --resume"
                        ) from None
                    if not _complete(ffprobe, _segment(work.path, chunk, suffix), chunk, prepared.fps):
                        raise JobError(
                            f"{chunk.label()}: its segment is missing or incomplete here; on several machines "
                            f"{work.path} must be on storage every machine shares, at the same path"
                        )
                reports, starts = ray.get(progress.snapshot.remote())
                finished = sum(c.frames for c in todo if c.index in done)
                update(finished + sum(n for i, n in reports.items() if i not in done), 0)
        except BaseException as exc:
            if not local:  # a cluster's (or this process's own) session goes on: its chunks must stop
                _stop_chunks(ray, progress, list(running))
            if isinstance(exc, KeyboardInterrupt):
                finished = len(chunks) - len(todo) + len(done)
                log(f"interrupted: {finished} of {len(chunks)} chunks are finished in {work.path}; --resume keeps them")
            raise
        finally:
            close()
            ray.kill(progress)  # in a session that outlives the job (a cluster's), nothing of it stays
        render_seconds = time.perf_counter() - render_started
        segments = [_segment(work.path, c, suffix) for c in chunks]
        durations = concat_durations_us(chunks, prepared.fps)
        audio, streams = join_segments(job, prepared, segments, durations, work.path, source=not recipe.script)
        work.remove()
    summary = Summary(
        prepared.source.num_frames,
        prepared.in_fps,
        prepared.clip.num_frames,
        prepared.fps,
        job.output,
        time.perf_counter() - started,
        audio,
        prepared.timestamps is not None,
        *_counts(recipe, list(done.values()), resumed=len(chunks) > len(todo)),
        streams=streams,
    )
    retried = sum(max(0, n - 1) for n in starts.values())
    work_seconds = sum(d.seconds for d in done.values())
    return ChunkedSummary(summary, len(chunks), workers, len(chunks) - len(todo), retried, work_seconds, render_seconds)


def _chunks(
    work: WorkFolder,
    fingerprint: dict[str, str],
    recipe: Recipe,
    prepared: Prepared,
    settings: WorkerSettings,
    workers: int,
    log: Callable[[str], None],
) -> list[Chunk]:
    """The chunks: an interrupted run's plan with ``--resume`` (when the job is the same), else a new one."""
    chunks = work.load_plan(fingerprint) if settings.resume else None
    if chunks is None:
        chunks = _plan(recipe, prepared, settings, workers)
        if discarded := work.start_afresh(fingerprint, chunks):
            log(f"starting afresh: {discarded} finished chunks of an earlier run were discarded (--resume keeps them)")
    return chunks


def _task_job(job: Job, num_gpus: int) -> Job:
    """The job as a worker runs it: absolute paths (a worker's working folder need not be this process's), and
    the CPU unless the task holds a GPU (it sees only its own)."""
    options = replace(job.options, model=_absolute(job.options.model))
    absolute = replace(job, input=job.input.absolute(), options=options, output=job.output.absolute())
    return replace(absolute, device_index=None if num_gpus else -1)


def _absolute(model: str | None) -> str | None:
    """A weights file's absolute path (None, the default weights, stays None)."""
    return None if model is None else os.path.abspath(model)
