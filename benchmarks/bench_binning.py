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
from _timing import interleaved_medians, machine, print_table, softmax_probs  # noqa: E402

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
        # calls interleaved one by one, so that drifting load hits all of them alike
        t = interleaved_medians({
            "baseline": lambda: numpy_baseline_ece(y, p),
            "ece": lambda: calkit.ece(y, p),
            "sort": lambda: np.sort(conf),
            "argsort": lambda: np.argsort(conf),
            "table": lambda: calkit.bin_table(conf, correct, strategy="quantile"),
            "quantile ece": lambda: calkit.ece(y, p, strategy="quantile"),
        }, repeat=repeat, warmup=1)
        ours, table, full = t["ece"], t["table"], t["quantile ece"]
        rows.append(dict(case=label, what="uniform ECE", calkit_ms=ours * 1e3,
                         baseline="digitize+bincount", baseline_ms=t["baseline"] * 1e3,
                         ratio=ours / t["baseline"], target="<= 1.3",
                         agree=abs(calkit.ece(y, p) - numpy_baseline_ece(y, p)) < 1e-6))
        for name in ("sort", "argsort"):
            rows.append(dict(case=label, what="quantile bin table", calkit_ms=table * 1e3,
                             baseline=f"np.{name}", baseline_ms=t[name] * 1e3,
                             ratio=table / t[name], target="<= 2"))
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
