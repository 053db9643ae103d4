"""Post-hoc calibrators with the scikit-learn estimator API.

Multiclass calibrators take validation **logits** ``(N, K)`` and integer labels in
``fit`` and return calibrated probabilities ``(N, K)`` from ``predict_proba``
(to calibrate probabilities, pass their logarithm).  ``PlattScaling`` and
``BetaCalibration`` take 1-D binary scores (or ``(N, 2)`` logits).  Every
calibrator is ``clone``-able, raises ``NotFittedError`` before ``fit``, accepts
torch tensors (returned as tensors on the same device), and saves to / loads
from a small JSON file (:meth:`BaseCalibrator.save`, :func:`load_calibrator`).
Every calibrator also has ``classes_`` (any labels), ``score`` (negative log-loss),
``sample_weight`` in ``fit``, pandas input, and takes 1-D binary scores where the
method allows (:mod:`calkit.posthoc._sklearn_api`).

==============================  ============================================
class                           method
==============================  ============================================
``TemperatureScaling``          ``softmax(z / T)``; Newton in ``1 / T``
``VectorScaling``               ``softmax(z * w + b)``
``MatrixScaling``               ``softmax(z W^T + b)``, L2 towards identity
``EnsembleTemperatureScaling``  ETS (Zhang et al. 2020)
``SplineCalibration``           top-label splines (Gupta et al. 2021)
``HistogramBinning``            on the binning engine
``IsotonicCalibration``         scikit-learn's isotonic regression
``PlattScaling``                binary ``sigmoid(a s + b)``
``BetaCalibration``             binary beta calibration (Kull et al. 2017)
``DirichletCalibration``        Dirichlet calibration, ODIR (Kull et al. 2019)
``ConsistencyCalibration``      agreement under logit noise (arXiv 2410.12295)
``FeatureClipping``             clip features, re-apply the head (2410.19796)
``CalibratedModel``             classifier + calibrator (prefit or cross-fitted)
``VennAbersCalibration``        Venn-Abers (p0, p1) intervals, IVAP / CVAP
==============================  ============================================
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401  (every calibrator is a scikit-learn estimator)
except ImportError as _exc:
    raise ImportError("calkit.posthoc needs scikit-learn, part of calkit's base install: "
                      "pip install 'scikit-learn>=1.6' (or reinstall calkit)") from _exc

from calkit.posthoc._base import BaseCalibrator, load_calibrator
from calkit.posthoc.binary import BetaCalibration, PlattScaling
from calkit.posthoc.consistency import ConsistencyCalibration
from calkit.posthoc.dirichlet import DirichletCalibration
from calkit.posthoc.ensemble import EnsembleTemperatureScaling
from calkit.posthoc.feature_clipping import FeatureClipping
from calkit.posthoc.histogram import HistogramBinning
from calkit.posthoc.isotonic import IsotonicCalibration
from calkit.posthoc.model import (
    METHODS,
    CalibratedModel,
    CalibrationScorer,
    make_calibration_scorer,
    make_calibrator,
)
from calkit.posthoc.spline import SplineCalibration
from calkit.posthoc.temperature import MatrixScaling, TemperatureScaling, VectorScaling

__all__ = [
    "METHODS",
    "BaseCalibrator",
    "BetaCalibration",
    "CalibratedModel",
    "CalibrationScorer",
    "ConsistencyCalibration",
    "DirichletCalibration",
    "EnsembleTemperatureScaling",
    "FeatureClipping",
    "HistogramBinning",
    "IsotonicCalibration",
    "MatrixScaling",
    "PlattScaling",
    "SplineCalibration",
    "TemperatureScaling",
    "VectorScaling",
    "load_calibrator",
    "make_calibration_scorer",
    "make_calibrator",
]

from calkit.posthoc.scaling_binning import ScalingBinning  # noqa: E402

__all__ += ["ScalingBinning"]

from calkit.posthoc.auto import AutoCalibration  # noqa: E402

__all__ += ["AutoCalibration"]

from calkit.posthoc.multilabel import (  # noqa: E402
    MultilabelCalibration,
    PerLabelIsotonic,
    PerLabelPlatt,
    PerLabelTemperature,
)

__all__ += ["MultilabelCalibration", "PerLabelIsotonic", "PerLabelPlatt", "PerLabelTemperature"]
from calkit.posthoc.venn_abers import VennAbersCalibration, venn_abers_interval  # noqa: E402

__all__ += ["VennAbersCalibration", "venn_abers_interval"]
