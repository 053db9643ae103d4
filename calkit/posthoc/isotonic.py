"""Isotonic regression calibration (Zadrozny & Elkan 2002), on scikit-learn's solver.

scikit-learn's ``IsotonicRegression`` (increasing, outputs in ``[0, 1]``) fits
a non-decreasing step map from scores to outcomes; new scores are mapped by
linear interpolation between its thresholds and clipped to the range seen in
``fit`` (``out_of_bounds="clip"``), exactly as ``IsotonicRegression.predict``.
Multiclass logits are reduced as described in :mod:`calkit.posthoc._score_map`.
A 1-D ``X`` is one real-valued score per sample (a probability, a confidence, a
logit or a decision value: isotonic regression only uses their order), and the
output is the calibrated probability of the positive class, as scikit-learn's
``CalibratedClassifierCV(method="isotonic")`` does on a binary decision function.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression

from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._score_map import _ScoreMapCalibrator


class IsotonicCalibration(_ScoreMapCalibrator):
    """Isotonic-regression calibration of top-label or one-vs-rest scores.

    Parameters
    ----------
    multiclass : {"top_label", "one_vs_rest"}, default="top_label"
        How ``(N, K)`` logits are reduced to scores (see
        :mod:`calkit.posthoc._score_map`); unused for 1-D scores.
    floor : float, default=1e-12
        Least probability given to any class (in ``[0, 1/K)``; see
        :mod:`calkit.posthoc._score_map`).
    ts_weight : float or "auto", default="auto"
        Weight ``a`` of temperature scaling in the output, ``(1 - a) map + a
        softmax(X / T)`` (both floored; (N, K) logits only).  ``"auto"`` chooses
        it by 5-fold out-of-fold NLL (:mod:`calkit.posthoc._score_map`), so the
        output's cross-validated log-loss is never above the input's; ``0`` is
        the map alone (the published estimator).

    Attributes
    ----------
    nodes_x_, nodes_y_, offsets_ : ndarray
        The isotonic thresholds (``X_thresholds_``, ``y_thresholds_``) of each map.
    n_classes_ : int
    ts_weight_ : float
        The weight ``a`` used (0 for 1-D scores).
    temperature_ : float
        Temperature ``T`` of the mixed-in softmax (1.0 when ``ts_weight=0``).
    cv_nll_ : dict
        Out-of-fold NLL of the ``"map"``, of temperature scaling on the fitting
        data (``"reference"``) and of the chosen ``"mixture"`` behind
        ``ts_weight="auto"`` (empty otherwise).
    accuracy_change_ : float
        Accuracy change on the fitting data (0 for ``"top_label"``, which never
        changes the predicted class; one-vs-rest may).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.isotonic import IsotonicCalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 3
    >>> y = np.where(rng.random(2000) < 0.6, z.argmax(1), rng.integers(0, 3, 2000))
    >>> iso = IsotonicCalibration().fit(z, y)
    >>> bool(np.all(np.diff(iso.nodes_y_) >= 0))
    True

    1-D binary scores, e.g. an LLM's confidences with whether each answer was right:

    >>> conf = rng.uniform(0.3, 1.0, 1000)
    >>> right = (rng.uniform(size=1000) < conf ** 2).astype(int)   # over-confident
    >>> iso1 = IsotonicCalibration().fit(conf, right)
    >>> iso1.predict_proba(np.array([0.5, 0.95])).round(2).tolist()
    [0.21, 0.88]
    """

    _score_range = "real"
    _fitted_spec = {**_ScoreMapCalibrator._fitted_spec,  # 1-D real-valued scores as nodes
                    "nodes_x_": ValueSpec("array", shape=("*",))}

    def __init__(self, multiclass: str = "top_label", floor: float = 1e-12,
                 ts_weight="auto"):
        self.multiclass = multiclass
        self.floor = floor
        self.ts_weight = ts_weight

    def _fit_map(self, scores, targets, sample_weight=None):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True,
                                 out_of_bounds="clip").fit(scores, targets, sample_weight)
        return iso.X_thresholds_, iso.y_thresholds_

    def _apply_map(self, x, y, scores):
        return np.interp(scores, x, y)
