"""A bounded, thread-safe cache that computes each missing entry exactly once.

VapourSynth asks for output frames from several threads and in any order. All frames between one
source pair come from one batched computation, so the first thread to want a pair computes it and
every other thread wanting it waits for that result instead of computing it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import TypeVar

__all__ = ["ComputeOnceCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ComputeOnceCache[K: Hashable, V]:
    """LRU by total size: ``size_of(value)`` units (bytes) kept up to ``max_size``.

    The most recent entry is always kept, even when larger than ``max_size``, so a single pair bigger
    than the budget still serves all of its frames from one computation.
    """

    def __init__(self, max_size: int, size_of: Callable[[V], int]) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be >= 0, got {max_size}")
        self._max_size = max_size
        self._size_of = size_of
        self._lock = threading.Lock()
        self._done: OrderedDict[K, V] = OrderedDict()
        self._pending: dict[K, Future[V]] = {}
        self._size = 0
        self.computed = 0  # how many times compute() ran: lets tests prove "exactly once"

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._done)

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value for ``key``, running ``compute`` only if no thread has it or is computing it."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            future = self._pending.get(key)
            owner = future is None
            if future is None:
                future = self._pending[key] = Future()
                self.computed += 1
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._done[key] = value
            self._size += self._size_of(value)
            while self._size > self._max_size and len(self._done) > 1:
                _, old = self._done.popitem(last=False)
                self._size -= self._size_of(old)
        future.set_result(value)
        return value
