"""Spline calibration (Gupta, Rahimi, Ajanthan, Mensink, Sminchisescu & Hartley, ICLR 2021).

With the calibration scores sorted increasingly (``s_1 <= ... <= s_N``, outcomes
``t_i``), the cumulative difference curve ``D_i = (sum_{j<=i} t_j - s_j) / N`` is
plotted against the normalised rank ``tau_i = (i - 1) / (N - 1)``.  A natural
cubic spline with ``n_knots`` uniform knots on ``[0, 1]`` is fitted to it by
least squares (the unknowns are its knot values), and the calibrated score of
calibration point ``i`` is ``D'(tau_i) + s_i`` (the derivative is taken in rank).
New scores are mapped by linear interpolation over the (score, calibrated
score) pairs, constant beyond the end points, then clipped to ``[0, 1]``.

Deviations from the reference code (``recalibrate.py``), both deliberate: the
interpolation is ordinary linear interpolation (the reference swaps the two
weights, returning the left neighbour's value at a node), and tied calibration
scores are merged into one node holding their mean calibrated value (so the
result does not depend on the order of ties; within a tie the cumulative curve
takes the outcomes 0 before 1).  The map need not be monotone.

The method is top-label (``multiclass="top_label"``, the default); the full
probability vector is rebuilt by :func:`calkit.posthoc._score_map.rescale_top_label`.
A 1-D ``X`` is one probability (or confidence) in ``[0, 1]`` per sample.
``sample_weight`` must hold integers (frequency weights): the spline is fitted
to the curve of the samples repeated by their weights.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from calkit.binning import sorted_pairs
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._score_map import _ScoreMapCalibrator


def natural_spline_basis(knots: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and first derivatives at ``x`` of the natural cubic spline basis on ``knots``.

    Column ``j`` is the natural cubic spline through ``(knots, e_j)``, so any
    natural spline on these knots is ``basis @ knot_values``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.spline import natural_spline_basis
    >>> values, slopes = natural_spline_basis(np.linspace(0, 1, 6), np.array([0.0, 0.5]))
    >>> values.sum(axis=1).round(12).tolist(), slopes.sum(axis=1).round(12).tolist()
    ([1.0, 1.0], [0.0, 0.0])
    """
    eye = np.eye(len(knots))
    cs = CubicSpline(knots, eye, bc_type="natural", axis=0)
    return cs(x), cs(x, 1)


def fit_spline_map(scores: np.ndarray, targets: np.ndarray,
                   n_knots: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(sorted unique scores, calibrated scores)`` of the spline recalibration map.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.spline import fit_spline_map
    >>> s = np.linspace(0.05, 0.95, 1000)
    >>> x, v = fit_spline_map(s, (np.arange(1000) % 10 < 10 * s).astype(float))
    >>> float(np.abs(v - x).max()) < 0.05
    True
    """
    # tied scores are ordered by outcome (0 first), so the curve depends on the data only
    s, t = sorted_pairs(np.asarray(scores, dtype=np.float64), np.asarray(targets) > 0.5)
    t = t.astype(np.float64)
    n = len(s)
    diff = np.cumsum(t - s) / n
    tau = np.linspace(0.0, 1.0, n)
    basis, dbasis = natural_spline_basis(np.linspace(0.0, 1.0, n_knots), tau)
    knot_values = np.linalg.lstsq(basis, diff, rcond=None)[0]
    calibrated = dbasis @ knot_values + s
    x, inverse = np.unique(s, return_inverse=True)
    mean = np.bincount(inverse, weights=calibrated) / np.bincount(inverse)
    return x, mean


class SplineCalibration(_ScoreMapCalibrator):
    """Spline calibration of the top-label confidence (Gupta et al., ICLR 2021).

    Parameters
    ----------
    n_knots : int, default=6
        Number of uniform knots of the natural cubic spline (at least 3).
    multiclass : {"top_label", "one_vs_rest"}, default="top_label"
        ``"top_label"`` is the paper's method; ``"one_vs_rest"`` applies the same
        1-D recalibration to every class probability and renormalises.
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
        Sorted unique calibration scores and their calibrated values (before
        clipping), per map.
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
    >>> from calkit.posthoc.spline import SplineCalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(3000, 3)) * 3
    >>> y = np.where(rng.random(3000) < 0.6, z.argmax(1), rng.integers(0, 3, 3000))
    >>> sp = SplineCalibration().fit(z, y)
    >>> sp.predict_proba(z[:3]).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0]
    """

    _fitted_spec = {**_ScoreMapCalibrator._fitted_spec,  # calibrated values before clipping
                    "nodes_y_": ValueSpec("array", shape=("*",))}

    def __init__(self, n_knots: int = 6, multiclass: str = "top_label", floor: float = 1e-12,
                 ts_weight="auto"):
        self.n_knots = n_knots
        self.multiclass = multiclass
        self.floor = floor
        self.ts_weight = ts_weight

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.n_knots, bool) or not isinstance(self.n_knots, int) \
                or self.n_knots < 3:
            raise ValueError(f"n_knots must be an integer >= 3, got {self.n_knots!r}")

    def _fit_map(self, scores, targets, sample_weight=None):
        if sample_weight is not None:  # frequency weights: the samples repeated
            counts = np.round(sample_weight)
            if not np.array_equal(counts, sample_weight):
                raise ValueError("SplineCalibration takes integer sample weights only (the "
                                 "spline is fitted to the curve of the samples repeated by "
                                 "their weights)")
            scores, targets = np.repeat(scores, counts.astype(np.int64)), np.repeat(
                targets, counts.astype(np.int64))
        if len(scores) < 2:
            raise ValueError(f"spline calibration needs at least 2 calibration samples, got "
                             f"{len(scores)} sample")
        return fit_spline_map(scores, targets, self.n_knots)

    def _apply_map(self, x, y, scores):
        return np.interp(scores, x, y)
