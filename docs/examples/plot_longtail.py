"""
Label shift: a long-tailed training set, a balanced test set
============================================================

A ResNet trained on CIFAR-10-LT sees 5,000 images of its most frequent class and 50 of its
rarest (imbalance ratio 100); its validation split is long-tailed like the training data,
its test set balanced (1,000 images per class).  Calibration measured, or fitted, on the
long-tailed validation split does not transfer to the balanced test set: the class
frequencies (the prior) have shifted.

Left: the validation split; middle: the test set; right: the test set after temperature
scaling fitted on the validation split.  Then one panel per class of the temperature-scaled
test predictions.

**What to read.** The model is over-confident on both splits (bars below the diagonal), more
so on the balanced test set, where the tail classes it predicts worst weigh as much as the
head ones.  One temperature fitted on the long-tailed validation split removes most of the
top-label gap on the test set, but not the shift itself: in the class-wise panels the head
classes (the most validation images, in the panel titles) still get more probability than
they deserve on balanced data (bars under the diagonal) and the tail classes less (bars
above it).  Fixing that needs a per-class correction (a prior shift), which a single
temperature cannot make.

Real outputs from ``../shared/data/cifar10_longtail``; without them, the label shift is
simulated on the bundled CIFAR-10 test logits by subsampling classes with a long-tailed
profile for the "validation" half (the images stay real).
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay
from calkit.posthoc import TemperatureScaling

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
folder = DATA / "cifar10_longtail"


def split(name):
    z = np.load(folder / f"cifar10_{name}_z.npy", allow_pickle=False)[0].astype(np.float64)
    y = np.load(folder / f"cifar10_{name}_label.npy", allow_pickle=False)[0].astype(np.int64)
    return z, y


if folder.is_dir():
    (val_z, val_y), (test_z, test_y) = split("val"), split("test")
else:
    print(f"{folder} is absent: simulating a long-tailed validation half from the example")
    z, y = load_example()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    first, second = order[:1000], order[1000:]
    keep_share = 0.01 ** (np.arange(10) / 9)  # class k kept with probability 100^(-k/9)
    first = first[rng.uniform(size=len(first)) < keep_share[y[first]]]
    val_z, val_y, test_z, test_y = z[first], y[first], z[second], y[second]

print("validation images per class:", np.bincount(val_y, minlength=10).tolist())
print("test images per class:      ", np.bincount(test_y, minlength=10).tolist())
ts = TemperatureScaling().fit(val_z, val_y)
probs_val, probs_test = calkit.softmax(val_z), calkit.softmax(test_z)
after = ts.predict_proba(test_z)
for name, (y, p) in {"validation (long-tailed)": (val_y, probs_val),
                     "test (balanced)": (test_y, probs_test),
                     f"test, temperature {ts.temperature_:.2f}": (test_y, after)}.items():
    print(f"{name:28s} accuracy {calkit.accuracy(y, p):.4f}  ECE {calkit.ece(y, p):.4f}")

# %%
# The three diagrams, from the calibration results of each split (one panel each, shared
# axes), with 95% Wilson intervals per bin.
results = {
    "validation (long-tailed)": calkit.calibration_error(val_y, probs_val, n_bins=10),
    "test (balanced)": calkit.calibration_error(test_y, probs_test, n_bins=10),
    f"test, temperature scaled (T = {ts.temperature_:.2f}, fitted on validation)":
        calkit.calibration_error(test_y, after, n_bins=10),
}
ReliabilityDisplay.from_result(results, layout="side_by_side", interval="wilson",
                               confidence_scale="linear")

# %%
# One panel per class of the temperature-scaled test predictions, head classes first.
counts = np.bincount(val_y, minlength=10)
ReliabilityDisplay.from_classwise(test_y, after, n_bins=10, ncols=5,
                                  class_names=[f"class {k} ({n} validation images)"
                                               for k, n in enumerate(counts)])
