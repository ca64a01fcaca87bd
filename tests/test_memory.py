"""Host memory stays flat over a long clip: the cache is bounded and nothing accumulates per frame."""

from __future__ import annotations

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
    from helpers import make_model, random_frames
    from vs_superslomo.frames import clip_from_arrays
    from vs_superslomo import superslomo

    def rss_mib():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    out = superslomo(clip_from_arrays(random_frames(500, 96, 128)), 4, model=make_model(), cache_mb=1)
    assert out.num_frames == 2000
    for n in range(500):  # warm-up: allocator pools, the cache and VapourSynth's own caches fill
        out.get_frame(n)
    start = rss_mib()
    for n in range(500, 2000):
        out.get_frame(n)
    print(rss_mib() - start)
    """
)


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc to read the resident set size")
def test_memory_is_flat_over_2000_output_frames() -> None:
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    grown = float(run.stdout.strip().splitlines()[-1])
    # Keeping one 128×96 RGBS frame per pair would add 375 × 144 KiB = 53 MiB over these 1500 frames.
    assert grown < 16, f"resident memory grew by {grown:.1f} MiB over 1500 output frames"
