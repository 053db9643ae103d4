"""Cost of the tests of calibration and the decompositions at 10^4 .. 10^6 samples (issue 16).

Run: ``python benchmarks/bench_statistics.py [--sizes 10000,100000,1000000] [--repeat 3]``.

For each size ``N`` and each problem (``binary``: 1-D ``P(y = 1)`` with
``view="positive"``; ``top-label``: ``(N, 10)`` softmax probabilities, the
confidence of the predicted class against correctness) it times every statistic
with its defaults and prints ``seconds`` and ``x ece``: the ratio to calkit's
``ece`` (15 equal-width bins) on the same data in the same run.  The calls are
interleaved (:func:`_timing.interleaved_medians`), so drifting load on a shared
machine hits all of them alike.

The two resampling tests are linear in their number of resamples ``R``, each
resample being one Bernoulli draw per sample and a few bin sums.  Above
``--resample-max-n`` samples (default 100,000) they are run with
``--few-resamples`` resamples (default 100) and the seconds of the default ``R``
(1,000 for ``consistency_test``, 3,000 for ``t_cal_test``) are extrapolated
linearly; the ``measured`` column says which.  ``growth`` is the ratio of seconds
to the previous size's, divided by the ratio of sizes: about 1 for a linear cost.

Data: probabilities drawn from a miscalibrated model (Gaussian logits times 3,
labels from ``softmax(logits / 2)``; binary: ``p = sigmoid(3 z)``, ``y ~
Bernoulli(sigmoid(1.5 z))``), generated once per size, seeded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, machine, print_table, softmax_probs  # noqa: E402

from calkit.metrics import (  # noqa: E402
    brier_decomposition,
    calibration_refinement,
    consistency_test,
    ece,
    hosmer_lemeshow,
    ks_calibration_error,
    logistic_calibration,
    signed_ece,
    skce,
    skce_test,
    smoothed_calibration_errors,
    spiegelhalter_z,
    t_cal_test,
)

DEFAULT_R = {"consistency_test": 1000, "t_cal_test": 3000}
COLUMNS = ["problem", "N", "statistic", "seconds", "x ece", "growth", "measured"]


def binary_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    p = 1 / (1 + np.exp(-3 * z))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.5 * z))).astype(np.int64)
    return y, p


def multiclass_data(n: int, k: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    p, _ = softmax_probs(n, k, seed)
    z = np.log(np.clip(p.astype(np.float64), 1e-30, None)) / 2   # labels from softmax(z / 2)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > q.cumsum(1)).sum(1).clip(0, k - 1)
    return y, p.astype(np.float64)


def statistics(view: str, resamples: dict) -> dict:
    """Name -> f(y, p): every statistic with its defaults (the view said where needed)."""
    v = dict(view=view)
    return {
        "hosmer_lemeshow": lambda y, p: hosmer_lemeshow(y, p, **v),
        "spiegelhalter_z": lambda y, p: spiegelhalter_z(y, p, **v),
        "signed_ece": lambda y, p: signed_ece(y, p, **v),
        "brier_decomposition": lambda y, p: brier_decomposition(y, p, **v),
        "calibration_refinement": lambda y, p: calibration_refinement(y, p, **v),
        "logistic_calibration": lambda y, p: logistic_calibration(y, p, **v),
        "smoothed_calibration_errors": lambda y, p: smoothed_calibration_errors(y, p, **v),
        "skce (linear)": lambda y, p: skce(y, p, estimator="linear"),
        "skce_test (linear)": lambda y, p: skce_test(y, p, method="linear"),
        "t_cal_test": lambda y, p: t_cal_test(y, p, n_resamples=resamples["t_cal_test"], **v),
        "consistency_test": lambda y, p: consistency_test(
            y, p, n_resamples=resamples["consistency_test"], random_state=0, **v),
        "ks_calibration_error": lambda y, p: ks_calibration_error(y, p, **v),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resample-max-n", type=int, default=100_000)
    ap.add_argument("--few-resamples", type=int, default=100)
    ap.add_argument("--progress", action="store_true", help="print each size's rows at once")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {machine()}")
    import warnings

    warnings.simplefilter("ignore")  # e.g. T-Cal's warning about few resamples
    rows, previous = [], {}
    for problem, make, view in (("binary", binary_data, "positive"),
                                ("top-label, 10 classes", multiclass_data, "top_label")):
        for n in sizes:
            y, p = make(n)
            few = n > args.resample_max_n
            resamples = {k: (args.few_resamples if few else r) for k, r in DEFAULT_R.items()}
            stats = statistics(view, resamples)
            if view == "positive":  # the SKCE takes the (N, 2) form of a binary task
                p2 = np.column_stack([1 - p, p])
                stats["skce (linear)"] = lambda y, p, p2=p2: skce(y, p2, estimator="linear")
                stats["skce_test (linear)"] = lambda y, p, p2=p2: skce_test(y, p2)
            fns = {"ece": lambda: ece(y, p, **({"view": view}))}
            fns.update({name: (lambda f=f: f(y, p)) for name, f in stats.items()})
            repeat = 1 if n >= 1_000_000 else args.repeat
            times = interleaved_medians(fns, repeat=repeat, warmup=0 if n >= 1_000_000 else 1)
            base = times["ece"]
            for name, t in times.items():
                measured = "default"
                key = name
                if key in DEFAULT_R and few:
                    t = t * DEFAULT_R[key] / args.few_resamples
                    measured = f"R={args.few_resamples}, scaled"
                growth = ""
                if (problem, name) in previous:
                    n0, t0 = previous[(problem, name)]
                    growth = f"{(t / t0) / (n / n0):.2f}"
                previous[(problem, name)] = (n, t)
                rows.append(dict(problem=problem, N=f"{n:,}", statistic=name, seconds=t,
                                 **{"x ece": t / base}, growth=growth, measured=measured))
            print(f"  done {problem} N={n:,}", file=sys.stderr, flush=True)
            if args.progress:  # each block's rows as soon as they are measured
                print_table(rows[-len(times):], COLUMNS)
                sys.stdout.flush()
    print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
