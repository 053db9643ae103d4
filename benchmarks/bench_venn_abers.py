"""Venn-Abers benchmark (issue 16): the fast interval fit next to isotonic baselines.

Run: ``python benchmarks/bench_venn_abers.py [--quick] [--repeat R]``.

Rows, each measured in the same run on the same data (uniform scores, labels drawn
with probability equal to the score; ``unique`` scores, or ``tied`` ones rounded to
3 decimals), ``calkit`` being ``VennAbersCalibration().fit(s, y)`` on ``N``
calibration scores followed by ``predict_interval`` of 10,000 test scores (the
whole ``(p0, p1)`` table: every insertion slot):

* ``sklearn 1 fit``: one ``IsotonicRegression().fit`` on the same ``N`` points (a
  plain isotonic calibrator, no interval); ``ratio`` = calkit / this.
* ``brute force``: the definition, two ``IsotonicRegression`` fits per test score
  (only for small ``N`` and 200 test scores; ratio = brute / calkit).
* ``venn-abers``: the ``venn-abers`` package's ``VennAbers().fit`` + ``predict_proba``
  (when installed; small ``N`` only, its fit is quadratic in the worst case).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, machine, print_table  # noqa: E402

from calkit.posthoc import VennAbersCalibration  # noqa: E402


def data(n: int, tied: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    if tied:
        s = np.round(s, 3)
    y = (rng.random(n) < s).astype(np.int64)
    return s, y, rng.random(10_000)


def brute_force(s, y, test):
    for x in test:
        for label in (0, 1):
            IsotonicRegression(out_of_bounds="clip").fit(np.r_[s, x], np.r_[y, label]) \
                .predict([x])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1e4, 1e5 only")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    print(f"# Venn-Abers fit + predict_interval(10,000), {machine()}; median of "
          f"{args.repeat} interleaved runs (1 at N = 1e6)")
    rows = []
    for n in sizes:
        for tied in (False, True):
            s, y, test = data(n, tied)
            repeat = 1 if n >= 1_000_000 else args.repeat
            t = interleaved_medians({
                "calkit": lambda s=s, y=y, test=test:
                    VennAbersCalibration().fit(s, y).predict_interval(test),
                "sklearn": lambda s=s, y=y: IsotonicRegression().fit(s, y)},
                repeat=repeat, warmup=0 if n >= 1_000_000 else 1)
            rows.append({"N": n, "scores": "tied" if tied else "unique",
                         "unique": len(np.unique(s)), "calkit s": t["calkit"],
                         "sklearn 1 fit s": t["sklearn"],
                         "ratio": t["calkit"] / t["sklearn"]})
    print_table(rows, ["N", "scores", "unique", "calkit s", "sklearn 1 fit s", "ratio"])

    print("\n# against the definition and the venn-abers package (200 test scores)")
    rows = []
    have_pkg = importlib.util.find_spec("venn_abers") is not None
    for n in (2_000, 20_000):
        s, y, test = data(n, False)
        test = test[:200]
        fns = {"calkit": lambda s=s, y=y, test=test:
               VennAbersCalibration().fit(s, y).predict_interval(test),
               "brute": lambda s=s, y=y, test=test: brute_force(s, y, test)}
        if have_pkg:
            from venn_abers import VennAbers

            def peer(s=s, y=y, test=test):
                va = VennAbers()
                va.fit(np.c_[1 - s, s], y)
                return va.predict_proba(np.c_[1 - test, test])

            fns["venn-abers"] = peer
        t = interleaved_medians(fns, repeat=1, warmup=0)
        rows.append({"N": n, "calkit s": t["calkit"], "brute force s": t["brute"],
                     "brute / calkit": t["brute"] / t["calkit"],
                     "venn-abers s": t.get("venn-abers", "skipped"),
                     "venn-abers / calkit": (t["venn-abers"] / t["calkit"]) if have_pkg
                     else "skipped"})
    print_table(rows, ["N", "calkit s", "brute force s", "brute / calkit", "venn-abers s",
                       "venn-abers / calkit"])


if __name__ == "__main__":
    main()
