"""Binning-engine benchmark (issue 2): calkit ECE next to plain numpy baselines.

Run: ``python benchmarks/bench_binning.py [--quick]``.

Rows:
* uniform ECE: ``calkit.ece`` (with its full input validation) against a plain
  ``max``/``argmax``/``np.digitize``/``np.bincount`` computation with no checks.
* quantile ECE: the equal-mass bin table of the top-label confidences
  (``calkit.bin_table(..., strategy="quantile")``) against one ``np.sort`` and one
  ``np.argsort`` of the same confidences; and the whole ``calkit.ece`` call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, median_time, print_table, softmax_probs  # noqa: E402

import calkit  # noqa: E402


def numpy_baseline_ece(y, p, n_bins=15):
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    idx = np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
    count = np.bincount(idx, minlength=n_bins)
    gap = np.abs(np.bincount(idx, conf, n_bins) - np.bincount(idx, correct, n_bins))
    return float(gap.sum() / count.sum())


def run(sizes, repeat):
    rows = []
    for n, k in sizes:
        p, y = softmax_probs(n, k)
        conf = p.max(axis=1)
        correct = p.argmax(axis=1) == y
        label = f"{n:,} x {k:,}"
        base = median_time(lambda: numpy_baseline_ece(y, p), repeat)
        ours = median_time(lambda: calkit.ece(y, p), repeat)
        rows.append(dict(case=label, what="uniform ECE", calkit_ms=ours * 1e3,
                         baseline="digitize+bincount", baseline_ms=base * 1e3,
                         ratio=ours / base, target="<= 1.3",
                         agree=abs(calkit.ece(y, p) - numpy_baseline_ece(y, p)) < 1e-6))
        sort = median_time(lambda: np.sort(conf), repeat)
        argsort = median_time(lambda: np.argsort(conf), repeat)
        table = median_time(lambda: calkit.bin_table(conf, correct, strategy="quantile"), repeat)
        rows.append(dict(case=label, what="quantile bin table", calkit_ms=table * 1e3,
                         baseline="np.sort", baseline_ms=sort * 1e3, ratio=table / sort,
                         target="<= 2"))
        rows.append(dict(case=label, what="quantile bin table", calkit_ms=table * 1e3,
                         baseline="np.argsort", baseline_ms=argsort * 1e3,
                         ratio=table / argsort, target="<= 2"))
        full = median_time(lambda: calkit.ece(y, p, strategy="quantile"), repeat)
        rows.append(dict(case=label, what="quantile ECE (full)", calkit_ms=full * 1e3,
                         baseline="uniform ECE (calkit)", baseline_ms=ours * 1e3,
                         ratio=full / ours, target="-"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    sizes = [(5_000, 100), (100_000, 10)] if args.quick else [(50_000, 1_000), (1_000_000, 10)]
    print(f"machine: {machine()}")
    print_table(run(sizes, repeat=3 if args.quick else 9),
                ["case", "what", "calkit_ms", "baseline", "baseline_ms", "ratio", "target",
                 "agree"])


if __name__ == "__main__":
    main()
