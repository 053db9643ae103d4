"""
Out-of-distribution detection: MNIST against Fashion-MNIST
==========================================================

A small CNN trained on MNIST digits sees 10,000 MNIST test digits (in-distribution) and
10,000 Fashion-MNIST images (out-of-distribution).  Each sample gets a score from the
logits, higher meaning "more in-distribution" (:func:`calkit.metrics.ood_score`): the
maximum softmax probability (MSP), the negative predictive entropy, the negative energy and
the maximum logit.  The ROC curve accepts samples above a threshold: the true positive rate
is the share of MNIST digits kept, the false positive rate the share of clothes let through.

The reverse pair (trained on Fashion-MNIST, MNIST as OOD) is harder and is drawn second.

**What to read.** A curve hugging the top-left corner separates the two sets; the legend
gives each score's AUROC and its false positive rate at 95% true positive rate (how many
clothes still pass when 95% of digits are kept).  Scores computed from the logits alone
(energy, maximum logit) can beat the softmax-based ones because the softmax saturates at 1
for most confident inputs, in- or out-of-distribution.

Data: ``../shared/data/ood_mnist_fashion``; this example needs it and draws nothing without.
"""

import os
from pathlib import Path

import numpy as np

from calkit.metrics import ood_score
from calkit.plotting import OODRocDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
folder = DATA / "ood_mnist_fashion"
PAIRS = {"MNIST in, Fashion-MNIST out": "cnn_mnist_id_fashion_ood.npz",
         "Fashion-MNIST in, MNIST out": "cnn_fashion_id_mnist_ood.npz"}

if not folder.is_dir():
    print(f"{folder} is absent: this example needs the OOD outputs and draws nothing")
else:
    for title, file in PAIRS.items():
        with np.load(folder / file, allow_pickle=False) as f:
            z_in, z_out = f["test_logits"].astype(np.float64), f["ood_logits"].astype(np.float64)
        scores = {method: (ood_score(z_in, method), ood_score(z_out, method))
                  for method in ("msp", "entropy", "energy", "max_logit")}
        display = OODRocDisplay.from_scores(scores)
        display.ax_.set_title(title)
        for name, m in zip(display.names, display.metrics, strict=True):
            print(f"{title:28s} {name:10s} AUROC {m.auroc:.4f}  FPR@95TPR {m.fpr_at_tpr:.4f}")
