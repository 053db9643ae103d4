"""Binary calibrators: Platt scaling and beta calibration.

Both are logistic regressions on features of one score per sample:

* :class:`PlattScaling` (Platt 1999): ``P(y = 1 | s) = sigmoid(a s + b)`` on a
  real-valued score ``s`` (a decision value or logit), fitted with Platt's
  smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` as scikit-learn's
  ``CalibratedClassifierCV(method="sigmoid")``.
* :class:`BetaCalibration` (Kull, Silva Filho & Flach, AISTATS 2017):
  ``P(y = 1 | p) = sigmoid(a ln p - b ln(1 - p) + c)`` on a probability ``p``,
  with ``a, b >= 0`` so the map is monotone (the "abm" model of ``betacal``).
  The constrained maximum likelihood is solved directly with L-BFGS-B, where
  ``betacal`` refits without the offending feature when a coefficient is negative.

Inputs: a 1-D array of scores (real values for Platt, probabilities in
``[0, 1]`` for beta calibration; the output is then the 1-D probability of
class 1), or ``(N, 2)`` logits (the score is ``z_1 - z_0`` for Platt and
``softmax(z)[:, 1]`` for beta; the output is ``(N, 2)`` probabilities).  ``y``
holds 0/1 labels and must contain both classes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from calkit._array import to_numpy
from calkit._validation import check_binary_targets, check_logits, check_scores
from calkit.posthoc._base import BaseCalibrator, _float_if_integer
from calkit.posthoc._persistence import ValueSpec


def _binary_score(X, kind: str, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """``(score (N,) float64, input_ndim)`` from 1-D scores or (N, 2) logits."""
    ndim = getattr(X, "ndim", np.ndim(X))
    if ndim == 2:
        z = np.asarray(to_numpy(check_logits(_float_if_integer(X), "X")), dtype=np.float64)
        if z.shape[1] != 2:
            raise ValueError(f"binary calibrators take 1-D scores or (N, 2) logits, got "
                             f"{z.shape[1]} classes")
        d = z[:, 1] - z[:, 0]
        return (d if kind == "real" else expit(d)), 2
    if kind == "probability":
        return np.asarray(to_numpy(check_scores(X, "X")), dtype=np.float64), 1
    s = np.asarray(to_numpy(X))
    if s.ndim != 1 or s.shape[0] == 0:
        raise ValueError(f"X must be 1-D scores or (N, 2) logits, got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.number) or not np.isfinite(s).all():
        raise ValueError("X must hold finite real numbers")
    return s.astype(np.float64), 1


def _fit_logistic(features: np.ndarray, targets: np.ndarray,
                  bounds: list[tuple[float | None, float | None]],
                  sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Coefficients (features..., intercept) minimising the (weighted) mean log loss."""
    f = np.column_stack([features, np.ones(len(targets))])
    w = (np.full(len(targets), 1.0 / len(targets)) if sample_weight is None
         else sample_weight / np.sum(sample_weight))

    def loss(theta):
        a = f @ theta
        value = -(targets * log_expit(a) + (1 - targets) * log_expit(-a)) @ w
        return value, f.T @ ((expit(a) - targets) * w)

    x0 = np.zeros(f.shape[1])
    x0[0] = 1.0
    res = minimize(loss, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-10})
    return res.x


def platt_targets(t: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, per column.

    ``t`` (N,) or (N, L) holds 0/1 labels; the (weighted) class counts are those
    of each column, as scikit-learn's ``_sigmoid_calibration``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.binary import platt_targets
    >>> platt_targets(np.array([1.0, 1.0, 0.0])).round(4).tolist()   # N+ = 2, N- = 1
    [0.75, 0.75, 0.3333]
    """
    w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    n_pos = w @ t
    n_neg = w.sum() - n_pos
    return np.where(t == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))


def fit_platt(s: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None,
              max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and offsets ``(a, b)`` of ``sigmoid(a s + b)`` for every column at once.

    Minimises each column's (weighted) mean log loss against targets ``t`` in
    [0, 1] by Newton's method on the 2 x 2 problem of every column, vectorised
    over the columns, with a backtracking (Armijo) line search, from ``(1, 0)``.
    ``s`` and ``t`` are (N, L); returns two arrays of shape (L,).  The loss is
    convex, so this is its minimum whenever one exists; where it does not (0/1
    targets that a threshold separates) the iterates stop after ``max_iter``
    with a steep finite slope, as a quasi-Newton solver's would.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.binary import fit_platt
    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(size=(20000, 2))
    >>> t = (rng.random((20000, 2)) < 1 / (1 + np.exp(-(s * [2.0, -1.0] + [0.5, 0.0])))) * 1.0
    >>> a, b = fit_platt(s, t)
    >>> a.round(1).tolist(), b.round(1).tolist()
    ([2.0, -1.0], [0.5, 0.0])
    """
    n, n_cols = s.shape
    w = (np.full(n, 1.0 / n) if sample_weight is None
         else np.asarray(sample_weight, np.float64) / np.sum(sample_weight))[:, None]

    def loss(a, b):
        z = s * a + b
        return np.sum(w * -(t * log_expit(z) + (1 - t) * log_expit(-z)), axis=0)

    a, b = np.ones(n_cols), np.zeros(n_cols)
    f = loss(a, b)
    active = np.ones(n_cols, dtype=bool)
    for _ in range(max_iter):
        p = expit(s * a + b)
        r = w * (p - t)
        g_a, g_b = np.sum(r * s, axis=0), np.sum(r, axis=0)
        h = w * p * (1 - p)
        h_aa, h_ab, h_bb = np.sum(h * s * s, axis=0), np.sum(h * s, axis=0), np.sum(h, axis=0)
        det = h_aa * h_bb - h_ab ** 2
        singular = ~(det > 1e-14 * np.maximum(h_aa * h_bb, np.finfo(float).tiny))
        safe = np.where(singular, 1.0, det)
        d_a = np.where(singular, -g_a, -(h_bb * g_a - h_ab * g_b) / safe)
        d_b = np.where(singular, -g_b, -(h_aa * g_b - h_ab * g_a) / safe)
        slope = g_a * d_a + g_b * d_b  # < 0 unless converged
        active &= slope < -1e-18
        if not active.any():
            break
        step = np.where(active, 1.0, 0.0)
        for _ in range(60):
            f_new = loss(a + step * d_a, b + step * d_b)
            bad = active & ~(f_new <= f + 1e-4 * step * slope)
            if not bad.any():
                break
            step = np.where(bad, step / 2, step)
        moved = active & (f_new <= f + 1e-4 * step * slope)
        a = np.where(moved, a + step * d_a, a)
        b = np.where(moved, b + step * d_b, b)
        f = np.where(moved, f_new, f)
        active &= moved
    return a, b


def _check_fit(X, y, kind, sample_weight=None):
    s, ndim = _binary_score(X, kind)
    t = np.asarray(to_numpy(check_binary_targets(y, len(s), "y")), dtype=np.float64)
    if sample_weight is not None:
        t_seen = t[sample_weight > 0]
        if t_seen.min() == t_seen.max():
            raise ValueError("the calibration labels y with a positive sample_weight contain "
                             "only one class; a binary calibrator needs both 0 and 1")
    if t.min() == t.max():
        raise ValueError("the calibration labels y contain only one class; a binary "
                         "calibrator needs both 0 and 1")
    return s, t, ndim


class _BinaryCalibrator(BaseCalibrator):
    _kind: ClassVar[str] = "real"
    _multiclass = False
    _native_1d = True

    def _n_label_columns(self, X, fit_params: dict) -> int:
        return 2  # 1-D scores or (N, 2) logits: always two classes

    def _p1(self, s: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_proba(self, X):
        s, ndim = _binary_score(X, self._kind)
        p1 = self._p1(s)
        return p1 if ndim == 1 else np.column_stack([1 - p1, p1])


class PlattScaling(_BinaryCalibrator):
    """Platt scaling: ``sigmoid(a * s + b)`` on a binary score (Platt 1999).

    Parameters
    ----------
    smooth_targets : bool, default=True
        Fit against Platt's smoothed targets (as scikit-learn) instead of 0/1.

    Attributes
    ----------
    coef_ : float
        Slope ``a``.
    intercept_ : float
        Offset ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.binary import PlattScaling
    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(size=4000)
    >>> y = (rng.random(4000) < 1 / (1 + np.exp(-(2 * s - 1)))).astype(int)
    >>> pl = PlattScaling().fit(s, y)
    >>> round(pl.coef_, 1), round(pl.intercept_, 1)
    (2.0, -1.0)
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "coef_": ValueSpec("float"), "intercept_": ValueSpec("float")}

    def __init__(self, smooth_targets: bool = True):
        self.smooth_targets = smooth_targets

    def fit(self, X, y, sample_weight=None) -> PlattScaling:
        """Fit on scores ``X`` (N,) or (N, 2) logits and binary labels ``y``.

        ``sample_weight`` (N,) weights the log loss and Platt's class counts (as
        scikit-learn).
        """
        s, t, _ = _check_fit(X, y, "real", sample_weight)
        if self.smooth_targets:
            t = platt_targets(t, sample_weight)
        a, b = fit_platt(s[:, None], t[:, None], sample_weight)
        self.coef_, self.intercept_ = float(a[0]), float(b[0])
        return self

    def _p1(self, s):
        return expit(self.coef_ * s + self.intercept_)


class BetaCalibration(_BinaryCalibrator):
    """Beta calibration: ``sigmoid(a ln p - b ln(1 - p) + c)`` with ``a, b >= 0``.

    Parameters
    ----------
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]`` before the logs
        (default: float64 machine epsilon, as ``betacal``).

    Attributes
    ----------
    coef_ : ndarray of shape (2,)
        ``(a, b)``.
    intercept_ : float
        ``c``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.binary import BetaCalibration
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.01, 0.99, 4000)
    >>> y = (rng.random(4000) < p ** 2 / (p ** 2 + (1 - p) ** 2)).astype(int)
    >>> BetaCalibration().fit(p, y).coef_.round().tolist()  # true (a, b) = (2, 2)
    [2.0, 2.0]
    """

    _kind = "probability"
    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "coef_": ValueSpec("array", shape=(2,), ge=0), "intercept_": ValueSpec("float")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "eps": ValueSpec("float", gt=0, lt=0.5, none_ok=True)}

    def __init__(self, eps: float | None = None):
        self.eps = eps

    def _features(self, p):
        eps = np.finfo(np.float64).eps if self.eps is None else float(self.eps)
        p = np.clip(p, eps, 1 - eps)
        return np.column_stack([np.log(p), -np.log1p(-p)])

    def fit(self, X, y, sample_weight=None) -> BetaCalibration:
        """Fit on probabilities ``X`` (N,) or (N, 2) logits and binary labels ``y``.

        ``sample_weight`` (N,) weights the log loss.
        """
        p, t, _ = _check_fit(X, y, "probability", sample_weight)
        theta = _fit_logistic(self._features(p), t, [(0, None), (0, None), (None, None)],
                              sample_weight)
        self.coef_, self.intercept_ = theta[:2], float(theta[2])
        return self

    def _p1(self, p):
        return expit(self._features(p) @ np.asarray(self.coef_) + self.intercept_)
