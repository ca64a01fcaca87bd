"""Host memory stays flat over a long clip: the cache is bounded and nothing accumulates per frame."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

STATM = "/proc/self/statm"

# Run in a fresh interpreter: what earlier tests left in the allocator must not count, or be counted.
MEASURE = textwrap.dedent(
    """
    import os
    import statistics
    from helpers import make_model, random_frames
    from vs_superslomo.frames import clip_from_arrays
    from vs_superslomo import superslomo

    def rss_mib():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    out = superslomo(clip_from_arrays(random_frames(500, 96, 128)), 4, model=make_model(), cache_mb=1)
    assert out.num_frames == 2000
    samples = {}
    for n in range(2000):  # the first 500 are warm-up: allocator pools, the cache and VapourSynth's own caches fill
        out.get_frame(n)
        if n >= 500 and n % 25 == 0:
            samples[n] = rss_mib()
    early = statistics.median(v for n, v in samples.items() if n < 750)
    late = statistics.median(v for n, v in samples.items() if n >= 1750)
    print(late - early)
    """
)


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc to read the resident set size")
def test_memory_is_flat_over_2000_output_frames() -> None:
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    grown = float(run.stdout.strip().splitlines()[-1])
    # The allocator's resident set wanders by several MiB from one sample to the next (18 MiB between two single
    # samples on one machine), so medians of the first and last 250 frames are compared. Keeping one 128×96 RGBS
    # frame per pair would add 1250 / 4 × 144 KiB = 44 MiB between them; half of that fails.
    assert grown < 22, f"resident memory grew by {grown:.1f} MiB between frames 500-750 and 1750-2000"


# The command line's job renders in frame order; its caches are sized for that. Before, the filter's 1 GiB
# result cache and VapourSynth's caches (half the machine's memory by default) filled with frames never
# asked for again: 2.1 GB resident for a 60 s 320×180 clip at 2× (measured).
JOB = textwrap.dedent(
    """
    import ctypes, ctypes.util, os, sys
    import vapoursynth as vs
    from pathlib import Path
    from helpers import make_model, random_frames
    from vs_superslomo.frames import clip_from_arrays
    from vs_superslomo import transcode
    from vs_superslomo.options import FilterOptions
    from vs_superslomo.job import Job, parse_factor
    from vs_superslomo.weights import save_model

    def rss_mib():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    try:
        mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
        mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):  # not glibc 2.33 or later: the resident set alone
        mallinfo2 = None

    def live_mib():
        # The allocator's blocks in use: what is kept, without the free memory it holds on to.
        info = mallinfo2() if mallinfo2 is not None else None
        return float("nan") if info is None else (info.uordblks + info.hblkhd) / 2**20

    folder = Path(sys.argv[1])
    save_model(make_model(), folder / "tiny.safetensors")
    frames = random_frames(24, 96, 160, seed=1, grain=4)
    rgb = clip_from_arrays(frames * 9, fps=(25, 1))  # 216 frames
    with open(folder / "in.y4m", "wb") as fh:
        vs.core.resize.Bicubic(rgb, format=vs.YUV444P8, matrix_s="709").output(fh, y4m=True)
    marks = {}
    make_bar = transcode.progress_bar

    def bar(job, total):
        update, close = make_bar(job, total)

        def measured(done, total_):
            if done in (total // 4, total):
                marks[done] = rss_mib(), live_mib()
            update(done, total_)

        return measured, close

    transcode.progress_bar = bar
    # One pair at a time: this guards the frame caches (kept frames would add 114 MiB). Two at once add a slow
    # native creep of their own (about 30 KiB a frame here, twice one stream's; docs/log.md, 2026-12-06).
    weights = FilterOptions(model=str(folder / "tiny.safetensors"), num_streams=1)
    job = Job(folder / "in.y4m", folder / "out.y4m", options=weights,
              factor=parse_factor("4"), ffmpeg=None, progress=False)
    summary = transcode.run_job(job, log=lambda _: None)
    assert summary.output_frames == 864, summary
    assert vs.core.max_cache_size > 256  # the job's limit is lifted again afterwards
    first, last = sorted(marks)
    print(marks[last][0] - marks[first][0], marks[last][1] - marks[first][1])
    """
)


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc to read the resident set size")
def test_command_line_job_memory_is_flat(tmp_path: Path) -> None:
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", JOB, str(tmp_path)], capture_output=True, text=True, env=env, timeout=240
    )
    assert run.returncode == 0, run.stderr
    resident, live = (float(x) for x in run.stdout.strip().splitlines()[-1].split())
    # The 648 output frames after the first quarter are 180 KiB each in RGBS: 114 MiB if they were kept. The
    # blocks in use (glibc's mallinfo2) grew by 5 MiB in four runs; the resident set, which also holds the
    # allocator's free memory until a trim, by 6-25 MiB.
    if not math.isnan(live):
        assert live < 24, f"memory in use grew by {live:.1f} MiB over 648 output frames of an in-order job"
    assert resident < 64, f"resident memory grew by {resident:.1f} MiB over 648 output frames of an in-order job"
