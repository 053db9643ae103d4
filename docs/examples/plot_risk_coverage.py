"""
Selective classification: risk against coverage
===============================================

A classifier may abstain on its least confident inputs.  Keeping the fraction ``c`` (the
*coverage*) of most confident test images, the error rate among those kept is the
*selective risk*.  :class:`calkit.plotting.RiskCoverageDisplay` draws this curve for every
threshold, with its area (AURC) and the excess over an oracle that abstains exactly on the
errors (E-AURC).

**What to read.** A curve that stays low until high coverage ranks its errors last: its
confidence orders correct before wrong answers.  The right end (coverage 1) is the plain
error rate, the same for models of equal accuracy; differences to the left are differences
in *ranking*, which calibration alone (e.g. temperature scaling, a monotone map of the
confidence) does not change.  Here the cross-entropy and focal-loss ResNet-50s have nearly
equal accuracy; compare their E-AURC in the legend.

Real outputs from ``../shared/data/cifar10_resnet50_ce_vs_focal``; without them, the bundled
CIFAR-10 model before and after temperature scaling (whose curves coincide: same ranking).
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import RiskCoverageDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
folder = DATA / "cifar10_resnet50_ce_vs_focal"
if folder.is_dir():
    probs = {}
    for name, stem in [("cross-entropy", "cross_entropy"), ("focal loss", "focal_loss")]:
        with np.load(folder / f"resnet50_cifar10_{stem}_test_0.9_vanilla.npz",
                     allow_pickle=False) as f:
            probs[name], labels = calkit.softmax(f["logits"].astype(np.float64)), f["labels"]
else:
    print(f"{folder} is absent: using the bundled example, raw and at T = 2")
    logits, labels = load_example()
    probs = {"raw": calkit.softmax(logits), "T = 2": calkit.softmax(logits / 2.0)}

display = RiskCoverageDisplay.from_predictions(labels, probs)
display.ax_.set_ylim(bottom=0)
for name, r in zip(display.names, display.results, strict=True):
    print(f"{name:14s} error {r.risk[-1]:.4f}  AURC {r.aurc:.5f}  E-AURC {r.eaurc:.5f}")
