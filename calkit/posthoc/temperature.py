"""Temperature scaling and its linear generalisations: vector and matrix scaling.

:class:`TemperatureScaling` (Guo et al. 2017) divides the logits by one
temperature ``T`` fitted on validation data.  The mean negative log-likelihood
is convex in the inverse temperature ``beta = 1 / T`` (not in ``T``), with

* gradient ``g(beta) = mean_i E_{softmax(beta z_i)}[z] - mean_i z_{i, y_i}``,
* curvature ``h(beta) = mean_i Var_{softmax(beta z_i)}[z] >= 0``,

both from one pass over the logits.  The default solver is Newton's method on
``g(beta) = 0`` safeguarded by a bracket in ``log beta`` (a bisection step
whenever Newton leaves it), so a fit takes a handful of passes.  Each pass works
on row blocks of the max-shifted logits in their own precision (float32 stays
float32, so a 50,000 x 1,000 fit never makes a float64 copy) and accumulates
per-row sums in float64.  ``solver="lbfgs"`` minimises the same NLL over
``log T`` with L-BFGS-B; ``solver="grid"`` is the grid search of Mukhoti et al.
(2020) used by AdaFocal (T = 0.1, 0.2, ..., 10.0, built as ``k / 10``; the
smallest T wins ties).

:class:`VectorScaling` and :class:`MatrixScaling` fit ``softmax(z * w + b)`` and
``softmax(z W^T + b)`` by L-BFGS on the L2-regularised NLL (penalty towards the
identity map).  Temperature scaling never changes the argmax; vector and matrix
scaling can.

All three take **logits** of shape ``(N, K)``.  To calibrate probabilities,
pass ``np.log(p)`` (clipped away from zero): softmax recovers ``p`` from it.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from calkit import _array as xp
from calkit._array import is_torch, to_numpy
from calkit._validation import check_option
from calkit.binning import _bin_table
from calkit.logits import softmax
from calkit.metrics.binned import error_from_table
from calkit.posthoc._accuracy import accuracy_change
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._blas import single_blas_thread
from calkit.posthoc._persistence import ValueSpec

SOLVERS = ("newton", "lbfgs", "grid")
SELECTION_METRICS = ("nll", "ece_ew", "ece_em")
_BLOCK_ELEMENTS = 1 << 16  # logits per row block (256 KiB of float32: stays in L2)
_SAMPLES_ALONG_ROWS_BELOW_K = 64  # numpy layout (K, N) below this many classes, else (N, K)
_MAX_LOG_STEP = 1.0  # Newton trust region in log(1 / T): T changes by at most a factor e


# ----------------------------------------------------------------------------- the NLL in beta
class _TemperatureObjective:
    """Mean NLL of ``softmax(beta * z)`` and its derivatives in ``beta``, one pass each.

    The logits are shifted by their row maximum once (``s = z - max_k z``, all
    ``<= 0``), so ``exp(beta * s)`` never overflows for ``beta > 0`` and the true-class
    logit is gathered once.  With ``S_j = sum_k exp(beta s_k) s_k^j`` per row:
    ``NLL = mean(log S_0) - beta mean(s_y)``, ``g = mean(S_1 / S_0) - mean(s_y)`` and
    ``h = mean(S_2 / S_0 - (S_1 / S_0)^2)``.
    """

    def __init__(self, logits, labels, weights=None):
        self.torch = is_torch(logits)
        # normalised sample weights (float64, on the logits' device), or None: plain means
        self.weights = None if weights is None else xp.like(weights / weights.sum(), logits) \
            if self.torch else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        if self.torch:
            self.shifted = logits - logits.amax(1, keepdim=True)
            self.mean_true = self.mean(self.shifted.gather(1, labels[:, None])[:, 0].double())
        else:
            n, k = logits.shape
            # Few classes: lay the classes out along rows, (K, N), so that the per-sample
            # sums add K long contiguous rows instead of reducing N short ones (4x faster
            # at K = 10); many classes: keep (N, K) and avoid a transposed copy.
            self.class_axis = 0 if k < _SAMPLES_ALONG_ROWS_BELOW_K else 1
            z = logits.T if self.class_axis == 0 else logits
            self.shifted = np.subtract(z, z.max(axis=self.class_axis, keepdims=True),
                                       order="C")
            true = (self.shifted[labels, np.arange(n)] if self.class_axis == 0
                    else np.take_along_axis(self.shifted, labels[:, None], axis=1)[:, 0])
            self.mean_true = self.mean(true)
        # numpy float32 or torch.float32 (fitting runs in the logits' own precision)
        self.dtype = np.float32 if str(logits.dtype).endswith("float32") else np.float64

    def mean(self, values) -> float:
        """Mean over samples (weighted by the sample weights), as a Python float."""
        if self.weights is None:
            return float(values.mean(dtype=np.float64) if not self.torch else values.mean())
        return float((values * self.weights).sum())

    def moments(self, beta: float, order: int = 2) -> tuple[np.ndarray, ...]:
        """Per-sample ``S_0, ..., S_order`` as float64 arrays (numpy; torch on its device)."""
        if self.torch:
            return self._moments_torch(beta, order)
        s, axis = self.shifted, self.class_axis
        k = s.shape[axis]
        n = s.shape[1 - axis]
        out = [np.empty(n, dtype=np.float64) for _ in range(order + 1)]
        block = max(1, _BLOCK_ELEMENTS // k)
        e = np.empty((k, min(block, n)) if axis == 0 else (min(block, n), k), dtype=s.dtype)
        beta_ = s.dtype.type(beta)
        for start in range(0, n, block):
            samples = slice(start, min(start + block, n))
            m = samples.stop - start
            rows = s[:, samples] if axis == 0 else s[samples]
            buf = e[:, :m] if axis == 0 else e[:m]
            np.multiply(rows, beta_, out=buf)
            np.exp(buf, out=buf)
            out[0][samples] = buf.sum(axis=axis, dtype=np.float64)
            for j in range(1, order + 1):
                np.multiply(buf, rows, out=buf)
                out[j][samples] = buf.sum(axis=axis, dtype=np.float64)
        return tuple(out)

    def _moments_torch(self, beta, order):
        import torch

        s = self.shifted
        out = [[] for _ in range(order + 1)]
        block = max(1, (_BLOCK_ELEMENTS * 64) // s.shape[1])
        for start in range(0, s.shape[0], block):
            rows = s[start:start + block]
            buf = torch.exp(rows * beta)
            out[0].append(buf.sum(1, dtype=torch.float64))
            for j in range(1, order + 1):
                buf = buf * rows
                out[j].append(buf.sum(1, dtype=torch.float64))
        return tuple(torch.cat(parts) for parts in out)

    def gradient_curvature(self, beta: float) -> tuple[float, float]:
        s0, s1, s2 = self.moments(beta, 2)
        mean1 = s1 / s0
        g = self.mean(mean1) - self.mean_true
        h = self.mean(s2 / s0 - mean1 * mean1)
        return g, h

    def value_gradient(self, beta: float) -> tuple[float, float]:
        s0, s1 = self.moments(beta, 1)
        log_s0 = s0.log() if self.torch else np.log(s0)
        value = self.mean(log_s0) - beta * self.mean_true
        return value, self.mean(s1 / s0) - self.mean_true

    def confidence(self, beta: float):
        """Top-label confidence ``max_k softmax(beta z)_k = 1 / S_0``, float64 numpy."""
        return 1.0 / np.asarray(to_numpy(self.moments(beta, 0)[0]))


def _newton_beta(obj: _TemperatureObjective, beta_min: float, beta_max: float,
                 tol: float, max_iter: int) -> tuple[float, int, bool]:
    """Root of the increasing gradient ``g(beta)`` in ``[beta_min, beta_max]``.

    Newton steps in ``u = log beta`` (``du = -g / (beta h)``, which overshoots less
    than steps in ``beta`` from ``beta = 1``), at most ``_MAX_LOG_STEP`` long and
    inside the current bracket, and bisection in ``u`` when a step leaves it; a
    step past an unvisited bound evaluates the bound itself, where a gradient
    pointing outwards ends the search.  Returns ``(beta, passes, converged)``;
    ``beta`` is a bound when the optimum lies beyond it.
    """
    u_min, u_max = float(np.log(beta_min)), float(np.log(beta_max))
    lo, hi = u_min, u_max  # g(lo) < 0 < g(hi) once both ends are evaluated
    seen_lo = seen_hi = False
    u = float(np.clip(0.0, u_min, u_max))
    for it in range(1, max_iter + 1):
        beta = float(np.exp(u))
        g, h = obj.gradient_curvature(beta)
        if g == 0:
            return beta, it, True
        if g > 0:
            if u <= u_min:
                return beta_min, it, True
            hi, seen_hi = u, seen_hi or u >= u_max
        else:
            if u >= u_max:
                return beta_max, it, True
            lo, seen_lo = u, seen_lo or u <= u_min
        # Newton step in u, at most _MAX_LOG_STEP (saturated probabilities make h tiny)
        step = -g / (beta * h) if h > 0 else -np.sign(g) * _MAX_LOG_STEP
        new = u + float(np.clip(step, -_MAX_LOG_STEP, _MAX_LOG_STEP))
        # an unclipped Newton step that stays inside the bracket
        newton = lo < new < hi and abs(step) < _MAX_LOG_STEP
        if lo < new < hi:
            pass
        elif g < 0 and hi == u_max and not seen_hi:
            new = u_max  # the step points past the upper bound: test the bound itself
        elif g > 0 and lo == u_min and not seen_lo:
            new = u_min
        else:
            new = 0.5 * (lo + hi)
        # Newton converges quadratically: after a step of size d the error is O(d^2),
        # so a Newton step below sqrt(tol) already lands within tol of the root.
        if abs(new - u) <= (np.sqrt(tol) if newton else tol) or hi - lo <= tol:
            return float(np.exp(new)), it, True
        u = new
    return float(np.exp(u)), max_iter, False


def _grid_temperatures() -> np.ndarray:
    """T = 0.1, 0.2, ..., 10.0: each value is the correctly rounded ``k / 10`` (no drift)."""
    return np.arange(1, 101, dtype=np.float64) / 10


class TemperatureScaling(BaseCalibrator):
    """Temperature scaling: ``softmax(z / T)`` with ``T`` fitted on validation logits.

    Parameters
    ----------
    solver : {"newton", "lbfgs", "grid"}, default="newton"
        ``"newton"``: safeguarded Newton on the NLL gradient in ``beta = 1 / T``
        (see the module docstring).  ``"lbfgs"``: L-BFGS-B on the NLL over
        ``log T``.  ``"grid"``: the AdaFocal / Mukhoti et al. grid
        ``T in {0.1, ..., 10.0}``, picking the T that minimises ``selection``.
    selection : {"ece_ew", "ece_em", "nll"}, default="ece_ew"
        Grid criterion (``solver="grid"`` only): 15-bin equal-width top-label ECE
        (bins ``(a, b]``, the reference code), 15-bin equal-mass ECE, or NLL.
    t_bounds : tuple of float, default=(0.01, 100.0)
        Range of ``T`` for the Newton and L-BFGS solvers.  When the optimum lies
        beyond a bound (e.g. separable data drives ``T -> 0``) the bound is
        returned with a ``ConvergenceWarning``.
    tol : float, default=1e-8
        Relative tolerance on ``beta`` (Newton: raised to twice the machine epsilon
        of the logits, ~2.4e-7 for float32, which is as precise as their ``beta``).
    max_iter : int, default=100
        Iteration limit of the Newton and L-BFGS solvers.

    Attributes
    ----------
    temperature_ : float
        The fitted ``T``.
    n_classes_ : int
        Number of classes seen in ``fit``.
    n_iter_ : int
        Passes over the logits (Newton), or solver iterations.

    Notes
    -----
    ``fit`` takes logits ``(N, K)`` (float32 logits are processed in float32 with
    float64 sums; torch tensors are fitted on their device) and integer labels.
    A calibration set with one class only is accepted: its NLL optimum is usually
    at a bound (the warning says so).  ``predict`` returns the argmax of the
    logits, which temperature scaling never changes.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.temperature import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 5)) * 3
    >>> y = np.array([rng.choice(5, p=np.exp(r) / np.exp(r).sum()) for r in z / 2])
    >>> ts = TemperatureScaling().fit(z, y)
    >>> round(ts.temperature_, 1)
    2.0
    >>> ts.predict_proba(z[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _keeps_argmax = True
    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "temperature_": ValueSpec("float", gt=0), "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "n_iter_": ValueSpec("int", ge=0, required=False)}

    def __init__(self, solver: str = "newton", selection: str = "ece_ew",
                 t_bounds: tuple[float, float] = (0.01, 100.0), tol: float = 1e-8,
                 max_iter: int = 100):
        self.solver = solver
        self.selection = selection
        self.t_bounds = t_bounds
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight=None) -> TemperatureScaling:
        """Fit ``T`` on validation logits ``X`` (N, K) and labels ``y`` (N,).

        ``X`` may be 1-D probabilities of the positive class (read as the logits
        ``(log(1 - p), log p)``); ``sample_weight`` (N,) weights the NLL.
        """
        check_option(self.solver, "solver", SOLVERS)
        check_option(self.selection, "selection", SELECTION_METRICS)
        t_min, t_max = _check_bounds(self.t_bounds)
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        z, labels = check_fit_logits(X, y, keep_float32=True, keep_torch=True)
        obj = _TemperatureObjective(z, labels, sample_weight)
        if self.solver == "grid":
            t = self._fit_grid(obj, labels, z, sample_weight)
            self.n_iter_ = 100
        elif self.solver == "lbfgs":
            t = self._fit_lbfgs(obj, t_min, t_max)
        else:
            # T is no more precise than the logits: float32 resolves beta to ~1e-7
            tol = max(self.tol, 2 * float(np.finfo(obj.dtype).eps))
            beta, self.n_iter_, ok = _newton_beta(obj, 1 / t_max, 1 / t_min, tol,
                                                  self.max_iter)
            if not ok:
                warnings.warn(f"temperature scaling did not converge in {self.max_iter} "
                              "iterations", ConvergenceWarning, stacklevel=2)
            t = 1.0 / beta
        if self.solver != "grid" and (np.isclose(t, t_min, rtol=1e-9)
                                      or np.isclose(t, t_max, rtol=1e-9)):
            warnings.warn(f"the fitted temperature {t:.4g} is at the bound t_bounds="
                          f"{tuple(self.t_bounds)} (separable or degenerate calibration "
                          "data?); widen t_bounds to go further", ConvergenceWarning,
                          stacklevel=2)
        self.temperature_ = float(t)
        self.n_classes_ = int(z.shape[1])
        return self

    def _fit_lbfgs(self, obj, t_min, t_max) -> float:
        def fun(u):  # u = log T, beta = exp(-u)
            beta = float(np.exp(-u[0]))
            value, g = obj.value_gradient(beta)
            return value, np.array([-beta * g])

        res = minimize(fun, x0=np.array([0.0]), jac=True, method="L-BFGS-B",
                       bounds=[(np.log(t_min), np.log(t_max))],
                       options={"maxiter": self.max_iter, "ftol": 1e-15, "gtol": 1e-12})
        self.n_iter_ = int(res.nit)
        return float(np.exp(res.x[0]))

    def _fit_grid(self, obj, labels, z, weights=None) -> float:
        temps = _grid_temperatures()
        if self.selection == "nll":
            scores = [obj.value_gradient(1 / t)[0] for t in temps]
        else:
            zn = z.detach().cpu().numpy() if is_torch(z) else z
            correct = zn.argmax(axis=1) == np.asarray(to_numpy(labels))
            strategy = "uniform" if self.selection == "ece_ew" else "quantile"
            n_bins = min(15, int(zn.shape[0]))
            scores = [float(error_from_table(_bin_table(obj.confidence(1 / t), correct,
                                                        n_bins, strategy, "right", weights)))
                      for t in temps]
        return float(temps[int(np.argmin(scores))])  # first minimum: the smallest T wins

    def _predict_proba(self, X):
        z = check_predict_logits(X, self.n_classes_, type(self).__name__)
        return softmax(z / z.dtype.type(self.temperature_))

    def _predict_proba_torch(self, X):
        z = check_predict_logits(X, self.n_classes_, type(self).__name__)
        return (z / self.temperature_).softmax(dim=1)


def _check_bounds(bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"t_bounds must be a pair (low, high), got {bounds!r}") from exc
    if not (0 < lo < hi < np.inf):
        raise ValueError(f"t_bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    return lo, hi


# ----------------------------------------------------------------------------- vector / matrix
def _affine(z, w, b):
    """``z * w + b`` for a per-class ``w`` (vector scaling), else ``z W^T + b`` (numpy or torch)."""
    return (z * w if w.ndim == 1 else z @ w.T) + b


def _affine_nll(params, z, onehot, reg, shape_w, center_w, weights=None):
    """Regularised mean NLL of ``softmax(z * w + b)`` / ``softmax(z W^T + b)`` and gradient.

    ``weights``: per-sample weights summing to one (a weighted mean NLL), or None.
    """
    n, k = z.shape
    w = params[:-k].reshape(shape_w)
    b = params[-k:]
    a = _affine(z, w, b)
    a -= a.max(axis=1, keepdims=True)
    e = np.exp(a)
    s = e.sum(axis=1, keepdims=True)
    logp = a - np.log(s)
    if weights is None:
        value = -(logp * onehot).sum() / n
        r = (e / s - onehot) / n  # dNLL / d(pre-softmax)
    else:
        value = -float((logp * onehot).sum(axis=1) @ weights)
        r = (e / s - onehot) * weights[:, None]
    grad_w = (r * z).sum(axis=0) if w.ndim == 1 else r.T @ z
    grad_b = r.sum(axis=0)
    dw = w - center_w
    value += reg * (np.sum(dw * dw) + np.sum(b * b))
    grad = np.concatenate([(grad_w + 2 * reg * dw).ravel(), grad_b + 2 * reg * b])
    return value, grad


def _affine_curvature(params, z, reg, shape_w, weights=None):
    """Diagonal of the Hessian of :func:`_affine_nll` at ``params`` (the preconditioner).

    ``weights`` (summing to one) make it the weighted mean, so a weighted fit and
    the fit of the rows repeated by their weights take the same path.
    """
    k = z.shape[1]
    w, b = params[:-k].reshape(shape_w), params[-k:]
    p = softmax(_affine(z, w, b))
    d = p * (1 - p)
    d = d / len(z) if weights is None else d * weights[:, None]
    diag_w = (d * z * z).sum(axis=0) if w.ndim == 1 else d.T @ (z * z)
    diag = np.concatenate([diag_w.ravel(), d.sum(axis=0)]) + 2 * reg
    return np.maximum(diag, 1e-12)


class _AffineScaling(BaseCalibrator):
    """Shared fit/predict of vector and matrix scaling (not used directly)."""

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "coef_": ValueSpec("array", shape=("K",)), "intercept_": ValueSpec("array", shape=("K",)),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "n_iter_": ValueSpec("int", ge=0, required=False),
        "accuracy_change_": ValueSpec("unsaved")}
    _diagonal: ClassVar[bool] = True

    def __init__(self, reg: float = 1e-4, max_iter: int = 1000, tol: float = 1e-10):
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None):
        """Fit on validation logits ``X`` (N, K) and labels ``y`` (N,).

        ``X`` may be 1-D probabilities of the positive class; ``sample_weight``
        (N,) weights the NLL (the penalty is unchanged).
        """
        if isinstance(self.reg, bool) or not (np.isscalar(self.reg) and self.reg >= 0):
            raise ValueError(f"reg must be a non-negative number, got {self.reg!r}")
        z, labels = check_fit_logits(X, y)
        n, k = z.shape
        onehot = np.zeros((n, k))
        onehot[np.arange(n), labels] = 1.0
        # The penalty (and the start) is centred on the temperature-scaled map I / T, so a
        # strong penalty falls back to temperature scaling rather than to the raw logits.
        with warnings.catch_warnings():  # a T at its bound is still a fine starting point
            warnings.simplefilter("ignore", ConvergenceWarning)
            inv_t = 1.0 / TemperatureScaling().fit(z, labels, sample_weight).temperature_
        center = inv_t * (np.ones(k) if self._diagonal else np.eye(k))
        x0 = np.concatenate([center.ravel(), np.zeros(k)])
        weights = None if sample_weight is None else sample_weight / np.sum(sample_weight)
        # Jacobi preconditioning: each parameter divided by the square root of the
        # objective's curvature along it at the start (logits of very different scales
        # otherwise make L-BFGS crawl; on CIFAR-100 matrix scaling took 6 s)
        scale = np.sqrt(_affine_curvature(x0, z, float(self.reg), center.shape, weights))
        args = (z, onehot, float(self.reg), center.shape, center, weights)

        def objective(u):
            value, grad = _affine_nll(u / scale, *args)
            return value, grad / scale

        with single_blas_thread():  # small products: BLAS threads only wait (see _blas)
            res = minimize(objective, x0 * scale, jac=True, method="L-BFGS-B",
                           options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-9})
        if not res.success and res.nit >= self.max_iter:
            warnings.warn(f"{type(self).__name__} did not converge in {self.max_iter} "
                          "iterations", ConvergenceWarning, stacklevel=2)
        res.x = res.x / scale
        self.coef_ = res.x[:-k].reshape(center.shape)
        self.intercept_ = res.x[-k:]
        self.n_classes_ = k
        self.n_iter_ = int(res.nit)
        self.accuracy_change_ = accuracy_change(z, self._predict_proba(z), labels)
        return self


    def _predict_proba(self, X):
        z = check_predict_logits(X, self.n_classes_, type(self).__name__)
        z = np.asarray(z, dtype=np.float64)
        return softmax(_affine(z, np.asarray(self.coef_), np.asarray(self.intercept_)))

    def _predict_proba_torch(self, X):
        import torch

        z = check_predict_logits(X, self.n_classes_, type(self).__name__)
        w = torch.as_tensor(np.asarray(self.coef_), dtype=z.dtype, device=z.device)
        b = torch.as_tensor(np.asarray(self.intercept_), dtype=z.dtype, device=z.device)
        return _affine(z, w, b).softmax(dim=1)


class VectorScaling(_AffineScaling):
    """Vector scaling: ``softmax(z * w + b)`` with per-class ``w`` and ``b`` (Guo et al. 2017).

    Fitted by L-BFGS on ``mean NLL + reg * (||w - 1/T||^2 + ||b||^2)`` from the
    temperature-scaled map (``w = 1/T, b = 0``, ``T`` fitted first by
    :class:`TemperatureScaling`), on Jacobi-preconditioned parameters.  Takes
    logits ``(N, K)``.  Vector scaling **can change predictions** (the biases
    move classes); ``accuracy_change_`` records the accuracy change on the
    fitting data.

    Parameters
    ----------
    reg : float, default=1e-4
        L2 penalty towards the temperature-scaled map.
    max_iter : int, default=1000
        L-BFGS iteration limit.
    tol : float, default=1e-10
        L-BFGS relative function tolerance.

    Attributes
    ----------
    coef_ : ndarray of shape (K,)
    intercept_ : ndarray of shape (K,)
    n_classes_ : int
    accuracy_change_ : float
        Accuracy on the fitting data after minus before calibration.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.temperature import VectorScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3))
    >>> y = z.argmax(1)
    >>> VectorScaling().fit(z, y).predict_proba(z[:1]).shape
    (1, 3)
    """

    _diagonal = True


class MatrixScaling(_AffineScaling):
    """Matrix scaling: ``softmax(z W^T + b)`` with a full ``K x K`` matrix (Guo et al. 2017).

    Fitted by L-BFGS on ``mean NLL + reg * (||W - I/T||_F^2 + ||b||^2)`` from the
    temperature-scaled map ``I / T`` (``T`` fitted first by :class:`TemperatureScaling`);
    the penalty keeps the ``K^2 + K`` parameters in check on small calibration sets
    and falls back to temperature scaling when strong.  On CIFAR-100 (5,000
    validation samples, K = 100) ``reg=0.1`` gives test ECE 0.017 where a penalty
    towards the identity with ``reg=1e-4`` overfits (ECE 0.29).  Takes logits
    ``(N, K)``.  Matrix scaling **can change predictions**; ``accuracy_change_``
    records the accuracy change on the fitting data.  Each L-BFGS step costs
    an ``(N, K) x (K, K)`` product (Jacobi-preconditioned parameters keep the
    number of steps small).

    Parameters
    ----------
    reg : float, default=0.1
        L2 penalty towards the temperature-scaled map.
    max_iter : int, default=1000
        L-BFGS iteration limit.
    tol : float, default=1e-10
        L-BFGS relative function tolerance.

    Attributes
    ----------
    coef_ : ndarray of shape (K, K)
    intercept_ : ndarray of shape (K,)
    n_classes_ : int
    accuracy_change_ : float
        Accuracy on the fitting data after minus before calibration.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.temperature import MatrixScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 3))
    >>> MatrixScaling().fit(z, z.argmax(1)).coef_.shape
    (3, 3)
    """

    _diagonal = False
    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        **_AffineScaling._fitted_spec, "coef_": ValueSpec("array", shape=("K", "K"))}

    def __init__(self, reg: float = 0.1, max_iter: int = 1000, tol: float = 1e-10):
        super().__init__(reg=reg, max_iter=max_iter, tol=tol)
