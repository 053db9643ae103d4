"""Smooth ECE benchmark (issue 5): ``calkit`` against the reference package ``relplot``.

Run: ``python benchmarks/bench_smooth.py [--quick]`` (needs ``pip install relplot``).

Both compute smECE with the automatic fixed-point bandwidth on the same top-label
(confidence, correct) pairs; the table gives both values, their difference, the
chosen bandwidths and the time ratio measured in the same run (relplot / calkit,
so > 1 means calkit is faster; target >= 2 at 1M samples).

Data: the real CIFAR-10 ResNet-50 test outputs (10,000 samples) from
``../shared/data`` when present (else the bundled 2,000-sample example), and 1M
samples resampled with replacement from them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _real_data import cifar10_probabilities  # noqa: E402
from _timing import machine, median_time, print_table  # noqa: E402

from calkit.metrics.smooth import smooth_ece_from_scores  # noqa: E402


def real_pairs() -> tuple[np.ndarray, np.ndarray, str]:
    p, labels, source = cifar10_probabilities()
    return p.max(1), (p.argmax(1) == labels).astype(np.float64), source


def run(sizes, repeat):
    import relplot

    conf, correct, source = real_pairs()
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        if n == len(conf):
            f, y, what = conf, correct, source
        else:
            idx = rng.integers(0, len(conf), n)
            f, y, what = conf[idx], correct[idx], f"{source}, resampled"
        theirs, sigma_theirs = relplot.smECE(f, y, return_width=True)
        ours = smooth_ece_from_scores(f, y)
        t_theirs = median_time(lambda f=f, y=y: relplot.smECE(f, y), repeat)
        t_ours = median_time(lambda f=f, y=y: smooth_ece_from_scores(f, y), repeat)
        rows.append(dict(n=f"{n:,}", data=what, relplot=float(theirs), calkit=float(ours),
                         abs_diff=f"{abs(float(theirs) - float(ours)):.1e}",
                         sigma_equal=sigma_theirs == ours.sigma,
                         relplot_ms=t_theirs * 1e3, calkit_ms=t_ours * 1e3,
                         speedup=t_theirs / t_ours))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    print(f"machine: {machine()}  (shared CPU: timings are noisy, read the ratios)")
    print_table(run(sizes, repeat=3 if args.quick else 7),
                ["n", "data", "relplot", "calkit", "abs_diff", "sigma_equal", "relplot_ms",
                 "calkit_ms", "speedup"])


if __name__ == "__main__":
    main()
