"""
Temperature scaling on real CIFAR-10, CIFAR-100 and 20 Newsgroups outputs
=========================================================================

Reliability diagrams before and after temperature scaling for three real classifiers, each
fitted on held-out *validation* predictions and drawn on *test* predictions it has not seen:

* **CIFAR-10**, ResNet-50 trained with cross-entropy: fitted on its 5,000-image validation
  split, shown on the 10,000 test images (over-confident: :math:`T > 1`);
* **CIFAR-100**, DenseNet-BC-100 (softmax outputs from the netcal examples): the 10,000 test
  images split at random into two halves;
* **20 Newsgroups**, a text classifier's cross-validated probabilities (strongly
  *under*-confident: :math:`T < 1` sharpens them), split the same way.

Models that ship probabilities only are calibrated on their log-probabilities, which are
logits up to a per-sample constant that the softmax ignores.  Exact zeros need care: in the
20 Newsgroups file, 61 documents have probability exactly 0 for their given label.  Clipped
to the smallest float, that log-probability is about -708, and the NLL that temperature
scaling minimises is dominated by those 61 documents: it drives :math:`T` to its upper
bound, 100, and wrecks the calibration.  Here zeros are raised to the smallest non-zero
probability the model reports (1.75e-6), a floor the data itself justifies.

The outputs come from the project's shared data folder (``../shared/data``, or
``$CALKIT_SHARED_DATA``); where it is absent, the 2,000 CIFAR-10 test logits shipped with
calkit are used, split in two.
"""

import os
from pathlib import Path

import numpy as np

import calkit
from calkit.datasets import load_example
from calkit.plotting import ReliabilityDisplay
from calkit.posthoc import TemperatureScaling

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))


def log_probs(p):
    """Log-probabilities as logits, exact zeros raised to the smallest non-zero probability."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(np.maximum(p, p[p > 0].min()))


def halves(logits, labels, seed=0):
    """A random validation half and the test half of one labelled set."""
    order = np.random.default_rng(seed).permutation(len(labels))
    val, test = order[: len(labels) // 2], order[len(labels) // 2:]
    return logits[val], labels[val], logits[test], labels[test]


def cifar10():
    folder = DATA / "cifar10_resnet50_ce_vs_focal"
    splits = []
    for split in ("val_0.1", "test_0.9"):
        with np.load(folder / f"resnet50_cifar10_cross_entropy_{split}_vanilla.npz",
                     allow_pickle=False) as f:
            splits += [f["logits"], f["labels"]]
    return splits


def cifar100():
    path = DATA / "cifar_softmax_netcal" / "densenet-bc-100-cifar-100.npz"
    with np.load(path, allow_pickle=False) as f:
        return halves(log_probs(f["predictions"]), f["ground_truth"])


def newsgroups():
    folder = DATA / "cv_probs_label_errors"
    probs = np.load(folder / "20news_test_set_pyx.npy", allow_pickle=False)
    labels = np.load(folder / "20news_test_set_original_labels.npy", allow_pickle=False)
    return halves(log_probs(probs), labels.astype(np.int64))


DATASETS = {
    "CIFAR-10, ResNet-50": (cifar10, "cifar10_resnet50_ce_vs_focal"),
    "CIFAR-100, DenseNet-BC-100": (cifar100, "cifar_softmax_netcal"),
    "20 Newsgroups": (newsgroups, "cv_probs_label_errors"),
}
available = {name: load for name, (load, folder) in DATASETS.items() if (DATA / folder).is_dir()}
if not available:
    print(f"{DATA} is absent: using the CIFAR-10 example shipped with calkit")
    available = {"CIFAR-10, ResNet-50 (bundled example)": lambda: halves(*load_example())}

# %%
# Fit, then compare on the test predictions
# ------------------------------------------
# One temperature per model, fitted by minimising the validation NLL.  Accuracy cannot change
# (dividing all logits by the same :math:`T` keeps their order); ECE (15 equal-width bins),
# NLL and Brier score are measured on the test predictions.

rows, diagrams = [], {}
for name, load in available.items():
    val_logits, val_labels, test_logits, test_labels = load()
    ts = TemperatureScaling().fit(val_logits, val_labels)
    before = calkit.softmax(test_logits)
    after = ts.predict_proba(test_logits)
    for stage, p in (("before", before), ("after", after)):
        rows.append((name, stage, ts.temperature_, calkit.accuracy(test_labels, p),
                     calkit.ece(test_labels, p), calkit.nll(test_labels, p),
                     calkit.brier_score(test_labels, p)))
    diagrams[name] = (test_labels, before, after)

print(f"{'model':40s} {'':6s} {'T':>6s} {'acc':>7s} {'ECE':>7s} {'NLL':>7s} {'Brier':>7s}")
for name, stage, t, acc, ece, nll, brier in rows:
    print(f"{name:40s} {stage:6s} {t:6.3f} {acc:7.4f} {ece:7.4f} {nll:7.4f} {brier:7.4f}")

# %%
# Reliability diagrams
# --------------------
# Left: the model as trained; right: after temperature scaling.  Bars below the diagonal
# are over-confident bins, bars above it under-confident ones; the histogram under each
# panel shows how many test predictions fall in each bin.

for name, (labels, before, after) in diagrams.items():
    display = ReliabilityDisplay.from_predictions(
        labels, {"before": before, "temperature scaled": after}, n_bins=15,
        layout="side_by_side")
    display.figure_.suptitle(name)
