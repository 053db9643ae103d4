"""
Cross-entropy against focal loss: two ResNet-50s on CIFAR-10
============================================================

The same architecture trained twice on CIFAR-10, with cross-entropy and with focal loss
(Mukhoti et al. 2020), evaluated on the 10,000 test images.  Each panel has its own count
panel and its smooth reliability curve (smooth ECE, Blasiok and Nakkiran 2023); the error
bars are 95% Wilson intervals on each bin's accuracy, so a bar whose interval misses the
diagonal is over- or under-confident beyond what its sample size explains.

**What to read.** The cross-entropy model is over-confident: its top bin (most of the test
set) lies below the diagonal with a tight interval.  Focal loss lowers the confidences, so
its top bar sits close to the diagonal and both the binned and smooth ECE drop.  Both panels
share their axes and the zoomed error-rate scale (most confidences are above 0.99).

Real outputs from ``../shared/data/cifar10_resnet50_ce_vs_focal``; without that folder only
the cross-entropy model shipped with calkit is drawn.
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
folder = DATA / "cifar10_resnet50_ce_vs_focal"
if folder.is_dir():
    probs = {}
    for name, stem in [("cross-entropy", "cross_entropy"), ("focal loss", "focal_loss")]:
        with np.load(folder / f"resnet50_cifar10_{stem}_test_0.9_vanilla.npz",
                     allow_pickle=False) as f:
            probs[name], labels = calkit.softmax(f["logits"]), f["labels"]
else:
    print(f"{folder} is absent: only the bundled cross-entropy model is shown")
    logits, labels = load_example()
    probs = {"cross-entropy (bundled example)": calkit.softmax(logits)}

display = ReliabilityDisplay.from_predictions(labels, probs, layout="side_by_side", smooth=True,
                                              interval="wilson")
for name, p in probs.items():
    print(f"{name:32s} accuracy {calkit.accuracy(labels, p):.4f}  "
          f"ECE {calkit.ece(labels, p):.4f}  NLL {calkit.nll(labels, p):.4f}")
