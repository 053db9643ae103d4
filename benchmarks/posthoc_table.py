"""Post-hoc calibrators on real classifier outputs: the comparison table of the docs.

Run: ``python benchmarks/posthoc_table.py [--data ../shared/data]``; prints Markdown.

Every calibrator is fitted on a validation split and evaluated on a disjoint
test split: top-label ECE (15 equal-width bins, ``(a, b]``), NLL, Brier score
(multiclass sum, in [0, 2]) and accuracy, all from ``calkit.metrics``.  Datasets
that ship probabilities only are turned into logits as ``log(max(p, 1e-12))``
(what the CLI does, ``calkit.cli.PROB_FLOOR``) and split in two halves with a
fixed seed.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from calkit import accuracy, brier_score, ece, nll, softmax
from calkit.cli import PROB_FLOOR
from calkit.posthoc import (
    BetaCalibration,
    DirichletCalibration,
    EnsembleTemperatureScaling,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    PlattScaling,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

METHODS = {
    "TS (NLL, Newton)": TemperatureScaling,
    "TS (grid, 15-bin ECE)": lambda: TemperatureScaling(solver="grid"),
    "ETS (MSE)": EnsembleTemperatureScaling,
    "vector scaling": VectorScaling,
    "matrix scaling": MatrixScaling,
    "spline (top-label)": SplineCalibration,
    "histogram (15 eq.-mass, top-label)": HistogramBinning,
    "isotonic (top-label)": IsotonicCalibration,
    "Dirichlet ODIR (5-fold CV)": lambda: DirichletCalibration(reg_lambda=[1e-4, 1e-3, 1e-2, 1e-1]),
}
BINARY_METHODS = {"Platt": PlattScaling, "beta": BetaCalibration}


def _npz(path: Path, *names: str):
    with np.load(path, allow_pickle=False) as d:
        return tuple(d[n] for n in names)


def _log(p: np.ndarray, floor: float = PROB_FLOOR) -> np.ndarray:
    return np.log(np.clip(p.astype(np.float64), floor, None))


def _halves(z, y, seed=0):
    order = np.random.default_rng(seed).permutation(len(y))
    a, b = order[: len(y) // 2], order[len(y) // 2:]
    return z[a], y[a], z[b], y[b]


def datasets(root: Path, floor: float = PROB_FLOOR):
    """Yield (name, val logits, val labels, test logits, test labels)."""
    cifar = root / "cifar10_resnet50_ce_vs_focal"
    for loss, label in (("cross_entropy", "CIFAR-10 ResNet-50 (CE)"),
                        ("focal_loss", "CIFAR-10 ResNet-50 (focal)")):
        zv, yv = _npz(cifar / f"resnet50_cifar10_{loss}_val_0.1_vanilla.npz", "logits", "labels")
        zt, yt = _npz(cifar / f"resnet50_cifar10_{loss}_test_0.9_vanilla.npz", "logits", "labels")
        yield label + ", val 5k / test 10k", zv, yv, zt, yt
    p, y = _npz(root / "cifar_softmax_netcal" / "densenet-bc-100-cifar-100.npz",
                "predictions", "ground_truth")
    yield "CIFAR-100 DenseNet-BC-100 (probabilities), halves", *_halves(_log(p, floor), y)
    cv = root / "cv_probs_label_errors"
    for name, label in (("20news", "20 Newsgroups (probabilities), halves"),
                        ("imdb", "IMDB, binary (probabilities), halves")):
        p = np.load(cv / f"{name}_test_set_pyx.npy", allow_pickle=False)
        y = np.load(cv / f"{name}_test_set_original_labels.npy", allow_pickle=False)
        yield label, *_halves(_log(p / p.sum(1, keepdims=True), floor), y.astype(np.int64))


def _row(name, y, p, seconds, extra=""):
    return (f"| {name} | {ece(y, p):.4f} | {nll(y, p):.4f} | {brier_score(y, p):.4f} | "
            f"{accuracy(y, p):.4f} | {seconds:.2f} | {extra} |")


#: methods too slow for many classes on 2 cores (cross-validated K x K fits), skipped above this K
SLOW_METHODS, SLOW_MAX_CLASSES = ("Dirichlet ODIR (5-fold CV)",), 10


def table(root: Path):
    """Yield one Markdown table per data set (printed as each one finishes)."""
    for label, zv, yv, zt, yt in datasets(root):
        lines = [f"**{label}** (K = {zv.shape[1]})", "",
                  "| method | ECE | NLL | Brier | accuracy | fit s | fitted |",
                  "|---|---|---|---|---|---|---|",
                  _row("uncalibrated", yt, softmax(zt), 0.0)]
        methods = dict(METHODS, **(BINARY_METHODS if zv.shape[1] == 2 else {}))
        for name, make in methods.items():
            if name in SLOW_METHODS and zv.shape[1] > SLOW_MAX_CLASSES:
                continue
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cal = make().fit(zv, yv)
            seconds = time.perf_counter() - start
            extra = ""
            if hasattr(cal, "temperature_"):
                extra = f"T = {cal.temperature_:.3f}"
            if hasattr(cal, "weights_"):
                extra += f", w = ({', '.join(f'{w:.3f}' for w in cal.weights_)})"
            if caught:
                extra += " (warning: " + str(caught[0].message).split(";")[0][:60] + ")"
            lines.append(_row(name, yt, cal.predict_proba(zt), seconds, extra))
        yield "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    for block in table(args.data):
        print(block, flush=True)


if __name__ == "__main__":
    main()
