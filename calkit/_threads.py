"""A small pool of threads for numpy reductions, which release the GIL.

Large validation passes split their rows into parts that these threads and
the calling thread reduce together (one thread per core, at most 4).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def worker_count() -> int:
    """Threads to use for one reduction: one per available core, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def share_work(fn, parts: list[tuple]) -> list:
    """``[fn(*part) for part in parts]``, computed by this thread and the pool's together.

    The calling thread takes parts too (it is running already; a pool thread may
    first have to be woken), and parts are handed out one at a time, so a thread
    that the OS pauses delays only the part it holds.
    """
    todo = iter(enumerate(parts))
    lock = threading.Lock()
    results: dict[int, object] = {}

    def drain() -> None:
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            results[item[0]] = fn(*item[1])

    helpers = [_thread_pool().submit(drain) for _ in range(worker_count() - 1)]
    drain()
    for helper in helpers:
        helper.result()
    return [results[i] for i in range(len(parts))]


def _thread_pool() -> ThreadPoolExecutor:
    """The shared pool (created on first use); the calling thread is the last worker."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, worker_count() - 1),
                                       thread_name_prefix="calkit")
    return _POOL
