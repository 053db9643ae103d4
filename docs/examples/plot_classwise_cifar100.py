"""
Class-wise reliability on CIFAR-100
===================================

A model can be calibrated on its top-label confidence and still mis-state the probability
of particular classes.  ``ReliabilityDisplay.from_classwise`` draws one panel per class,
``p[:, k]`` against ``y == k`` (class-wise or marginal calibration, Kull et al. 2019): all
classes as small multiples when there are at most 20, otherwise the classes of largest
class-wise ECE, worst first.

**What to read.** Each panel is a binary reliability diagram for one class: bars below the
diagonal mean the model gives that class more probability than it deserves.  The count
panels show how few predictions reach high probability for any single class (most of the
mass is near 0, on a log count axis): the upper bins of each class rest on a few dozen
images, so a wide gap there is less certain than it looks; the lowest bin holds most of
the data and is well calibrated for every class.

Real softmax outputs of a DenseNet-BC-100 on the 10,000 CIFAR-100 test images (from the netcal
examples, ``../shared/data/cifar_softmax_netcal``); without them, the 10 classes of the bundled
CIFAR-10 example.
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
path = DATA / "cifar_softmax_netcal" / "densenet-bc-100-cifar-100.npz"
if path.exists():
    with np.load(path, allow_pickle=False) as f:
        probs, labels = f["predictions"].astype(np.float64), f["ground_truth"]
    probs /= probs.sum(1, keepdims=True)  # float32 softmax rows, re-normalised in float64
    title = "CIFAR-100 DenseNet-BC-100"
else:
    print(f"{path} is absent: using the bundled CIFAR-10 example")
    logits, labels = load_example()
    probs = calkit.softmax(logits)
    title = "CIFAR-10 ResNet-50 (bundled example)"

top = calkit.ece(labels, probs)
classwise = calkit.calibration_error(labels, probs, view="classwise", n_bins=10)
print(f"{title}: top-label ECE {top:.4f}, class-wise ECE {float(classwise):.4f} "
      f"(mean over {probs.shape[1]} classes)")

display = ReliabilityDisplay.from_classwise(labels, probs, n_bins=10)
display.figure_.suptitle(f"{title}: {display.figure_._suptitle.get_text()}",
                         fontsize="medium")
print("classes drawn:", display.classes_)
