"""
Reliability diagram of a CIFAR-10 ResNet-50
===========================================

The 2,000 test logits shipped with calkit (a ResNet-50 trained with cross-entropy on
CIFAR-10). Equal-width bins show where the confidence lies; equal-mass bins give every bar
the same number of samples, so the rarely used low-confidence region is summarised by fewer,
better estimated bars.
"""

import matplotlib.pyplot as plt

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay

logits, labels = load_example()
probs = calkit.softmax(logits)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, strategy in zip(axes, ("uniform", "quantile"), strict=True):
    ReliabilityDisplay.from_predictions(labels, probs, n_bins=15, strategy=strategy,
                                        name="ResNet-50", ax=ax)
    ax.set_title(f"15 {strategy} bins")
fig.tight_layout()

# %%
# The numbers behind the two panels: the same model, two binnings.
for strategy in ("uniform", "quantile"):
    print(calkit.calibration_error(labels, probs, n_bins=15, strategy=strategy).describe())
