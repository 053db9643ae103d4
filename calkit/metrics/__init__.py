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
from calkit.metrics.bootstrap import BootstrapResult, bootstrap
from calkit.metrics.calibration_tests import (
    CalibrationTestResult,
    hosmer_lemeshow,
    spiegelhalter_z,
)
from calkit.metrics.class_conditional import ace, sce, tace
from calkit.metrics.clinical import (
    LogisticCalibration,
    SmoothedCalibrationErrors,
    logistic_calibration,
    smoothed_calibration_errors,
)
from calkit.metrics.consistency import (  # noqa: F401 (ConsistencyTestResult: an alias)
    ConsistencyTestResult,
    consistency_band,
    consistency_test,
)
from calkit.metrics.conventions import convention_error
from calkit.metrics.cumulative import KSCalibrationResult, ks_calibration_error
from calkit.metrics.decompositions import (
    BrierDecomposition,
    CalibrationRefinement,
    SignedCalibrationResult,
    brier_decomposition,
    calibration_refinement,
    signed_ece,
)
from calkit.metrics.grouped import grouped_calibration
from calkit.metrics.kde_ece import (
    KDECalibrationResult,
    KDEECEResult,
    canonical_kde_ece,
    kde_ece,
)
from calkit.metrics.kernel_calibration import skce, skce_test
from calkit.metrics.ood import OODResult, ood_metrics, ood_score
from calkit.metrics.scores import accuracy, brier_score, nll
from calkit.metrics.selective import (
    RiskCoverage,
    accuracy_at_coverage,
    aurc,
    coverage_at_risk,
    eaurc,
    risk_coverage,
)
from calkit.metrics.smooth import SmoothECEResult, smooth_ece
from calkit.metrics.sweep import sweep_ece
from calkit.metrics.tcal import debiased_plugin_ece, t_cal_test

__all__ = [
    "BrierDecomposition",
    "CalibrationRefinement",
    "CalibrationTestResult",
    "SignedCalibrationResult",
    "brier_decomposition",
    "calibration_refinement",
    "hosmer_lemeshow",
    "signed_ece",
    "skce",
    "skce_test",
    "debiased_plugin_ece",
    "t_cal_test",
    "LogisticCalibration",
    "SmoothedCalibrationErrors",
    "logistic_calibration",
    "smoothed_calibration_errors",
    "KSCalibrationResult",
    "ks_calibration_error",
    "spiegelhalter_z",
    "BootstrapResult",
    "CalibrationResult",
    "OODResult",
    "RiskCoverage",
    "SmoothECEResult",
    "accuracy",
    "accuracy_at_coverage",
    "aurc",
    "bootstrap",
    "brier_score",
    "calibration_error",
    "convention_error",
    "coverage_at_risk",
    "debiased_ece",
    "debiased_error_from_table",
    "eaurc",
    "ece",
    "error_from_table",
    "grouped_calibration",
    "nll",
    "ood_metrics",
    "ood_score",
    "risk_coverage",
    "smooth_ece",
    "sweep_ece",
    "consistency_band",
    "consistency_test",
    "KDECalibrationResult",
    "KDEECEResult",
    "canonical_kde_ece",
    "kde_ece",
    "ace",
    "sce",
    "tace",
]

from calkit.metrics.multilabel import (  # noqa: E402
    MultilabelCalibrationResult,
    multilabel_brier,
    multilabel_calibration_error,
    multilabel_ece,
    multilabel_nll,
)

__all__ += ["MultilabelCalibrationResult", "multilabel_brier", "multilabel_calibration_error",
            "multilabel_ece", "multilabel_nll"]
