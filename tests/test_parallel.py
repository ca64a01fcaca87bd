"""Pairs computed at once (``num_streams``): the choice, the cores each gets, and two pairs really running
side by side with the same frames as one at a time."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import make_model, random_frames

from vs_superslomo import backends, parallel, superslomo
from vs_superslomo.engine import EngineError, Interpolator
from vs_superslomo.frames import clip_from_arrays, read_frame
from vs_superslomo.parallel import auto_streams, check_streams, share_cores

core = vs.core
CPU = torch.device("cpu")
MODEL = make_model()
_COMPUTE = Interpolator.interpolate_with_confidence


@pytest.fixture
def restored_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's thread counts (torch, OpenCV, VapourSynth) as they were, whatever the test sets."""
    old = torch.get_num_threads(), cv2.getNumThreads(), core.num_threads
    yield
    torch.set_num_threads(old[0])
    cv2.setNumThreads(old[1])
    core.num_threads = old[2]


def test_num_streams_is_an_int_from_1_to_16_or_none() -> None:
    assert [check_streams(v) for v in (None, 1, 16)] == [None, 1, 16]
    for bad in (0, 17, True, 2.0, "2"):
        with pytest.raises(ValueError, match=r"^num_streams must be an int from 1 to 16"):
            check_streams(bad)


def test_two_streams_by_default_on_a_cpu_below_1280x720_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_cores", [2])
    assert auto_streams(360, 640, CPU) == 2
    assert auto_streams(719, 1280, CPU) == 2
    assert auto_streams(720, 1280, CPU) == 1
    assert auto_streams(360, 640, torch.device("cuda", 0)) == 1
    monkeypatch.setattr(parallel, "_cores", [1])
    assert auto_streams(360, 640, CPU) == 1


def test_each_stream_gets_its_share_of_the_cores_and_one_stream_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, restored_threads: None
) -> None:
    monkeypatch.setattr(parallel, "_cores", [4])
    torch.set_num_threads(3)
    assert share_cores(1) == 3 and torch.get_num_threads() == 3
    assert share_cores(2) == 2 and torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
    assert share_cores(4) == 1 and torch.get_num_threads() == 1
    assert share_cores(8) == 1  # never below one thread
    assert share_cores(2) == 2  # from the process's cores, not from what the last filter set


def test_the_engine_refuses_streams_on_a_gpu_and_bad_values() -> None:
    with pytest.raises(EngineError, match="streams must be a positive int"):
        Interpolator(MODEL, CPU, backend="torch", streams=0)
    if torch.cuda.is_available():
        with pytest.raises(EngineError, match="num_streams=2 is for the CPU"):
            Interpolator(MODEL, torch.device("cuda", 0), streams=2)


def _most_at_once(num_streams: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[int, np.ndarray]]:
    """The most pairs computed at once while rendering a 6-frame clip at 2x in order, and the frames."""
    running, most = [0], [0]
    lock = threading.Lock()

    def counted(self: Interpolator, *args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # long enough for the next pair's request to arrive
            return _COMPUTE(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Interpolator, "interpolate_with_confidence", counted)
    clip = clip_from_arrays(random_frames(6, 32, 48, seed=5))
    out = superslomo(clip, 2, model=MODEL, backend="torch", num_streams=num_streams)
    futures = {n: out.get_frame_async(n) for n in range(out.num_frames)}
    frames = {n: read_frame(f.result()) for n, f in futures.items()}
    return most[0], frames


def test_two_streams_compute_two_pairs_at_once_with_the_frames_of_one(
    monkeypatch: pytest.MonkeyPatch, restored_threads: None
) -> None:
    core.num_threads = 4
    monkeypatch.setattr(parallel, "_cores", [2])
    two, frames = _most_at_once(2, monkeypatch)
    assert two == 2
    one, alone = _most_at_once(1, monkeypatch)  # the same thread count as the two streams had: one each
    assert one == 1
    assert all(np.array_equal(frames[n], alone[n]) for n in frames)


def test_two_streams_give_the_same_bits_in_any_order_and_thread_count(restored_threads: None) -> None:
    clip = clip_from_arrays(random_frames(6, 32, 48, seed=6))
    count = 5 * 3 + 1
    core.num_threads = 1
    reference = superslomo(clip, 3, model=MODEL, backend="torch", num_streams=2)
    sequential = {n: read_frame(reference.get_frame(n)) for n in range(count)}
    core.num_threads = 3
    order = random.Random(3).sample(range(count), count)
    out = superslomo(clip, 3, model=MODEL, backend="torch", num_streams=2)
    futures = {n: out.get_frame_async(n) for n in order}
    assert all(np.array_equal(read_frame(futures[n].result()), sequential[n]) for n in range(count))


@pytest.mark.skipif("openvino" not in backends.available_backends(), reason="openvino is not installed")
def test_openvino_runs_two_forwards_at_once_with_the_bits_of_one_at_a_time() -> None:
    """One infer request for each forward in flight (a request is not thread-safe), on a graph compiled for two
    streams: the same bits as the forwards one after another."""
    nets = backends.load_nets("openvino", MODEL, CPU, streams=2)
    inputs = [torch.rand(1, 6, 64, 96, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    alone = [nets.flow(x) for x in inputs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(nets.flow, inputs))
    assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))
