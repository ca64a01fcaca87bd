"""Speed and memory: the filter end to end against the network alone and the reference loop.

Three ways to produce the same output frames of a clip, timed in one run with alternating repetitions:

- ``e2e``: ``superslomo`` through VapourSynth, frames requested as vspipe requests them
  (``VideoNode.output`` with ``core.num_threads`` frames in flight), colour planes in and out;
- ``network``: the network alone on frames already on the device, flow once per pair and every t of the
  pair in batched forwards (the ceiling on this device); with ``flow="dis"`` DIS runs once per pair too;
- ``reference``: flow once per pair, then one plain forward per t at batch 1, as the original converter
  does (the engine also computes the t-independent part of the interpolation net once per pair).

``e2e`` and ``network`` run on each backend asked for (default: every installed one, see
:mod:`vs_superslomo.backends`), all in the same run, their repetitions alternating with the others';
``reference`` is PyTorch eager. A backend's first call (an ONNX export or a compile, unless cached) is
the untimed warm-up, reported on its own.

Throughput is output frames per second (copies of source frames included, as a user counts them).
Peak host memory is sampled from /proc while each method runs; peak CUDA memory comes from torch.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .allocator import resident_bytes
from .backends import BACKENDS, available_backends
from .commandline import Parser, add_device, device_index, parse_size, run
from .engine import Interpolator, select_device
from .files import atomic_write
from .flow import FLOW_SOURCES, FlowSource
from .frames import clip_from_arrays
from .network import SuperSloMo
from .plugin import superslomo
from .scenechange import DEFAULT_SC_THRESHOLD, luma
from .stages import collecting
from .timing import Timing
from .weights import load_model

__all__ = ["BenchResult", "main", "moving_texture", "run_bench"]

METHODS = ("e2e", "network", "reference")
_PROG = "vs-superslomo bench"


def moving_texture(count: int, height: int, width: int, seed: int = 1, grain: int = 16) -> list[np.ndarray]:
    """Smooth random pictures (3, H, W) in [0, 1], each moved 2 px right and 1 px down from the last.

    Smooth (random values on a ``grain``-pixel grid, interpolated), so consecutive frames never look like
    a scene cut; moving, so they are not identical. A finer grain gives more detail.
    """
    rng = np.random.default_rng(seed)
    h, w = height + count, width + 2 * count
    coarse = torch.from_numpy(rng.random((1, 3, h // grain + 2, w // grain + 2), dtype=np.float32))
    base = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return [
        np.ascontiguousarray(base[:, count - i : count - i + height, 2 * (count - i) : 2 * (count - i) + width])
        for i in range(count)
    ]


class _PeakRSS:
    """The largest resident set size seen while active, sampled every few milliseconds."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        now = resident_bytes()
        if now is None:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return now

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @contextmanager
    def watch(self) -> Iterator[None]:
        self.peak = self._rss()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()
            self._stop.clear()
            self.peak = max(self.peak, self._rss())


@dataclass(frozen=True)
class BenchResult:
    """One configuration's numbers (seconds are medians over the repetitions)."""

    width_px: int
    height_px: int
    factor: int
    net_width: float
    flow: str
    backend: str
    device: str
    precision: str
    pairs: int
    output_frames: int
    seconds: dict[str, float]
    cpu_seconds: dict[str, float]  # process CPU time (all threads), median over repetitions
    fps: dict[str, float]
    peak_host_mib: dict[str, float]
    peak_cuda_mib: dict[str, float]
    first_e2e_seconds: float  # the untimed warm-up run: includes an ONNX export or a compile when not cached
    stages: str = ""  # with ``stages``: where one more end-to-end run's time went (:meth:`.StageTimes.table`)

    @property
    def e2e_vs_network(self) -> float:
        return self.seconds["network"] / self.seconds["e2e"]

    @property
    def e2e_vs_reference(self) -> float:
        return self.seconds["reference"] / self.seconds["e2e"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _Timings:
    """Every method's measurements: wall and CPU seconds of each repetition, peak memories, the warm-up run."""

    seconds: dict[str, list[float]]
    cpu: dict[str, list[float]]
    host_mib: dict[str, float]
    cuda_mib: dict[str, float]
    first: dict[str, float]


def _measure(runs: dict[str, Callable[[], None]], reps: int, device: torch.device) -> _Timings:
    """Each run once untimed (first-call allocations, exports, compiles and cuDNN autotuning), then ``reps``
    timed rounds in which the order rotates, so no method always runs first."""
    names = list(runs)
    zeros = dict.fromkeys(names, 0.0)
    timings = _Timings({m: [] for m in names}, {m: [] for m in names}, dict(zeros), dict(zeros), {})
    sampler = _PeakRSS()
    for name in names:
        start = time.perf_counter()
        runs[name]()
        timings.first[name] = time.perf_counter() - start
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            with sampler.watch():
                start, cpu_start = time.perf_counter(), time.process_time()
                runs[name]()
                _sync(device)
                timings.seconds[name].append(time.perf_counter() - start)
                timings.cpu[name].append(time.process_time() - cpu_start)
            timings.host_mib[name] = max(timings.host_mib[name], sampler.peak / 2**20)
            if device.type == "cuda":
                timings.cuda_mib[name] = max(timings.cuda_mib[name], torch.cuda.max_memory_allocated(device) / 2**20)
    return timings


@dataclass(frozen=True)
class _Workload:
    """What every method computes: ``pairs`` source pairs of a moving texture, to ``factor`` times the frames."""

    frames: list[np.ndarray]
    factor: int
    timing: Timing
    times: list[list[float]]

    @classmethod
    def make(cls, size: tuple[int, int], factor: int, pairs: int, seed: int) -> _Workload:
        frames = moving_texture(pairs + 1, size[1], size[0], seed=seed)
        if max(float(np.abs(luma(b) - luma(a)).mean()) for a, b in itertools.pairwise(frames)) > DEFAULT_SC_THRESHOLD:
            raise RuntimeError("bench frames look like a scene cut: the filter would skip them")  # never measure that
        timing = Timing(len(frames), Fraction(factor))
        return cls(frames, factor, timing, [[float(t) for t in timing.pair_times(i)] for i in range(pairs)])


def _methods(
    work: _Workload,
    model: SuperSloMo,
    engines: dict[str, Interpolator],
    backends: Sequence[str],
    filter_options: dict[str, object],
) -> dict[str, Callable[[], None]]:
    """The reference loop, and the filter end to end and the network alone on each engine's backend."""
    eager = engines["torch"]
    frames, device = work.frames, eager.device
    uploaded = [eager.upload(frames[i], frames[i + 1]) for i in range(len(work.times))]
    clip = clip_from_arrays(frames, fps=(25, 1))

    def flows(i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        return eager.flows(frames[i], frames[i + 1])

    def e2e(backend: str) -> None:
        # A fresh filter each time: nothing may come from an earlier repetition's cache.
        out = superslomo(clip, work.factor, model=model, backend=backend, **filter_options)  # type: ignore[arg-type]
        with open(os.devnull, "wb") as sink:
            out.output(sink)

    def network(backend: str) -> None:
        for i, ((x0, x1), ts) in enumerate(zip(uploaded, work.times, strict=True)):
            engines[backend].forward_pair(x0, x1, ts, flows=flows(i))

    def reference() -> None:
        with eager.inference():
            for i, ((x0, x1), ts) in enumerate(zip(uploaded, work.times, strict=True)):
                i0, i1 = model.normalize(x0), model.normalize(x1)
                f01, f10 = flows(i) or model.compute_flow(i0, i1)
                for t in ts:
                    frame = model.synthesize(i0, i1, f01, f10, torch.tensor([t], device=device))
                    (frame.float() + model.mean).clamp(0, 1)

    runs: dict[str, Callable[[], None]] = {"reference": reference}
    for backend in backends:
        runs[f"e2e:{backend}"] = functools.partial(e2e, backend)
        runs[f"network:{backend}"] = functools.partial(network, backend)
    return runs


def run_bench(
    size: tuple[int, int],
    factor: int,
    *,
    width: float = 1.0,
    device_index: int | None = None,
    fp16: bool | None = None,
    pairs: int = 2,
    reps: int = 3,
    batch_size: int | None = None,
    seed: int = 0,
    flow: FlowSource | None = None,
    backends: Sequence[str] = ("torch",),
    model: SuperSloMo | None = None,
    splat: bool | None = None,
    stages: bool = False,
) -> list[BenchResult]:
    """Time the filter and the network alone on each of ``backends``, and the reference loop, on ``pairs`` source
    pairs of frames of ``size`` (w, h); one result per backend, all from one run of alternating repetitions.

    ``model`` None: random weights of ``width``. ``flow``: the flow net or DIS (None: what the weights say).
    ``splat``: as the filter's (None: with DIS flows); the reference loop keeps the paper's formulas.
    ``stages``: one more end-to-end run per backend, untimed above, tells where its time went.
    """
    device = select_device(device_index)
    torch.manual_seed(seed)
    model = SuperSloMo(width=width).eval() if model is None else model.eval()
    motion: FlowSource = model.flow_source if flow is None else flow
    work = _Workload.make(size, factor, pairs, seed)
    engines = {
        b: Interpolator(model, device, fp16=fp16, batch_size=batch_size, flow=motion, backend=b, splat=splat)
        for b in dict.fromkeys(["torch", *backends])
    }
    options: dict[str, object] = {
        "device_index": device_index,
        "fp16": fp16,
        "batch_size": batch_size,
        "flow": motion,
        "splat": splat,
    }
    methods = _methods(work, model, engines, backends, options)
    timings = _measure(methods, reps, device)
    eager = engines["torch"]
    where = {b: _stage_table(methods[f"e2e:{b}"]) if stages else "" for b in backends}

    def of(backend: str, values: dict[str, float]) -> dict[str, float]:
        return {m: values["reference" if m == "reference" else f"{m}:{backend}"] for m in METHODS}

    median = {m: statistics.median(v) for m, v in timings.seconds.items()}
    cpu_median = {m: statistics.median(v) for m, v in timings.cpu.items()}
    return [
        BenchResult(
            width_px=size[0],
            height_px=size[1],
            factor=factor,
            net_width=model.width,
            flow=f"{motion}+splat" if eager.splat else motion,
            backend=backend,
            device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            precision="fp16" if eager.fp16 else "fp32",
            pairs=pairs,
            output_frames=work.timing.num_output,
            seconds=of(backend, median),
            cpu_seconds=of(backend, cpu_median),
            fps={m: work.timing.num_output / s for m, s in of(backend, median).items()},
            peak_host_mib=of(backend, timings.host_mib),
            peak_cuda_mib=of(backend, timings.cuda_mib),
            first_e2e_seconds=timings.first[f"e2e:{backend}"],
            stages=where[backend],
        )
        for backend in backends
    ]


def _stage_table(e2e: Callable[[], None]) -> str:
    with collecting() as times:
        e2e()
    return times.table()


def table(results: Sequence[BenchResult]) -> str:
    """A Markdown table of results."""
    head = (
        "| size | factor | width | flow | backend | device | precision | e2e fps | network fps | reference fps | "
        "e2e / network | e2e / reference | e2e CPU s / frame | first e2e run s | peak host MiB (e2e) | "
        "peak CUDA MiB (e2e) |"
    )
    rows = [head, "|" + "---|" * 16]
    for r in results:
        rows.append(
            f"| {r.width_px}×{r.height_px} | {r.factor}× | {r.net_width:g} | {r.flow} | {r.backend} | {r.device} | "
            f"{r.precision} | {r.fps['e2e']:.3f} | {r.fps['network']:.3f} | {r.fps['reference']:.3f} | "
            f"{r.e2e_vs_network:.3f} | {r.e2e_vs_reference:.3f} | {r.cpu_seconds['e2e'] / r.output_frames:.3f} | "
            f"{r.first_e2e_seconds:.1f} | {r.peak_host_mib['e2e']:.0f} | {r.peak_cuda_mib['e2e']:.0f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str]) -> int:
    """``vs-superslomo bench``: print a table (and write JSON) for every size × factor × flow asked for, one row
    per backend."""
    p = Parser(prog=_PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=parse_size, nargs="+", default=[(448, 256)], help="WxH or 360p/720p/1080p/2160p")
    p.add_argument("--factor", type=int, nargs="+", default=[8], help="interpolation factors (2, 4, 8)")
    p.add_argument("--width", type=float, default=1.0, help="random weights' width multiplier (1 = full size)")
    p.add_argument("--model", help="weights to time instead of random ones: a file, or 'default' (the bundled)")
    add_device(p)
    p.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None, help="half precision (CUDA)")
    p.add_argument("--pairs", type=int, default=2, help="source pairs per repetition")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions of each method")
    p.add_argument("--batch-size", type=int, default=None, help="interpolated frames per forward (default: auto)")
    p.add_argument(
        "--flow", choices=FLOW_SOURCES, nargs="+", default=[None], help="flow sources (default: the weights')"
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        nargs="+",
        default=None,
        help="backends to compare in one run (default: every installed one)",
    )
    p.add_argument(
        "--splat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="splat the flows to t, as the filter's splat= (default: with DIS flows)",
    )
    p.add_argument(
        "--stages", action="store_true", help="also print where an end-to-end run's time went, per stage and thread"
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    return run(_PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    index = device_index(args.device)
    model = None
    if args.model is not None:
        model = load_model(None if args.model == "default" and not Path("default").exists() else args.model)[0]
    chosen = args.backend or available_backends()
    results = []
    for size, factor, flow in itertools.product(args.size, args.factor, args.flow):
        rows = run_bench(
            size,
            factor,
            width=args.width,
            device_index=index,
            fp16=args.fp16,
            pairs=args.pairs,
            reps=args.reps,
            batch_size=args.batch_size,
            flow=flow,
            backends=chosen,
            model=model,
            splat=args.splat,
            stages=args.stages,
        )
        results += rows
        print("\n".join(table(rows).splitlines()[2:]), flush=True)
        for row in rows:
            if row.stages:
                print(f"{row.width_px}x{row.height_px} {row.factor}x {row.flow} on {row.backend}: {row.stages}")
    print(table(results))
    if args.json:
        payload = [
            asdict(r) | {"e2e_vs_network": r.e2e_vs_network, "e2e_vs_reference": r.e2e_vs_reference} for r in results
        ]
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))
