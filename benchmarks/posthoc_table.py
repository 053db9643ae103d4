"""Post-hoc calibrators on real classifier outputs: the comparison table of the docs.

Run: ``python benchmarks/posthoc_table.py [--data ../shared/data] [--models NAME ...]
[--methods NAME ...]``; prints Markdown.  To use several processes, run one model each with ``--save
NAME.json`` and print the tables with ``--combine *.json``.

The data are the CIFAR-10/100 test-set softmax outputs of five networks
(``cifar_softmax_netcal``: DenseNet-BC-100, WRN-16-4 and LeNet-5), 10,000 rows
each, turned into logits as ``log(max(p, 1e-12))`` (what the CLI does,
``calkit.cli.PROB_FLOOR``) and split into two halves of 5,000 with a fixed
seed: every calibrator is fitted with its defaults on one half and evaluated on
the other, both ways round (two folds).  Columns: top-label ECE (15
equal-width bins, ``(a, b]``), NLL, Brier score (multiclass sum, in [0, 2]),
accuracy change against the uncalibrated model in points, the smallest
probability given to the true class, the fit's CPU seconds (process time; on an
idle 2-core machine the wall time is at most this), and how many ``fit`` calls
warned.  A per-model table (mean of the two folds) is followed by the medians
over the CIFAR-100 and the CIFAR-10 folds.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from calkit import accuracy, brier_score, ece, nll, softmax
from calkit.cli import PROB_FLOOR
from calkit.posthoc import (
    ConsistencyCalibration,
    DirichletCalibration,
    EnsembleTemperatureScaling,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    ScalingBinning,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
    VennAbersCalibration,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODELS = ("densenet-bc-100-cifar-100", "wideresnet-16-4-cifar-100", "lenet-5-cifar-100",
          "wideresnet-16-4-cifar-10", "lenet-5-cifar-10")

METHODS = {
    "TS": TemperatureScaling,
    "ETS (NLL, default)": EnsembleTemperatureScaling,
    "ETS (MSE, reference)": lambda: EnsembleTemperatureScaling(loss="mse"),
    "vector scaling": VectorScaling,
    "matrix scaling": MatrixScaling,
    "Dirichlet ODIR (CV)": DirichletCalibration,
    "consistency": ConsistencyCalibration,
    "spline (top-label)": SplineCalibration,
    "histogram (top-label)": HistogramBinning,
    "isotonic (top-label)": IsotonicCalibration,
    "scaling-binning (top-label)": ScalingBinning,
    "Venn-Abers (one-vs-rest)": VennAbersCalibration,
}
COLUMNS = ("ECE", "NLL", "Brier", "acc. change (pts)", "min p(true)", "fit CPU s", "warned")


def folds(root: Path, model: str, floor: float = PROB_FLOOR):
    """The two (fit logits, fit labels, test logits, test labels) folds of one model."""
    with np.load(root / "cifar_softmax_netcal" / f"{model}.npz", allow_pickle=False) as d:
        p, y = d["predictions"].astype(np.float64), d["ground_truth"].astype(np.int64)
    z = np.log(np.clip(p, floor, None))
    order = np.random.default_rng(0).permutation(len(y))
    a, b = order[: len(y) // 2], order[len(y) // 2:]
    yield z[a], y[a], z[b], y[b]
    yield z[b], y[b], z[a], y[a]


def _metrics(y, p, p_uncal):
    return (ece(y, p), nll(y, p), brier_score(y, p),
            100 * (accuracy(y, p) - accuracy(y, p_uncal)), float(p[np.arange(len(y)), y].min()))


def evaluate(root: Path, models=MODELS, methods=tuple(METHODS)):
    """``{model: {method: [row per fold]}}``, each row the ``COLUMNS`` values."""
    results = {}
    for model in models:
        results[model] = rows = {name: [] for name in ("uncalibrated", *methods)}
        for zv, yv, zt, yt in folds(root, model):
            p0 = softmax(zt)
            rows["uncalibrated"].append((*_metrics(yt, p0, p0), 0.0, 0))
            for name in methods:
                make = METHODS[name]
                start = time.process_time()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    cal = make().fit(zv, yv)
                seconds = time.process_time() - start
                rows[name].append((*_metrics(yt, cal.predict_proba(zt), p0), seconds,
                                   int(bool(caught))))
            print(f"<!-- {model}: fold {len(rows['uncalibrated'])} done -->", flush=True)
    return results


def _fmt(values) -> list[str]:
    e, n, b, acc, pmin, sec, warned = values
    return [f"{e:.4f}", f"{n:.4f}", f"{b:.4f}", f"{acc:+.2f}", f"{pmin:.1e}", f"{sec:.2f}",
            f"{int(warned)}"]


def markdown(results) -> str:
    head = "| method | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS)
    blocks = []
    for model, rows in results.items():
        lines = [f"**{model}** (mean of 2 folds; warned: folds with a warning)", "", head]
        for name, folds_ in rows.items():
            mean = np.mean(np.array(folds_, dtype=np.float64), axis=0)
            mean[4] = min(r[4] for r in folds_)  # smallest true-class probability: the minimum
            mean[6] = sum(r[6] for r in folds_)
            lines.append(f"| {name} | " + " | ".join(_fmt(mean)) + " |")
        blocks.append("\n".join(lines))
    for tag in ("cifar-100", "cifar-10"):
        group = [rows for model, rows in results.items() if model.endswith(tag)]
        if not group:
            continue
        n_folds = sum(len(rows["uncalibrated"]) for rows in group)
        lines = [f"**Medians over the {n_folds} {tag.upper()} folds** (min p(true): minimum; "
                 "warned: count)", "", head]
        for name in group[0]:
            allrows = np.array([r for rows in group for r in rows[name]], dtype=np.float64)
            med = np.median(allrows, axis=0)
            med[4], med[6] = allrows[:, 4].min(), allrows[:, 6].sum()
            lines.append(f"| {name} | " + " | ".join(_fmt(med)) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS),
                        help="only these calibrators (default: all)")
    parser.add_argument("--save", type=Path, help="also write the raw results as JSON")
    parser.add_argument("--combine", type=Path, nargs="*",
                        help="print the tables of saved results instead of running")
    args = parser.parse_args(argv)
    if args.combine:
        results = {}
        for path in args.combine:
            results.update(json.loads(path.read_text()))
        results = {m: results[m] for m in MODELS if m in results}
    else:
        results = evaluate(args.data, args.models, args.methods)
        if args.save:
            args.save.write_text(json.dumps(results))
    print(markdown(results), flush=True)


if __name__ == "__main__":
    main()
