"""Clinical calibration measures: logistic recalibration and smoothed-curve errors.

* :func:`logistic_calibration`: calibration intercept and slope (Cox 1958):
  the logistic regression ``logit P(y = 1) = a + b logit(p)``, with standard
  errors, and calibration-in-the-large (the intercept with the slope fixed at
  1, ``y ~ offset(logit p)``).  A calibrated model has ``a = 0, b = 1``;
  ``b < 1`` means predictions are too extreme (over-fitting).
* :func:`smoothed_calibration_errors`: ICI, E50, E90 and Emax of Austin and
  Steyerberg (2019): absolute differences between the predictions and a loess
  calibration curve (local quadratic regression of ``y`` on ``p`` with span
  0.75 and tricube weights, R ``loess``'s defaults), evaluated at every
  prediction.

Both take one (score, 0/1 target) pair per sample through a view
(``"positive"`` for binary tasks, ``"top_label"`` for confidences).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, logit

from calkit.metrics.calibration_tests import _pairs

_MAX_ITER = 100
_LOESS_BLOCK = 1 << 22  # window entries per block of evaluation points
#: above this many samples the loess curve is evaluated on a grid and interpolated
LOESS_DIRECT_MAX = 2_000
_LOESS_GRID = 400


@dataclass(frozen=True)
class LogisticCalibration:
    """Calibration intercept and slope of a logistic recalibration.

    Attributes
    ----------
    intercept, slope : float
        ``a`` and ``b`` of ``logit P(y = 1) = a + b logit(p)`` fitted jointly.
    intercept_se, slope_se : float
        Their standard errors (inverse Fisher information).
    citl, citl_se : float
        Calibration-in-the-large: the intercept of ``y ~ offset(logit p)``.
    settings : dict
        ``view``, ``n_samples`` and ``n_dropped`` (predictions of exactly 0 or 1,
        left out of the fits as R ``rms::val.prob`` does).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import logistic_calibration
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 4000)
    >>> y = (rng.uniform(size=4000) < p).astype(int)
    >>> r = logistic_calibration(y, p)
    >>> abs(r.intercept) < 3 * r.intercept_se, abs(r.slope - 1) < 3 * r.slope_se
    (True, True)
    """

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    citl: float
    citl_se: float
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict of the estimates and settings."""
        names = ("intercept", "slope", "intercept_se", "slope_se", "citl", "citl_se")
        out = {k: getattr(self, k) for k in names}
        out["settings"] = dict(self.settings)
        return out


def _newton_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> tuple:
    """ML ``beta`` of ``y ~ Bernoulli(expit(x @ beta + offset))`` and its covariance."""
    beta = np.zeros(x.shape[1])
    for _ in range(_MAX_ITER):
        mu = expit(x @ beta + offset)
        w = mu * (1.0 - mu)
        info = x.T @ (x * w[:, None])
        try:
            step = np.linalg.solve(info, x.T @ (y - mu))
        except np.linalg.LinAlgError:
            raise ValueError("the logistic recalibration is singular (all predictions equal, "
                             "or the outcomes are separated)") from None
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            break
        if np.max(np.abs(step)) < 1e-10:
            return beta, np.linalg.inv(info)
    raise ValueError("the logistic recalibration did not converge (the outcomes are perfectly "
                     "separated by the predictions?)")


def logistic_calibration(y_true, y_prob, *, view: str = "positive",
                         sum_tol: float | None = None) -> LogisticCalibration:
    """Calibration intercept and slope (Cox 1958), and calibration-in-the-large.

    Fits by Newton's method in float64.  Predictions of exactly 0 or 1 have no
    finite logit and are left out of the fits (with a warning), as in R
    ``rms::val.prob``; their number is recorded in ``settings["n_dropped"]``.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    view : {"positive", "top_label"}, default="positive"
        Which (score, target) pairs are recalibrated.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    LogisticCalibration

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import logistic_calibration
    >>> p = (2 * np.arange(1, 21) - 1) / 40
    >>> y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    >>> round(logistic_calibration(y, p).slope, 6)      # rms::val.prob: 0.7957421
    0.795742
    """
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    inside = (scores > 0) & (scores < 1)
    dropped = int(scores.shape[0] - inside.sum())
    if dropped:
        warnings.warn(f"{dropped} predictions of exactly 0 or 1 have no finite logit and are "
                      "left out of the logistic recalibration", stacklevel=2)
    lp, y = logit(scores[inside]), targets[inside]
    if y.shape[0] < 3:
        raise ValueError("the logistic recalibration needs at least 3 predictions strictly "
                         "between 0 and 1")
    joint, cov = _newton_logistic(np.column_stack([np.ones_like(lp), lp]), y, np.zeros_like(lp))
    citl, citl_cov = _newton_logistic(np.ones((lp.shape[0], 1)), y, lp)
    settings = dict(view=view, n_samples=int(scores.shape[0]), n_dropped=dropped,
                    fit="maximum likelihood (Newton), float64")
    return LogisticCalibration(float(joint[0]), float(joint[1]), math.sqrt(cov[0, 0]),
                               math.sqrt(cov[1, 1]), float(citl[0]),
                               math.sqrt(citl_cov[0, 0]), settings)


@dataclass(frozen=True)
class SmoothedCalibrationErrors:
    """Errors of the predictions against a loess calibration curve.

    Attributes
    ----------
    ici : float
        Integrated calibration index: ``mean |p_i - curve(p_i)|``.
    e50, e90 : float
        Median and 90th percentile (type 7) of ``|p_i - curve(p_i)|``.
    emax : float
        Their maximum.
    curve : ndarray of shape (N,)
        The smoothed calibration curve at each prediction (sample order).
    settings : dict
        ``span``, ``degree``, ``surface`` ("direct" or "interpolate"), ``view``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import smoothed_calibration_errors
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> r = smoothed_calibration_errors((rng.uniform(size=1000) < p ** 2).astype(int), p)
    >>> r.ici > 0.1, r.e50 <= r.e90 <= r.emax
    (True, True)
    """

    ici: float
    e50: float
    e90: float
    emax: float
    curve: np.ndarray
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict of the four errors and the settings (without the curve)."""
        out = {k: getattr(self, k) for k in ("ici", "e50", "e90", "emax")}
        out["settings"] = dict(self.settings)
        return out


def _loess_at(x_sorted: np.ndarray, y_sorted: np.ndarray, at: np.ndarray, q: int) -> np.ndarray:
    """Local quadratic fit with tricube weights on the ``q`` nearest ``x`` of each point."""
    out = np.empty(at.shape[0])
    step = max(1, _LOESS_BLOCK // q)
    offsets = np.arange(q)
    for start in range(0, at.shape[0], step):
        x0 = at[start:start + step]
        lo = _nearest_window(x_sorted, x0, q)
        win = lo[:, None] + offsets[None, :]
        xw, yw = x_sorted[win] - x0[:, None], y_sorted[win]
        dist = np.abs(xw)
        dmax = dist[:, [0, -1]].max(1, keepdims=True)           # the window's farthest end
        dmax = np.where(dmax > 0, dmax, 1.0)
        dist /= dmax
        w = 1.0 - dist * dist * dist
        np.clip(w, 0.0, None, out=w)
        w *= w * w
        m, r = [], []
        wy = w * yw
        for k in range(5):                      # weighted sums of x^k and y x^k, in place
            m.append(w.sum(1))
            if k < 3:
                r.append(wy.sum(1))
                wy *= xw
            w *= xw
        a = np.stack([np.stack([m[0], m[1], m[2]], -1), np.stack([m[1], m[2], m[3]], -1),
                      np.stack([m[2], m[3], m[4]], -1)], 1)
        b = np.stack(r, -1)
        out[start:start + step] = _solve_intercepts(a, b, m, r)
    return out


def _nearest_window(x_sorted: np.ndarray, x0: np.ndarray, q: int) -> np.ndarray:
    """Start ``lo`` of the window ``[lo, lo + q)`` of the ``q`` sorted ``x`` nearest to each ``x0``.

    The window should move right while its right neighbour is nearer than its
    left end, ``x0 - x[lo] > x[lo + q] - x0``; that predicate falls from true to
    false as ``lo`` grows, so a vectorised binary search finds the first ``lo``
    where it is false.
    """
    n = x_sorted.shape[0]
    lo = np.zeros(x0.shape[0], dtype=np.int64)
    hi = np.full(x0.shape[0], n - q, dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        move = (x0 - x_sorted[mid]) > (x_sorted[np.minimum(mid + q, n - 1)] - x0)
        lo = np.where(move & (lo < hi), mid + 1, lo)
        hi = np.where(~move & (lo < hi), mid, hi)
    return lo


def _solve_intercepts(a, b, m, r):
    """Intercepts of the weighted quadratic fits; a linear (then constant) fit where singular."""
    det = np.linalg.det(a)
    scale = np.abs(a).max((1, 2)) ** 3
    ok = np.abs(det) > 1e-12 * np.where(scale > 0, scale, 1.0)
    out = np.empty(a.shape[0])
    if ok.any():
        out[ok] = np.linalg.solve(a[ok], b[ok][..., None])[:, 0, 0]
    bad = ~ok
    if bad.any():
        den = m[0][bad] * m[2][bad] - m[1][bad] ** 2
        lin = den > 1e-12 * np.maximum(m[0][bad] * m[2][bad], 1e-300)
        const = r[0][bad] / m[0][bad]
        safe = np.where(lin, den, 1.0)
        out[bad] = np.where(lin, (r[0][bad] * m[2][bad] - r[1][bad] * m[1][bad]) / safe, const)
    return out


def smoothed_calibration_errors(y_true, y_prob, *, span: float = 0.75, view: str = "positive",
                                max_fit_samples: int | None = None,
                                sum_tol: float | None = None) -> SmoothedCalibrationErrors:
    """ICI, E50, E90 and Emax (Austin and Steyerberg 2019) from a loess calibration curve.

    The curve is R's ``loess(y ~ p, span=span, degree=2)`` without robustness
    iterations: at each point, a weighted quadratic regression on the
    ``floor(N span)`` nearest predictions with tricube weights.  Up to 2,000
    samples it is evaluated at every prediction (R's ``surface="direct"``);
    above, at 400 quantiles of the predictions and interpolated linearly
    (recorded as ``surface="interpolate"``), so the cost is O(400 N span)
    rather than O(N^2 span).  R's default ``surface="interpolate"`` uses a k-d tree with
    cubic blending, so its numbers differ slightly from both.

    The cost is about ``400 span N`` weighted sums (about 30 s at a million
    samples on a 2-core machine, some 200 times the ECE);
    ``max_fit_samples`` bounds it: the curve is then fitted on every ``k``-th
    sample in the order of the scores, ``k = ceil(N / max_fit_samples)`` (a
    systematic sample that keeps the distribution of the scores; no seed), and
    the errors are still averaged over all ``N`` predictions.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    span : float, default=0.75
        Share of the samples in each local fit, in (0, 1].
    view : {"positive", "top_label"}, default="positive"
        Which (score, target) pairs are smoothed.
    max_fit_samples : int, optional
        Fit the curve on at most this many samples (see above); default: all.
        Recorded in the settings with ``fit_samples``, the number used.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    SmoothedCalibrationErrors

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import smoothed_calibration_errors
    >>> p = (2 * np.arange(1, 21) - 1) / 40
    >>> y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    >>> r = smoothed_calibration_errors(y, p)
    >>> r.settings["surface"], r.e50 <= r.e90 <= r.emax
    ('direct', True)
    """
    if isinstance(span, bool) or not isinstance(span, Real) or not 0 < span <= 1:
        raise ValueError(f"span must lie in (0, 1], got {span!r}")
    if max_fit_samples is not None and (isinstance(max_fit_samples, bool) or not isinstance(
            max_fit_samples, Integral) or max_fit_samples < 3):
        raise ValueError(f"max_fit_samples must be None or an integer >= 3, got "
                         f"{max_fit_samples!r}")
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    order = np.argsort(scores, kind="stable")
    xs, ys = scores[order], targets[order]
    if max_fit_samples is not None and xs.shape[0] > max_fit_samples:
        step = -(-xs.shape[0] // max_fit_samples)
        xs, ys = xs[::step], ys[::step]
    n = xs.shape[0]
    q = int(math.floor(n * span))
    if q < 3:
        raise ValueError(f"span={span} keeps {q} of {n} samples per local fit; a quadratic fit "
                         "needs at least 3 (use more samples or a larger span)")
    if scores.shape[0] <= LOESS_DIRECT_MAX:
        curve = _loess_at(xs, ys, scores, q)
        surface = "direct"
    else:
        grid = np.unique(np.quantile(xs, np.linspace(0, 1, _LOESS_GRID)))
        curve = np.interp(scores, grid, _loess_at(xs, ys, grid, q))
        surface = "interpolate"
    err = np.abs(scores - curve)
    settings = dict(span=float(span), degree=2, surface=surface, view=view,
                    n_samples=int(scores.shape[0]), neighbours=q, max_fit_samples=max_fit_samples,
                    fit_samples=n)
    return SmoothedCalibrationErrors(float(err.mean()), float(np.quantile(err, 0.5)),
                                     float(np.quantile(err, 0.9)), float(err.max()), curve,
                                     settings)
