"""
Reliability diagram of a CIFAR-10 ResNet-50
===========================================

The 2,000 test logits shipped with calkit (a ResNet-50 trained with cross-entropy on
CIFAR-10).  Equal-width bins show where the confidence lies; equal-mass bins give every bar
the same number of samples.

This model is accurate: 96% of its confidences are above 0.99, so on a linear axis the 14
upper equal-mass bins (edges 0.9994 ... 1) would be one sliver at the right edge.  calkit
switches to the *error-rate* scale ``-log10(1 - p)`` by itself (``confidence_scale="auto"``)
and says so in the title: 0.9, 0.99, 0.999 are equally spaced, one decade of error rate each.

**What to read.** Bars below the diagonal are over-confident bins; the shaded gap runs from a
bin's accuracy to its mean confidence.  In the equal-mass panel every bin is visible: the
bins at confidence 0.99999 have accuracy 0.99, i.e. a predicted error rate of 1e-5 against an
observed one of about 1e-2.  The count panels under each diagram show correct and wrong
predictions side by side, so the 67 wrong answers in the top equal-width bin are a bar of
their own, not a sliver on top of 1,882 correct ones.
"""

import matplotlib.pyplot as plt

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay

logits, labels = load_example()
probs = calkit.softmax(logits)

for strategy in ("uniform", "quantile"):
    display = ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy=strategy,
                                                  name="ResNet-50")
    print(f"{strategy}: drawn on the {display.confidence_scale_} scale")

# %%
# The numbers behind the two panels: the same model, two binnings.
for strategy in ("uniform", "quantile"):
    print(calkit.calibration_error(labels, probs, n_bins=15, strategy=strategy).describe())

# %%
# The same equal-mass diagram on a linear axis, for comparison: 14 bars crowd into the last
# 0.06% of the axis.
ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy="quantile",
                                    name="ResNet-50", confidence_scale="linear")
plt.show()
