"""Dirichlet calibration with ODIR regularisation (Kull et al., NeurIPS 2019).

The calibrated probabilities are ``softmax(W log p + b)``, with ``p`` the
model's probabilities (here ``log p = log_softmax(z)`` of the logits, which
avoids clipping ``p`` before the log) and ``W`` (K x K), ``b`` (K) fitted on
validation data by minimising

    mean NLL + lambda' * sum_{i != j} W_ij^2 + mu' * sum_j b_j^2,

the Off-Diagonal and Intercept Regularisation (ODIR): the diagonal of ``W`` is
free, so the identity map (``W = I, b = 0``, the uncalibrated model) costs
nothing beyond its NLL.  ``lambda' = reg_lambda`` and ``mu' = reg_mu``, or with
``reg_norm=True`` ``reg_lambda / (K (K - 1))`` and ``reg_mu / K`` (the paper's
per-entry normalisation).

As in the reference package ``dirichletcal`` (``FullDirichletCalibrator`` with
``ref_row=True``), the last row of ``[W | b]`` is fixed at zero, which removes
the softmax's invariance to adding one vector to every row; the penalty is on
these identified parameters, so with the same ``reg_lambda``, ``reg_mu`` and
``reg_norm`` both fit the same strictly convex objective.  calkit minimises it
with L-BFGS-B and the analytic gradient instead of ``dirichletcal``'s Newton
iterations on JAX derivatives; the NLL and its gradient are those of
:class:`calkit.posthoc.temperature.MatrixScaling` on the log-probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold

from calkit.logits import log_softmax, softmax
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._sklearn_api import predict_input
from calkit.posthoc.temperature import _affine_nll


def _odir_objective(free, logp, onehot, lam_off, lam_diag, mu, weights=None):
    """Penalised mean NLL of ``softmax(logp W^T + b)`` and its gradient.

    ``free`` holds the first ``K - 1`` rows of ``[W | b]`` (the last row is 0).
    The penalty is ``lam_off * sum_{i != j} W_ij^2 + lam_diag * sum_i W_ii^2 +
    mu * sum_j b_j^2``; ODIR is ``lam_diag = 0`` (``lam_diag = lam_off`` is the
    plain L2 penalty on ``W`` of a multinomial logistic regression).
    """
    k = logp.shape[1]
    wb = np.zeros((k, k + 1))
    wb[:-1] = free.reshape(k - 1, k + 1)
    params = np.concatenate([wb[:, :k].ravel(), wb[:, k]])
    value, grad = _affine_nll(params, logp, onehot, 0.0, (k, k), np.zeros((k, k)), weights)
    w, b = wb[:, :k], wb[:, k]
    weight = np.full((k, k), lam_off)
    np.fill_diagonal(weight, lam_diag)
    value += float(np.sum(weight * w * w) + mu * np.sum(b * b))
    g = np.empty((k, k + 1))
    g[:, :k] = grad[:k * k].reshape(k, k) + 2 * weight * w
    g[:, k] = grad[k * k:] + 2 * mu * b
    return value, g[:-1].ravel()


def _fit_dirichlet(logp, labels, lam_off, lam_diag, mu, max_iter, tol, sample_weight=None):
    """Minimise :func:`_odir_objective` from the identity map; returns ``(W, b, result)``."""
    weights = None if sample_weight is None else sample_weight / np.sum(sample_weight)
    n, k = logp.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    start = np.hstack([np.eye(k) - np.eye(k)[-1], np.zeros((k, 1))])  # identity, last row 0
    res = minimize(_odir_objective, start[:-1].ravel(),
                   args=(logp, onehot, lam_off, lam_diag, mu, weights), jac=True,
                   method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-9, "maxcor": 30})
    wb = np.zeros((k, k + 1))
    wb[:-1] = res.x.reshape(k - 1, k + 1)
    return wb[:, :k], wb[:, k], res


def _check_reg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


class DirichletCalibration(BaseCalibrator):
    """Dirichlet calibration, ``softmax(W log p + b)``, with ODIR regularisation.

    Parameters
    ----------
    reg_lambda : float or sequence of float, default=1e-3
        Weight of the squared off-diagonal entries of ``W``.  A sequence is a
        grid: the value with the lowest ``cv``-fold cross-validated NLL on the
        data passed to :meth:`fit` is chosen (ties: the first), then the
        calibrator is refitted on all of it.
    reg_mu : float, optional
        Weight of the squared intercepts; default: the same as ``reg_lambda``
        (in ``dirichletcal``, ``reg_mu=None`` instead means plain L2 on all of
        ``[W | b]``, not ODIR: pass ``reg_mu`` explicitly to compare).
    reg_norm : bool, default=False
        Divide ``reg_lambda`` by ``K (K - 1)`` and ``reg_mu`` by ``K`` (the
        number of penalised entries), as ``dirichletcal``'s ``reg_norm``.
    max_iter : int, default=5000
        L-BFGS-B iterations.
    tol : float, default=1e-13
        L-BFGS-B relative tolerance on the objective.
    cv : int, default=5
        Folds of the cross-validation when ``reg_lambda`` is a grid (stratified
        when every class has at least ``cv`` samples).
    random_state : int, default=0
        Seed of the fold assignment.

    Attributes
    ----------
    coef_ : ndarray of shape (K, K)
        ``W`` (last row zero).
    intercept_ : ndarray of shape (K,)
        ``b`` (last entry zero).
    n_classes_ : int
    n_iter_ : int
    reg_lambda_ : float
        The ``reg_lambda`` used (the chosen one for a grid).
    cv_scores_ : ndarray
        Mean held-out NLL per grid value (empty for a single value).

    Notes
    -----
    Takes **logits** ``(N, K)``; the features are ``log_softmax(logits)``.  To
    calibrate probabilities, pass ``np.log(p)`` (clipped away from zero).  The
    argmax may change.  The paper selects the regularisation by
    cross-validation: pass a grid, e.g. ``reg_lambda=[1e-4, 1e-3, 1e-2, 1e-1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.dirichlet import DirichletCalibration
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 600)
    >>> z = 3.0 * (np.eye(3)[y] + rng.normal(0, 0.6, (600, 3)))  # over-confident logits
    >>> cal = DirichletCalibration(reg_lambda=1e-3).fit(z, y)
    >>> cal.coef_.shape, bool(abs(cal.coef_[-1]).max() == 0)
    ((3, 3), True)
    >>> from calkit import softmax
    >>> bool(cal.predict_proba(z).max(1).mean() < softmax(z).max(1).mean())  # less confident
    True
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "coef_": ValueSpec("array", shape=("K", "K")),
        "intercept_": ValueSpec("array", shape=("K",)),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "n_iter_": ValueSpec("int", ge=0, required=False),
        "reg_lambda_": ValueSpec("float", ge=0, required=False),
        "cv_scores_": ValueSpec("array", shape=("*",), finite=False, required=False)}

    def __init__(self, reg_lambda: float | Sequence[float] = 1e-3, reg_mu: float | None = None,
                 reg_norm: bool = False, max_iter: int = 5000, tol: float = 1e-13,
                 cv: int = 5, random_state: int = 0):
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.reg_norm = reg_norm
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.random_state = random_state

    def _penalties(self, lam: float, k: int) -> tuple[float, float]:
        mu = lam if self.reg_mu is None else _check_reg(self.reg_mu, "reg_mu")
        if self.reg_norm:
            lam, mu = lam / (k * (k - 1)), mu / k
        return lam, mu

    def _fit_one(self, logp, labels, lam, sample_weight=None):
        penalty, mu = self._penalties(lam, logp.shape[1])
        w, b, res = _fit_dirichlet(logp, labels, penalty, 0.0, mu, self.max_iter,
                                   float(self.tol), sample_weight)
        if not res.success and res.nit >= self.max_iter:
            warnings.warn(f"DirichletCalibration did not converge in {self.max_iter} "
                          "iterations", ConvergenceWarning, stacklevel=3)
        return w, b, int(res.nit)

    def _cv_scores(self, logp, labels, grid, sample_weight=None) -> np.ndarray:
        cv = self.cv
        if isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
        if len(labels) < cv:
            raise ValueError(f"cv={cv} folds need at least {cv} samples, got {len(labels)}")
        stratify = np.bincount(labels, minlength=logp.shape[1]).min() >= cv
        splitter = (StratifiedKFold if stratify else KFold)(
            int(cv), shuffle=True, random_state=self.random_state)
        folds = list(splitter.split(logp, labels))
        scores = np.zeros(len(grid))
        sw = np.ones(len(labels)) if sample_weight is None else sample_weight
        for i, lam in enumerate(grid):
            for train, test in folds:
                w, b, _ = self._fit_one(logp[train], labels[train], lam,
                                        None if sample_weight is None else sw[train])
                held = log_softmax(logp[test] @ w.T + b)
                scores[i] -= held[np.arange(len(test)), labels[test]] @ sw[test] / sw.sum()
        return scores

    def fit(self, X, y, sample_weight=None) -> DirichletCalibration:
        """Fit on validation logits ``X`` (N, K) and labels ``y`` (N,).

        ``X`` may be 1-D probabilities of the positive class; ``sample_weight``
        (N,) weights the NLL (and the cross-validated NLL of a grid).
        """
        z, labels = check_fit_logits(X, y)
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, Integral) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        grid = np.atleast_1d(np.asarray(self.reg_lambda, dtype=object)).ravel().tolist()
        if not grid:
            raise ValueError("reg_lambda must be a number or a non-empty sequence")
        grid = [_check_reg(v, "reg_lambda") for v in grid]
        if self.reg_mu is not None:
            _check_reg(self.reg_mu, "reg_mu")
        logp = log_softmax(z)
        self.cv_scores_ = np.array([])
        lam = grid[0]
        if len(grid) > 1:
            self.cv_scores_ = self._cv_scores(logp, labels, grid, sample_weight)
            lam = grid[int(np.argmin(self.cv_scores_))]
        w, b, self.n_iter_ = self._fit_one(logp, labels, lam, sample_weight)
        self.coef_, self.intercept_, self.n_classes_ = w, b, int(z.shape[1])
        self.reg_lambda_ = lam
        return self

    def decision_function(self, X) -> np.ndarray:
        """Calibrated logits ``W log_softmax(X) + b``."""
        self._check_fitted()
        X, _ = predict_input(self, X)  # containers, feature names, 1-D binary scores
        return self._decision(X)

    def _decision(self, X) -> np.ndarray:
        z = np.asarray(check_predict_logits(X, self.n_classes_), dtype=np.float64)
        return log_softmax(z) @ np.asarray(self.coef_).T + np.asarray(self.intercept_)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self._decision(X))
