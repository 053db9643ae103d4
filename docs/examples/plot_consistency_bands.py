"""
Consistency bands: which bins to trust on a small test set
==========================================================

With few samples a reliability diagram is noisy: a calibrated model's bins scatter around
the diagonal by chance.  *Consistency resampling* (Broecker and Smith 2007; Vaicenavicius et
al. 2019) shows how much: the observed confidences are kept, the outcomes are redrawn as if
the model were calibrated (``y ~ Bernoulli(confidence)``), 1,000 times, and each bin's grey
box spans the central 95% of the resampled accuracies
(:func:`calkit.metrics.consistency_band`).  Bins whose accuracy falls outside their box are
marked with a red cross; the error bars are 95% Wilson intervals on each bin's accuracy.

:func:`calkit.metrics.consistency_test` turns the same resampling into a test of
calibration for a binned (or smooth) ECE: the p-value is the share of calibrated resamples
whose ECE is at least the observed one.

**What to read.** On 300 test images the cross-entropy model's top bin, which holds most
of the images, lies outside its band, and the test rejects calibration (p-value printed
below).  After temperature scaling the ECE halves and no bin lies outside its band; the
test's p-value says whether the ECE that remains is still more than 300 images explain by
chance (on the real data it is, at the 5% level: temperature scaling leaves a small
over-confidence).  Low-confidence bins hold a handful of images: their boxes are tall, so a
big gap there is no evidence of miscalibration.

Real outputs: 300 images of the CIFAR-10 ResNet-50 test set (cross-entropy), temperature
fitted on the validation split (``../shared/data/cifar10_resnet50_ce_vs_focal``); without
them, the bundled example (fitted on 1,000 images, 300 of the others shown).
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.metrics import consistency_test
from calkit.plotting import ReliabilityDisplay
from calkit.posthoc import TemperatureScaling

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
    print(f"{folder} is absent: using the bundled example")
    z, y = load_example()
    val_z, val_y, test_z, test_y = z[:1000].astype(np.float64), y[:1000], z[1000:], y[1000:]

pick = np.random.default_rng(0).choice(len(test_y), 300, replace=False)
z, y = test_z[pick], test_y[pick]
ts = TemperatureScaling().fit(val_z, val_y)
probs = {"cross-entropy": calkit.softmax(z), f"temperature scaled (T = {ts.temperature_:.2f})":
         ts.predict_proba(z)}

for name, p in probs.items():
    r = consistency_test(y, p, n_bins=10, n_resamples=1000, random_state=0)
    print(f"{name:32s} ECE {r.statistic:.4f}  consistency-test p = {r.pvalue:.3f}")

display = ReliabilityDisplay.from_predictions(y, probs, n_bins=10, layout="side_by_side",
                                              consistency_band=True, interval="wilson",
                                              title="300 CIFAR-10 test images")
for name, out in zip(display.names, display.outside_band, strict=True):
    print(f"{name:32s} bins outside their band: {np.flatnonzero(out).tolist()}")
