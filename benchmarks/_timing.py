"""Timing helpers shared by the benchmark scripts: median wall time and a ratio table."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int = 7,
                        warmup: int = 1) -> dict[str, float]:
    """Median wall-clock seconds of each ``fns[name]()``, the calls interleaved one by one.

    Every round calls each function once, so drifting machine load (frequent on a
    shared virtual machine) hits all of them alike and their ratios stay fair.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` (dicts) as an aligned plain-text table."""
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}"


def softmax_probs(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 (n, k) probabilities from scaled Gaussian logits, and labels."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32) * 3
    z -= z.max(1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(1, keepdims=True)
    return z, rng.integers(0, k, n)
