"""Temperature-scaling fit benchmark (issue 3): calkit next to scipy's minimize_scalar.

Run: ``python benchmarks/bench_posthoc.py [--quick] [--repeat R]``.

Baselines, measured in the same run on the same logits:

* ``scipy f64``: ``scipy.optimize.minimize_scalar`` (Brent) on the mean NLL over
  ``log T``, each evaluation ``logsumexp(z / T)`` on a float64 copy of the logits
  (made once, outside the timing) minus the precomputed true-class logit.  This
  is the accurate baseline: its T is the reference for the ``rel. diff`` column.
* ``scipy f32``: the same on the float32 logits directly.  It is faster per
  evaluation but its NLL is too noisy for Brent: its T is off by ~1e-4 relative.

calkit's solver: safeguarded Newton on the NLL gradient in ``beta = 1 / T``,
one blocked float32 pass (float64 sums) per iteration.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, median_time, print_table  # noqa: E402

from calkit.posthoc.temperature import TemperatureScaling  # noqa: E402


def make_logits(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident float32 logits: labels drawn from softmax(z / 1.5)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32) * np.float32(4.0)
    y = np.empty(n, dtype=np.int64)
    block = max(1, (1 << 22) // k)
    for s in range(0, n, block):  # inverse-CDF sampling, blockwise to bound memory
        p = np.exp((z[s:s + block] - z[s:s + block].max(1, keepdims=True)) / 1.5)
        p /= p.sum(1, keepdims=True)
        u = rng.random((len(p), 1))
        y[s:s + block] = np.minimum((p.cumsum(1) < u).sum(1), k - 1)
    return z, y


def scipy_fit(z: np.ndarray, zy: np.ndarray) -> tuple[float, int]:
    """Brent over log T on the mean NLL; returns (T, function evaluations)."""
    mean_true = float(zy.mean(dtype=np.float64))

    def nll(u):
        t = np.exp(u)
        return float(np.mean(logsumexp(z / z.dtype.type(t), axis=1), dtype=np.float64)
                     - mean_true / t)

    res = minimize_scalar(nll)
    return float(np.exp(res.x)), int(res.nfev)


def _timed(fn):
    """(result, seconds) of one call: the baselines take tens of seconds, so they run once."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(sizes, repeat: int) -> list[dict]:
    rows = []
    for n, k in sizes:
        z, y = make_logits(n, k)
        z64 = z.astype(np.float64)
        zy = z64[np.arange(n), y]
        label = f"{n:,} x {k:,} f32"
        (t_ref, nfev), base = _timed(lambda: scipy_fit(z64, zy))
        (t32, nfev32), base32 = _timed(lambda: scipy_fit(z, zy))
        ts = TemperatureScaling().fit(z, y)
        ours = median_time(lambda: TemperatureScaling().fit(z, y), repeat, warmup=0)
        rows.append(dict(case=label, method="calkit newton", seconds=ours, passes=ts.n_iter_,
                         T=f"{ts.temperature_:.7f}",
                         rel_diff=f"{abs(ts.temperature_ / t_ref - 1):.1e}",
                         speedup_vs_f64=base / ours, speedup_vs_f32=base32 / ours))
        rows.append(dict(case=label, method="scipy f64", seconds=base, passes=nfev,
                         T=f"{t_ref:.7f}", rel_diff="(ref)", speedup_vs_f64=1.0,
                         speedup_vs_f32=base32 / base))
        rows.append(dict(case=label, method="scipy f32", seconds=base32, passes=nfev32,
                         T=f"{t32:.7f}", rel_diff=f"{abs(t32 / t_ref - 1):.1e}",
                         speedup_vs_f64=base / base32, speedup_vs_f32=1.0))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [(5_000, 100), (100_000, 10)] if args.quick else [(50_000, 1_000), (1_000_000, 10)]
    print(f"# temperature-scaling fit, {machine()}; calkit: median of {args.repeat} runs, "
          "scipy baselines: one run each")
    print("# shared CPU: absolute times are noisy, compare the speedup columns")
    print_table(run(sizes, args.repeat), ["case", "method", "seconds", "passes", "T",
                                          "rel_diff", "speedup_vs_f64", "speedup_vs_f32"])


if __name__ == "__main__":
    main()
