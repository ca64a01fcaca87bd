"""ComputeOnceCache: one computation per key across threads, bounded size, errors not cached."""

from __future__ import annotations

import threading
import time

import pytest

from vs_superslomo.cache import ComputeOnceCache


def test_concurrent_requests_compute_once() -> None:
    cache: ComputeOnceCache[int, list[int]] = ComputeOnceCache(1000, len)
    calls: list[int] = []
    start = threading.Barrier(8)

    def compute() -> list[int]:
        calls.append(1)
        time.sleep(0.05)  # keep the computation in flight while the other threads arrive
        return [1, 2, 3]

    results: list[list[int]] = []

    def worker() -> None:
        start.wait()
        results.append(cache.get(7, compute))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.computed == 1
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_eviction_by_size_keeps_the_newest() -> None:
    cache: ComputeOnceCache[int, bytes] = ComputeOnceCache(10, len)
    for key in range(5):
        cache.get(key, lambda: b"1234")
    assert len(cache) == 2 and cache.size == 8
    cache.get(3, lambda: b"x")  # still cached: no recomputation
    assert cache.computed == 5
    cache.get(0, lambda: b"1234")  # evicted earlier: computed again
    assert cache.computed == 6
    big: ComputeOnceCache[int, bytes] = ComputeOnceCache(0, len)
    big.get(1, lambda: b"too big")
    assert len(big) == 1  # the newest entry stays even over budget


def test_errors_propagate_and_are_not_cached() -> None:
    cache: ComputeOnceCache[str, int] = ComputeOnceCache(10, lambda _: 1)

    def fail() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get("a", fail)
    assert cache.get("a", lambda: 5) == 5
    with pytest.raises(ValueError):
        ComputeOnceCache(-1, len)
