"""Real classifier outputs for the benchmarks: CIFAR-10 ResNet-50 (or the bundled example)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calkit import softmax

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR10_RESNET50 = (SHARED_DATA / "cifar10_resnet50_ce_vs_focal"
                    / "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz")


def cifar10_probabilities() -> tuple[np.ndarray, np.ndarray, str]:
    """``(probabilities, labels, source)``: the ResNet-50 CIFAR-10 test outputs of
    ``../shared/data`` when present, else calkit's bundled example."""
    if CIFAR10_RESNET50.exists():
        with np.load(CIFAR10_RESNET50, allow_pickle=False) as d:
            logits, labels = d["logits"], d["labels"]
        source = "CIFAR-10 ResNet-50 test"
    else:
        from calkit.datasets import load_example

        logits, labels = load_example()
        source = "bundled example"
    return softmax(logits.astype(np.float64)), labels, source
