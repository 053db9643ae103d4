"""calkit: measure and fix the calibration of classifiers.

Metrics work with numpy and scipy alone; torch tensors are accepted wherever
arrays are (torch is an optional extra), and plotting needs matplotlib.
"""

from calkit.binning import BinTable, assign_bins, bin_table, quantile_edges, uniform_edges
from calkit.logits import log_softmax, softmax
from calkit.metrics import (
    CalibrationResult,
    accuracy,
    bootstrap,
    brier_score,
    calibration_error,
    convention_error,
    debiased_ece,
    ece,
    grouped_calibration,
    nll,
    smooth_ece,
    sweep_ece,
)
from calkit.stream import CalibrationAccumulator

__version__ = "0.1.0"

# Subpackages with optional dependencies (torch, matplotlib, scikit-learn) load on first use,
# so ``import calkit`` needs numpy and scipy only.
_LAZY_SUBMODULES = ("posthoc", "training", "plotting", "stream", "distributed", "chunked", "io",
                    "cli", "report", "datasets", "binning", "metrics", "logits")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"calkit.{name}")
    raise AttributeError(f"module 'calkit' has no attribute {name!r}")

__all__ = [
    "BinTable",
    "CalibrationAccumulator",
    "CalibrationResult",
    "accuracy",
    "assign_bins",
    "bin_table",
    "bootstrap",
    "brier_score",
    "calibration_error",
    "convention_error",
    "debiased_ece",
    "ece",
    "grouped_calibration",
    "log_softmax",
    "nll",
    "quantile_edges",
    "smooth_ece",
    "softmax",
    "sweep_ece",
    "uniform_edges",
]
