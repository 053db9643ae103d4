"""Calibration metrics: the functional API.

Every function takes ``(y_true, y_prob)`` in scikit-learn's order, validates once
(:mod:`calkit._validation`) and computes from the binning engine
(:mod:`calkit.binning`).
"""

from calkit.metrics.binned import (
    CalibrationResult,
    calibration_error,
    debiased_ece,
    debiased_error_from_table,
    ece,
    error_from_table,
)
from calkit.metrics.scores import accuracy, brier_score, nll
from calkit.metrics.sweep import sweep_ece

__all__ = [
    "CalibrationResult",
    "accuracy",
    "brier_score",
    "calibration_error",
    "debiased_ece",
    "debiased_error_from_table",
    "ece",
    "error_from_table",
    "nll",
    "sweep_ece",
]
