"""Shared fixtures: real classifier outputs from ``../shared/data`` (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA device (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def shared_path(*parts: str) -> Path:
    """Path under ``../shared/data``; skips the calling test when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture
def shared_data():
    """The ``shared_path`` helper, as a fixture."""
    return shared_path


@pytest.fixture(scope="session")
def cifar10_ce_test():
    """(logits float32 (10000, 10), labels int64) of a CIFAR-10 ResNet-50 (cross-entropy)."""
    path = shared_path("cifar10_resnet50_ce_vs_focal",
                       "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz")
    with np.load(path, allow_pickle=False) as d:
        return d["logits"], d["labels"]


@pytest.fixture(scope="session")
def netcal_cifar100():
    """(probabilities float32 (10000, 100), labels) of a CIFAR-100 DenseNet."""
    path = shared_path("cifar_softmax_netcal", "densenet-bc-100-cifar-100.npz")
    with np.load(path, allow_pickle=False) as d:
        return d["predictions"], d["ground_truth"]

