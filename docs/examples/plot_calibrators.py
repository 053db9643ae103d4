"""
Before and after the main post-hoc calibrators
==============================================

Six calibrators from :mod:`calkit.posthoc`, each fitted on the 5,000 *validation* logits of a
CIFAR-10 ResNet-50 (cross-entropy) and drawn on the 10,000 *test* images it has not seen, in
one grid with shared axes beside the uncalibrated model.

**What to read.** Ten equal-mass bins, so every bar holds a tenth of the test images.  The
uncalibrated model's upper bins lie below the diagonal (over-confident).  Temperature
scaling, vector scaling and ensemble temperature scaling (smooth maps of the logits) bring
them onto the diagonal without changing the accuracy much; histogram binning and isotonic
regression map confidences onto a few values, so their equal-mass bins collapse into fewer,
wider bars.  The panel titles carry each test ECE (15 equal-width bins in the table below).
A calibrator that looks perfect on its own validation data but not here is over-fitting.

Without ``../shared/data`` the 2,000 bundled test logits are split in halves (fit / show).
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay
from calkit.posthoc import (
    EnsembleTemperatureScaling,
    HistogramBinning,
    IsotonicCalibration,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
)

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
folder = DATA / "cifar10_resnet50_ce_vs_focal"
if folder.is_dir():
    split = {}
    for part in ("val_0.1", "test_0.9"):
        with np.load(folder / f"resnet50_cifar10_cross_entropy_{part}_vanilla.npz",
                     allow_pickle=False) as f:
            split[part] = (f["logits"].astype(np.float64), f["labels"])
    (val_z, val_y), (test_z, test_y) = split["val_0.1"], split["test_0.9"]
else:
    print(f"{folder} is absent: using the bundled example, split in halves")
    z, y = load_example()
    order = np.random.default_rng(0).permutation(len(y))
    val_z, val_y = z[order[:1000]].astype(np.float64), y[order[:1000]]
    test_z, test_y = z[order[1000:]].astype(np.float64), y[order[1000:]]

calibrators = {
    "temperature scaling": TemperatureScaling(),
    "vector scaling": VectorScaling(),
    "ensemble temperature": EnsembleTemperatureScaling(),
    "spline (top-label)": SplineCalibration(),
    "histogram binning": HistogramBinning(),
    "isotonic regression": IsotonicCalibration(),
}
probs = {"uncalibrated": calkit.softmax(test_z)}
for name, calibrator in calibrators.items():
    probs[name] = calibrator.fit(val_z, val_y).predict_proba(test_z)

print(f"{'':22s} {'accuracy':>8s} {'ECE':>7s} {'NLL':>7s}")
for name, p in probs.items():
    print(f"{name:22s} {calkit.accuracy(test_y, p):8.4f} {calkit.ece(test_y, p):7.4f} "
          f"{calkit.nll(test_y, p):7.4f}")

ReliabilityDisplay.from_predictions(test_y, probs, layout="grid", ncols=4, n_bins=10,
                                    strategy="quantile",
                                    title="CIFAR-10 ResNet-50, test set")
