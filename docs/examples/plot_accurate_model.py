"""
An accurate model on the error-rate and logit scales
====================================================

A small CNN trained on MNIST makes about 1% errors on its 10,000 test digits, and most of its
confidences are within 1e-4 of 1.  On a linear confidence axis its reliability diagram is
one bar at the right edge.  Two zoomed scales spread the confidences out:

* ``confidence_scale="-log(1-p)"`` (the error-rate scale): 0.9, 0.99, 0.999 ... equally
  spaced, one decade of *error rate* each.  ``"auto"`` picks it when more than half the
  confidences are above 0.99.
* ``confidence_scale="logit"``: ``log10(p / (1 - p))``, symmetric about 0.5.

Both axes use the same scale, so the diagonal stays straight and a bar's distance below it
is a ratio of error rates.  The accuracy axis stops a decade beyond what the bins can resolve
(a bin of ``n`` samples measures accuracy to ``1/n``); an accuracy of 1 reaches the top.

**What to read.** With 15 equal-mass bins (about 670 digits each) every bin is visible on
the zoomed scales.  Bars below the diagonal are over-confident: predicted error rate smaller
than the observed one.  The count panel shows correct and wrong digits of each bin side by
side: the few errors of the confident bins are visible bars, not slivers.

Real outputs from ``../shared/data/ood_mnist_fashion`` (the MNIST test split); without that
folder, the bundled CIFAR-10 ResNet-50 (95.5% accurate, 96% of its confidences above 0.99).
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
path = DATA / "ood_mnist_fashion" / "cnn_mnist_id_fashion_ood.npz"
if path.exists():
    with np.load(path, allow_pickle=False) as f:
        logits, labels = f["test_logits"].astype(np.float64), f["test_labels"]
    name = "MNIST CNN, 10,000 test digits"
else:
    print(f"{path} is absent: using the bundled CIFAR-10 example")
    logits, labels = load_example()
    name = "CIFAR-10 ResNet-50 (bundled example)"
probs = calkit.softmax(logits)
conf = probs.max(1)
print(f"{name}: accuracy {calkit.accuracy(labels, probs):.4f}, "
      f"{100 * np.mean(conf > 0.99):.1f}% of confidences above 0.99, "
      f"{100 * np.mean(conf > 0.9999):.1f}% above 0.9999")

# %%
# The default: ``"auto"`` chooses the error-rate scale and says so in the title.
display = ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy="quantile",
                                              name=name, interval="wilson")
print("scale drawn:", display.confidence_scale_)
print("equal-mass edges:", np.array2string(display.table.edges, precision=7))

# %%
# The logit scale, which also zooms into the low-confidence tail.
ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy="quantile", name=name,
                                    confidence_scale="logit")

# %%
# For comparison, the linear axis: the bins above 0.99 are narrower than a pixel.
ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy="quantile", name=name,
                                    confidence_scale="linear")
