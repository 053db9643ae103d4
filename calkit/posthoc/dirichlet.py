"""Dirichlet calibration with ODIR regularisation (Kull et al., NeurIPS 2019).

The calibrated probabilities are ``softmax(W log p + b)``, with ``p`` the
model's probabilities (here ``log p = log_softmax(z)`` of the logits, which
avoids clipping ``p`` before the log) and ``W`` (K x K), ``b`` (K) fitted on
validation data by minimising

    mean NLL + lambda' * sum_{i != j} W_ij^2 + mu' * sum_j b_j^2,

the Off-Diagonal and Intercept Regularisation (ODIR): the diagonal of ``W`` is
free, so temperature scaling (``W = I / T, b = 0``) costs nothing beyond its
NLL.  ``lambda' = reg_lambda`` and ``mu' = reg_mu``, or with ``reg_norm=True``
``reg_lambda / (K (K - 1))`` and ``reg_mu / K`` (the paper's per-entry
normalisation).

**Default: the penalties are chosen by cross-validation**, as in the paper
(``reg_lambda="auto"``), on ``cv`` folds (stratified), by held-out NLL, in two
walks, every fit warm-started from the previous fit on the same fold:

1. ``lambda = mu`` on the normalised grid ``10^6, 10^5, ..., 10^-4`` (per entry
   ``lambda / (K (K - 1))`` and ``mu / K``), from the strongest down; the walk
   stops once the held-out NLL has risen (by more than a relative ``1e-4``
   above the best so far: strong penalties all give nearly temperature
   scaling, and their tiny differences are noise) ``patience`` times in a row.
2. ``mu`` alone at the best ``lambda``: ``lambda / 10, lambda / 100, ...`` (down
   to ``10^-4``), from the first walk's fits at that ``lambda``, for as long as
   each step lowers the best held-out NLL by more than the relative ``1e-4``
   (``patience`` steps without such a gain end the walk, and only such gains
   move the choice: the intercepts' penalty changes only on evidence); if no
   step down gained, ``lambda * 10, lambda * 100, ...`` (up to ``10^6``) the same
   way.

This searches the paper's two penalties on a coarse 2-D grid (Kull et al.
search ``lambda`` and ``mu`` on grids), pruned to two 1-D walks.  The point
so chosen is then refitted on all the data (from temperature scaling, as a
single fit).  So a strong ``lambda`` is chosen where
``K^2`` parameters meet few samples per class (CIFAR-100: 10,100 parameters,
5,000 samples) and a weak one for few classes.

Parameterisation.  By default (``ref_row=False``) all of ``[W | b]`` is free:
with ``lambda' > 0`` the penalty removes the softmax's invariance to adding one
vector to every row (the objective is strictly convex), and the temperature-
scaled map is penalty-free.  ``ref_row=True`` fixes the last row of ``[W | b]``
at zero, as the reference package ``dirichletcal`` (``FullDirichletCalibrator``,
``ref_row=True``), and penalises the identified parameters; then the diagonal
map itself pays ``lambda'`` per row, so strong penalties pull away from
temperature scaling.

Solver.  Every fit starts from temperature scaling on its own training data
(``W = I / T``; with ``ref_row`` minus the last row) and runs L-BFGS-B in float64
with the analytic gradient (one pass: one ``(N, K + 1) x (K + 1, K)`` product for
the logits and one for the gradient) on block-preconditioned variables: each
row ``i`` of ``[W | b]`` is multiplied by the Cholesky factor of its own block
of the Hessian at the start, ``sum_n w_n p_ni (1 - p_ni) x_n x_n^T`` plus the
penalty, ``x_n = [log p_n, 1]`` (the coupling between rows is left out).
Log-probability features are strongly correlated and of very different scales
(``log p`` down to ``-28`` for ``p = 1e-12``); the blocks undo both, which a
diagonal (Jacobi) scaling does not: on 5,000 x 100 CIFAR-100 outputs a fit at
the cross-validated penalty takes 45 iterations instead of 141, and reaches a
lower objective.  Above ``BLOCK_ELEMENTS`` block entries (``K`` above about
160) the diagonal of the Hessian is used instead.  A fit that stops at
``max_iter`` iterations raises a ``ConvergenceWarning`` (once per ``fit``,
counting the cross-validation fits).  BLAS runs on one thread during ``fit``
(:mod:`calkit.posthoc._blas`).  The objective is that of
:class:`calkit.posthoc.temperature.MatrixScaling` on the log-probabilities, with
the ODIR penalty instead of an L2 one.
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
from calkit.posthoc._accuracy import accuracy_change
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._blas import single_blas_thread
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._sklearn_api import predict_input
from calkit.posthoc.temperature import TemperatureScaling

#: the normalised penalties tried by ``reg_lambda="auto"``, strongest first
AUTO_GRID = tuple(10.0 ** e for e in range(6, -5, -1))
#: relative tolerance of the cross-validation fits (held-out NLL off by up to ~1e-3 relative)
CV_TOL = 1e-5
#: a held-out NLL counts as a rise above the best one only beyond this relative margin
RISE = 1e-4
#: factor between the intercept penalties of the ``mu`` walk of ``reg_lambda="auto"``
MU_STEP = 10.0
#: most entries of the solver's per-row Hessian blocks, (K, K + 1, K + 1) (else Jacobi)
BLOCK_ELEMENTS = 1 << 22
_BLOCK_WORK = 1 << 26  # multiply-adds behind the off-diagonal parts of the blocks


def _full(free, k, ref_row):
    """``[W | b]`` (K, K + 1) from the free parameters (last row 0 with ``ref_row``)."""
    if not ref_row:
        return free.reshape(k, k + 1)
    wb = np.zeros((k, k + 1))
    wb[:-1] = free.reshape(k - 1, k + 1)
    return wb


def _penalty_weights(k, lam_off, lam_diag, mu):
    weight = np.full((k, k + 1), lam_off)
    weight[np.arange(k), np.arange(k)] = lam_diag
    weight[:, k] = mu
    return weight


class _OdirProblem:
    """The penalised NLL on fixed data: features ``[log p | 1]``, labels, weights, penalty.

    ``weight`` (K, K + 1) is the penalty of each entry of ``[W | b]``;
    ``weights`` (N,) per-sample weights summing to one (None: the plain mean).
    """

    def __init__(self, logp, labels, weight, weights=None):
        n, k = logp.shape
        self.x = np.empty((n, k + 1))
        self.x[:, :k] = logp
        self.x[:, k] = 1.0
        self.flat = np.arange(n) * k + np.asarray(labels)
        self.w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
        self.weight = weight

    def value_grad(self, wb):
        """Objective at ``[W | b]`` (K, K + 1) and its gradient (K, K + 1), in one pass."""
        a = self.x @ wb.T
        a -= a.max(axis=1, keepdims=True)
        true = a.ravel()[self.flat]
        np.exp(a, out=a)
        s = a.sum(axis=1)
        value = float(self.w @ (np.log(s) - true)) + float(np.vdot(self.weight * wb, wb))
        a *= (self.w / s)[:, None]  # d NLL / d logits: weighted (p - onehot)
        a.ravel()[self.flat] -= self.w
        return value, a.T @ self.x + 2 * self.weight * wb

    def hessian_blocks(self, wb, rows):
        """Hessian blocks of the first ``rows`` rows of ``[W | b]`` at ``wb``, (rows, K+1, K+1).

        Block ``i`` is ``sum_n w_n p_ni (1 - p_ni) x_n x_n^T`` plus the penalty (the
        coupling of two rows, ``-p_ni p_nj``, is left out).  Its diagonal sums all
        rows; its off-diagonal part the ``max(64, 2^26 / (rows (K + 1)^2))`` samples
        with the largest ``w_n p_ni (1 - p_ni)`` (the others add little).
        """
        n, k1 = self.x.shape
        p = softmax(self.x @ wb.T)[:, :rows]
        d = (p * (1 - p) * self.w[:, None]).T  # (rows, N)
        diag = d @ (self.x * self.x) + 2 * self.weight[:rows]
        m = int(min(n, max(64, _BLOCK_WORK // (rows * k1 * k1))))
        if m < n:
            idx = np.argpartition(d, n - m, axis=1)[:, n - m:]
            xs, ds = self.x[idx], np.take_along_axis(d, idx, axis=1)
        else:
            xs, ds = np.broadcast_to(self.x, (rows, n, k1)), d
        h = np.matmul((xs * ds[..., None]).transpose(0, 2, 1), xs)
        j = np.arange(k1)
        h[:, j, j] = diag + 1e-10 * (1.0 + diag.max(axis=1, keepdims=True))
        return h


class _Preconditioner:
    """Per-row change of variables ``w_i = M_i^T u_i`` with ``M_i^T M_i`` about ``H_i^-1``.

    ``M_i = L_i^-1`` for the Cholesky factor ``L_i`` of row ``i``'s Hessian
    block (:meth:`_OdirProblem.hessian_blocks`) when ``rows (K + 1)^2 <=
    BLOCK_ELEMENTS``; otherwise (or if a block is not positive definite) the
    diagonal ``1 / sqrt(H_i,jj)`` (Jacobi).
    """

    def __init__(self, problem, wb, rows):
        k1 = wb.shape[1]
        self.inv = None
        if rows * k1 * k1 <= BLOCK_ELEMENTS:
            h = problem.hessian_blocks(wb, rows)
            try:
                factor = np.linalg.cholesky(h)
            except np.linalg.LinAlgError:
                self.scale = 1 / np.sqrt(np.diagonal(h, axis1=1, axis2=2))
            else:
                self.inv = np.linalg.inv(factor)  # lower triangular, per row
                self.inv_t = np.ascontiguousarray(self.inv.transpose(0, 2, 1))
                self.factor_t = np.ascontiguousarray(factor.transpose(0, 2, 1))
        else:
            p = softmax(problem.x @ wb.T)[:, :rows]
            d = p * (1 - p) * problem.w[:, None]
            self.scale = 1 / np.sqrt(np.maximum(
                d.T @ (problem.x * problem.x) + 2 * problem.weight[:rows], 1e-12))

    def to_free(self, u):
        """``[W | b]`` rows from the preconditioned variables (rows, K + 1)."""
        if self.inv is None:
            return u * self.scale
        return np.matmul(self.inv_t, u[..., None])[..., 0]

    def from_free(self, w):
        if self.inv is None:
            return w / self.scale
        return np.matmul(self.factor_t, w[..., None])[..., 0]

    def gradient(self, g):
        """The gradient in the preconditioned variables from the one in ``[W | b]``."""
        if self.inv is None:
            return g * self.scale
        return np.matmul(self.inv, g[..., None])[..., 0]


def _odir_objective(free, logp, onehot, lam_off, lam_diag, mu, ref_row=True, weights=None):
    """Penalised mean NLL of ``softmax(logp W^T + b)`` and its gradient.

    ``free`` holds ``[W | b]`` row by row (its first ``K - 1`` rows with
    ``ref_row``, the last row being 0).  The penalty is ``lam_off * sum_{i != j}
    W_ij^2 + lam_diag * sum_i W_ii^2 + mu * sum_j b_j^2``; ODIR is
    ``lam_diag = 0`` (``lam_diag = lam_off`` is the plain L2 penalty on ``W`` of a
    multinomial logistic regression).  ``weights``: per-sample weights summing to
    one (a weighted mean NLL), or None.
    """
    k = logp.shape[1]
    problem = _OdirProblem(logp, np.argmax(onehot, axis=1),
                           _penalty_weights(k, lam_off, lam_diag, mu), weights)
    value, g = problem.value_grad(_full(free, k, ref_row))
    return value, (g[:-1] if ref_row else g).ravel()


def _fit_dirichlet(logp, labels, lam_off, lam_diag, mu, max_iter, tol, start=None,
                   ref_row=False, sample_weight=None):
    """Minimise :func:`_odir_objective` from ``start`` (default: the identity map).

    L-BFGS-B on block-preconditioned variables (:class:`_Preconditioner`, built
    at ``start``).  Returns ``(W, b, result)``; ``sample_weight`` (N,) weights the
    mean NLL.
    """
    weights = None if sample_weight is None else sample_weight / np.sum(sample_weight)
    k = logp.shape[1]
    if start is None:
        start = np.hstack([np.eye(k), np.zeros((k, 1))])
    if ref_row:
        start = start - start[-1]
    rows = k - 1 if ref_row else k
    problem = _OdirProblem(logp, labels, _penalty_weights(k, lam_off, lam_diag, mu), weights)
    pre = _Preconditioner(problem, start, rows)
    wb = np.zeros((k, k + 1))

    def objective(u):
        wb[:rows] = pre.to_free(u.reshape(rows, k + 1))
        value, grad = problem.value_grad(wb)
        return value, pre.gradient(grad[:rows]).ravel()

    res = minimize(objective, pre.from_free(start[:rows]).ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-9, "maxcor": 20})
    wb[:rows] = pre.to_free(res.x.reshape(rows, k + 1))
    return wb[:, :k].copy(), wb[:, k].copy(), res


def _check_reg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _temperature_start(logp, labels, ref_row, sample_weight=None):
    """``[W | b]`` of temperature scaling fitted on ``logp`` (the warm start)."""
    k = logp.shape[1]
    with warnings.catch_warnings():  # a temperature at its bound is still a fine start
        warnings.simplefilter("ignore", ConvergenceWarning)
        beta = 1.0 / TemperatureScaling().fit(logp, labels,
                                              sample_weight=sample_weight).temperature_
    start = np.hstack([beta * np.eye(k), np.zeros((k, 1))])
    return start - start[-1] if ref_row else start


class DirichletCalibration(BaseCalibrator):
    """Dirichlet calibration, ``softmax(W log p + b)``, with ODIR regularisation.

    Parameters
    ----------
    reg_lambda : "auto", float or sequence of float, default="auto"
        Weight of the squared off-diagonal entries of ``W``.  ``"auto"``: both
        ``lambda`` and ``mu`` chosen by cross-validation, ``lambda = mu`` on the
        normalised grid ``AUTO_GRID``, then ``mu`` alone by factors of
        ``MU_STEP`` (module docstring; ``reg_mu`` and ``reg_norm`` are then
        ignored: the grid is normalised).  A sequence is a grid: every value is
        fitted on ``cv`` folds and the one with the lowest held-out NLL is chosen
        (ties: the first), then refitted on all the data.
    reg_mu : float, optional
        Weight of the squared intercepts; default: the same as ``reg_lambda``
        (in ``dirichletcal``, ``reg_mu=None`` instead means plain L2 on all of
        ``[W | b]``, not ODIR: pass ``reg_mu`` explicitly to compare).  Ignored
        by ``reg_lambda="auto"``, which searches it.
    reg_norm : bool, default=False
        Divide ``reg_lambda`` by ``K (K - 1)`` and ``reg_mu`` by ``K`` (the
        number of penalised entries), as ``dirichletcal``'s ``reg_norm``.
    max_iter : int, default=1000
        L-BFGS-B iterations per fit (a ``ConvergenceWarning`` when reached).
    tol : float, default=1e-8
        L-BFGS-B relative tolerance on the objective (the cross-validation fits
        use ``max(tol, CV_TOL)``, ``CV_TOL = 1e-5``).
    cv : int, splitter or iterable of (train, test), default=5
        Folds of the cross-validation (an int: stratified when every class has
        at least ``cv`` samples).
    patience : int, default=1
        ``"auto"`` only: stop walking the grid after this many consecutive rises
        of the held-out NLL.
    ref_row : bool, default=False
        Fix the last row of ``[W | b]`` at zero, as ``dirichletcal`` (module
        docstring).
    random_state : int, default=0
        Seed of the fold assignment.

    Attributes
    ----------
    coef_ : ndarray of shape (K, K)
        ``W``.
    intercept_ : ndarray of shape (K,)
        ``b``.
    n_classes_ : int
    n_iter_ : int
        L-BFGS-B iterations of the final fit.
    reg_lambda_, reg_mu_ : float
        The per-entry penalties used (``lambda'``, ``mu'``).
    cv_lambdas_, cv_mus_ : ndarray
        The ``(lambda, mu)`` grid points evaluated, in order (as given, or
        normalised for ``"auto"``: the ``lambda = mu`` walk, then the ``mu``
        walk at the best ``lambda``).
    cv_scores_ : ndarray
        Mean held-out NLL per evaluated grid point (empty for a single value).
        A given grid: the first point with the lowest score is fitted; for
        ``"auto"``, the point chosen by the walks (module docstring).
    accuracy_change_ : float
        Accuracy change on the fitting data.  Dirichlet calibration **can change
        predictions** (``W`` mixes the classes).

    Notes
    -----
    Takes **logits** ``(N, K)``; the features are ``log_softmax(logits)``.  To
    calibrate probabilities, pass ``np.log(p)`` (clipped away from zero).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.dirichlet import DirichletCalibration
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 600)
    >>> z = 3.0 * (np.eye(3)[y] + rng.normal(0, 0.6, (600, 3)))  # over-confident logits
    >>> cal = DirichletCalibration().fit(z, y)
    >>> cal.coef_.shape, len(cal.cv_scores_) == len(cal.cv_lambdas_) == len(cal.cv_mus_)
    ((3, 3), True)
    >>> bool(np.isclose(cal.reg_mu_ * 3, cal.cv_mus_).any())  # the chosen point, per entry
    True
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
        "reg_mu_": ValueSpec("float", ge=0, required=False),
        "cv_lambdas_": ValueSpec("array", shape=("*",), ge=0, required=False),
        "cv_scores_": ValueSpec("array", shape=("*",), finite=False, required=False),
        "cv_mus_": ValueSpec("array", shape=("*",), ge=0, required=False),
        "accuracy_change_": ValueSpec("unsaved")}

    def __init__(self, reg_lambda: str | float | Sequence[float] = "auto",
                 reg_mu: float | None = None, reg_norm: bool = False, max_iter: int = 1000,
                 tol: float = 1e-8, cv: int = 5, patience: int = 1, ref_row: bool = False,
                 random_state: int = 0):
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.reg_norm = reg_norm
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.patience = patience
        self.ref_row = ref_row
        self.random_state = random_state

    def _penalties(self, lam: float, mu: float, k: int) -> tuple[float, float]:
        """Per-entry ``(lambda', mu')`` of a grid point (normalised for "auto")."""
        if self._auto or self.reg_norm:
            return lam / (k * (k - 1)), mu / k
        return lam, mu

    def _fit_one(self, logp, labels, lam, mu, start=None, tol=None, sample_weight=None):
        penalty, mu = self._penalties(lam, mu, logp.shape[1])
        if start is None:
            start = _temperature_start(logp, labels, bool(self.ref_row), sample_weight)
        w, b, res = _fit_dirichlet(logp, labels, penalty, 0.0, mu, int(self.max_iter),
                                   float(self.tol) if tol is None else tol, start,
                                   bool(self.ref_row), sample_weight)
        self._stalled += int(not res.success and res.nit >= self.max_iter)
        return w, b, int(res.nit)

    def _folds(self, logp, labels):
        cv = self.cv
        if hasattr(cv, "split"):  # a scikit-learn splitter
            return list(cv.split(logp, labels))
        if not isinstance(cv, Integral) and hasattr(cv, "__iter__"):  # (train, test) pairs
            folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
            if not folds:
                raise ValueError("cv holds no (train, test) splits")
            return folds
        if isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, a splitter or (train, test) splits, "
                             f"got {cv!r}")
        if len(labels) < cv:
            raise ValueError(f"cv={cv} folds need at least {cv} samples, got "
                             f"n_samples={len(labels)}")
        stratify = np.bincount(labels, minlength=logp.shape[1]).min() >= cv
        splitter = (StratifiedKFold if stratify else KFold)(
            int(cv), shuffle=True, random_state=self.random_state)
        return list(splitter.split(logp, labels))

    def _cv_path(self, logp, labels, grid, patience, sample_weight=None) -> tuple:
        """Held-out (weighted) NLL of ``(lambda, mu)`` grid points, warm-started fold by fold.

        ``patience=None``: every point of ``grid`` (pairs), each fold's fit started
        from its fit at the previous point.  Otherwise (``"auto"``) the walk of the
        module docstring: ``lambda = mu`` along ``grid`` (numbers), then ``mu`` alone
        at the best ``lambda``, down and if need be up by factors of ``MU_STEP``.
        Returns the evaluated ``lambdas, mus, scores`` in order and the chosen row.
        """
        folds = self._folds(logp, labels)
        sw = np.ones(len(labels)) if sample_weight is None else sample_weight
        table: tuple[list, list, list] = ([], [], [])

        def walk(points, starts, limit, best, chosen, gain=False):
            """Fit ``points`` in turn, each fold from its last fit; ``best``/``chosen``: the
            score and table row to beat.  Stops after ``limit`` rises above the table's
            best (``gain``: steps not below the best by more than ``RISE``, and only
            such steps replace the chosen row).  Returns (fold fits, score, row) chosen."""
            rises, best_starts = 0, starts
            for lam, mu in points:
                score, starts = 0.0, list(starts)
                for f, (train, test) in enumerate(folds):
                    w, b, _ = self._fit_one(logp[train], labels[train], lam, mu, starts[f],
                                            max(float(self.tol), CV_TOL),
                                            None if sample_weight is None else sw[train])
                    starts[f] = np.hstack([w, b[:, None]])
                    held = log_softmax(logp[test] @ w.T + b)
                    score -= held[np.arange(len(test)), labels[test]] @ sw[test] / sw.sum()
                record = min(table[2], default=np.inf)
                for column, value in zip(table, (lam, mu, score), strict=True):
                    column.append(value)
                better = score < best - RISE * abs(best) if gain else score < best
                if better:
                    best, best_starts, chosen = score, starts, len(table[2]) - 1
                failed = not better if gain else score > record + RISE * abs(record)
                rises = rises + 1 if failed else 0
                if limit is not None and rises >= limit:
                    break
            return best_starts, best, chosen

        nofit = [None] * len(folds)
        if patience is None:
            return (*table, walk(grid, nofit, None, np.inf, 0)[2])
        starts, best, chosen = walk([(lam, lam) for lam in grid], nofit, patience, np.inf, 0)
        lam = table[0][chosen]
        low, high = AUTO_GRID[-1], AUTO_GRID[0]
        down = [(lam, lam / MU_STEP ** i) for i in range(1, 99) if lam / MU_STEP ** i >= low]
        up = [(lam, lam * MU_STEP ** i) for i in range(1, 99) if lam * MU_STEP ** i <= high]
        _, best_down, chosen_down = walk(down, starts, patience, best, chosen, gain=True)
        if chosen_down == chosen:  # weaker intercept penalties did not help: try stronger ones
            _, _, chosen_down = walk(up, starts, patience, best, chosen, gain=True)
        return (*table, chosen_down)

    def fit(self, X, y, sample_weight=None) -> DirichletCalibration:
        """Fit on validation logits ``X`` (N, K) and labels ``y`` (N,).

        ``X`` may be 1-D probabilities of the positive class; ``sample_weight``
        (N,) weights the NLL (and the cross-validated NLL of a grid).
        """
        with single_blas_thread():
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None) -> DirichletCalibration:
        z, labels = check_fit_logits(X, y)
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, Integral) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        self._auto = isinstance(self.reg_lambda, str)
        if self._auto:
            if self.reg_lambda != "auto":
                raise ValueError(f"reg_lambda must be 'auto', a number or a sequence of "
                                 f"numbers, got {self.reg_lambda!r}")
            grid, patience = list(AUTO_GRID), self.patience
            if isinstance(patience, bool) or not isinstance(patience, Integral) or patience < 1:
                raise ValueError(f"patience must be a positive integer, got {patience!r}")
        else:
            grid = np.atleast_1d(np.asarray(self.reg_lambda, dtype=object)).ravel().tolist()
            if not grid:
                raise ValueError("reg_lambda must be a number or a non-empty sequence")
            grid, patience = [_check_reg(v, "reg_lambda") for v in grid], None
        if self.reg_mu is not None:
            _check_reg(self.reg_mu, "reg_mu")
        logp = log_softmax(z)
        self._stalled = 0
        if not self._auto:  # (lambda, mu) points: mu as given, else the same as lambda
            grid = [(lam, lam if self.reg_mu is None else float(self.reg_mu)) for lam in grid]
        lam, mu = (grid[0], grid[0]) if self._auto else grid[0]
        self.cv_lambdas_, self.cv_mus_ = np.array([lam]), np.array([mu])
        self.cv_scores_ = np.array([])
        if len(grid) > 1:
            lambdas, mus, scores, best = self._cv_path(logp, labels, grid, patience,
                                                       sample_weight)
            self.cv_lambdas_, self.cv_mus_ = np.array(lambdas), np.array(mus)
            self.cv_scores_ = np.array(scores)
            lam, mu = lambdas[best], mus[best]
        w, b, self.n_iter_ = self._fit_one(logp, labels, lam, mu, sample_weight=sample_weight)
        if self._stalled:
            warnings.warn(f"DirichletCalibration: {self._stalled} L-BFGS fit(s) stopped at "
                          f"max_iter={self.max_iter} iterations before converging; raise "
                          "max_iter or tol", ConvergenceWarning, stacklevel=3)
        self.coef_, self.intercept_, self.n_classes_ = w, b, int(z.shape[1])
        self.reg_lambda_, self.reg_mu_ = self._penalties(lam, mu, z.shape[1])
        self.accuracy_change_ = accuracy_change(z, self._predict_proba(z), labels)
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
