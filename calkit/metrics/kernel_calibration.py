"""Squared kernel calibration error (SKCE; Widmann, Lindsten and Zachariah 2019).

For probability vectors ``p`` and labels ``y`` and a matrix-valued kernel
``kappa(p, p') I_K``, the SKCE is ``E h(i, j)`` over independent pairs with

``h(i, j) = kappa(p_i, p_j) (e_{y_i} - p_i)^T (e_{y_j} - p_j)``
``       = kappa(p_i, p_j) (1[y_i = y_j] - p_i[y_j] - p_j[y_i] + <p_i, p_j>)``.

It is zero exactly when the model is calibrated (canonical, full-vector
calibration) for a characteristic kernel.  Three estimators:

* ``"unbiased"``: ``2 / (n (n - 1)) sum_{i < j} h(i, j)`` (may be negative);
* ``"biased"``: ``n^-2 sum_{i, j} h(i, j)`` (never negative);
* ``"linear"``: the mean of ``h(2i - 1, 2i)`` over consecutive pairs, O(n)
  time and memory (depends on the sample order).

The quadratic estimators run over row blocks, so memory stays
O(block x n) while the time is O(n^2 K).  For a binary task given as 1-D
positive-class probabilities the kernel's distance is ``|p - p'|`` on those
scores and ``h = 2 kappa (y - p)(y' - p')``.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from scipy import stats

from calkit import _array as xp
from calkit._validation import check_classification, check_option
from calkit.metrics.calibration_tests import CalibrationTestResult

ESTIMATORS = ("unbiased", "biased", "linear")
KERNELS = ("laplacian", "gaussian")
_BLOCK_ELEMENTS = 1 << 22  # kernel entries per row block (32 MiB of float64)
_MEDIAN_SAMPLE = 2000  # at most this many samples for the median-distance bandwidth


def _vectors(y_true, y_prob, sum_tol) -> tuple[np.ndarray, np.ndarray, bool]:
    """float64 probability matrix (or 1-D scores), int labels, and whether input was 1-D."""
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    p = np.asarray(xp.to_numpy(data.y_prob), dtype=np.float64)
    return p, np.asarray(xp.to_numpy(data.y_true)), p.ndim == 1


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b`` (1-D: absolute differences)."""
    if a.ndim == 1:
        return np.abs(a[:, None] - b[None, :])
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def median_bandwidth(p: np.ndarray, random_state=0) -> float:
    """Median pairwise Euclidean distance of the predictions (the median heuristic).

    Computed on at most 2,000 samples (drawn with ``random_state`` when there are
    more), over distinct pairs ``i < j``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.kernel_calibration import median_bandwidth
    >>> median_bandwidth(np.array([0.1, 0.2, 0.4, 0.8]))
    0.35
    """
    p = np.asarray(p, dtype=np.float64)
    if p.shape[0] > _MEDIAN_SAMPLE:
        rng = np.random.default_rng(random_state)
        p = p[rng.choice(p.shape[0], _MEDIAN_SAMPLE, replace=False)]
    d = _distances(p, p)[np.triu_indices(p.shape[0], 1)]
    med = float(np.median(d)) if d.size else 0.0
    if not med > 0:
        raise ValueError("the median distance between predictions is 0 (most predictions are "
                         "identical); pass an explicit bandwidth")
    return med


def _kernel(d: np.ndarray, kernel: str, bandwidth: float) -> np.ndarray:
    if kernel == "laplacian":
        return np.exp(-d / bandwidth)
    return np.exp(-0.5 * (d / bandwidth) ** 2)


def _h_block(p, y, rows: slice, cols: slice, kernel, bandwidth, binary) -> np.ndarray:
    """``h(i, j)`` for i in ``rows`` and j in ``cols``."""
    k = _kernel(_distances(p[rows], p[cols]), kernel, bandwidth)
    if binary:
        r_i, r_j = y[rows] - p[rows], y[cols] - p[cols]
        return 2.0 * k * r_i[:, None] * r_j[None, :]
    pi, pj, yi, yj = p[rows], p[cols], y[rows], y[cols]
    inner = pi @ pj.T
    inner += yi[:, None] == yj[None, :]
    inner -= pi[:, yj]
    inner -= pj[:, yi].T
    return k * inner


def _pair_h(p, y, kernel, bandwidth, binary) -> np.ndarray:
    """``h(2i - 1, 2i)`` of consecutive pairs (the linear estimator's terms)."""
    m = p.shape[0] // 2
    a, b = p[0:2 * m:2], p[1:2 * m:2]
    ya, yb = y[0:2 * m:2], y[1:2 * m:2]
    if binary:
        k = _kernel(np.abs(a - b), kernel, bandwidth)
        return 2.0 * k * (ya - a) * (yb - b)
    k = _kernel(np.sqrt(np.maximum(((a - b) ** 2).sum(1), 0.0)), kernel, bandwidth)
    rows = np.arange(m)
    inner = (a * b).sum(1) + (ya == yb) - a[rows, yb] - b[rows, ya]
    return k * inner


def _quadratic_sums(p, y, kernel, bandwidth, binary) -> tuple[float, float]:
    """``sum_{i != j} h(i, j)`` and ``sum_i h(i, i)`` over row blocks."""
    n = p.shape[0]
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    off, diag = 0.0, 0.0
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        h = _h_block(p, y, rows, slice(0, n), kernel, bandwidth, binary)
        d = np.diagonal(h[:, rows]).sum()
        diag += d
        off += h.sum() - d
    return off, diag


def _settings(kernel, bandwidth, estimator, n, binary) -> dict:
    return dict(kernel=kernel, bandwidth=bandwidth, estimator=estimator, n_samples=n,
                form="binary (1-D scores)" if binary else "canonical (probability vectors)")


def _check_kernel_args(kernel, bandwidth, p, random_state) -> float:
    check_option(kernel, "kernel", KERNELS)
    if isinstance(bandwidth, str):
        check_option(bandwidth, "bandwidth", ("median",))
        return median_bandwidth(p, random_state)
    if not isinstance(bandwidth, Real) or isinstance(bandwidth, bool) or not (
            math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be 'median' or a positive finite number, "
                         f"got {bandwidth!r}")
    return float(bandwidth)


def skce(y_true, y_prob, *, estimator: str = "unbiased", kernel: str = "laplacian",
         bandwidth: float | str = "median", random_state=0,
         sum_tol: float | None = None) -> float:
    """Squared kernel calibration error of Widmann, Lindsten and Zachariah (2019).

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    estimator : {"unbiased", "biased", "linear"}, default="unbiased"
        See the module docstring; ``"linear"`` is O(N).
    kernel : {"laplacian", "gaussian"}, default="laplacian"
        ``exp(-d / bandwidth)`` or ``exp(-d^2 / (2 bandwidth^2))`` of the
        Euclidean distance ``d`` between predictions, times the identity.
    bandwidth : float or "median", default="median"
        Kernel length scale; ``"median"``: the median pairwise distance of the
        predictions (:func:`median_bandwidth`, on at most 2,000 of them).
    random_state : int or numpy Generator, default=0
        Seeds the subsample of the median heuristic.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import skce
    >>> p = np.array([[0.1, 0.8, 0.1], [0.2, 0.5, 0.3]])
    >>> round(skce([1, 2], p, bandwidth=1.0), 12)    # pycalibration's README example
    -0.103179434534
    """
    check_option(estimator, "estimator", ESTIMATORS)
    p, y, binary = _vectors(y_true, y_prob, sum_tol)
    bw = _check_kernel_args(kernel, bandwidth, p, random_state)
    n = p.shape[0]
    if estimator == "linear":
        if n < 2:
            raise ValueError("the linear SKCE estimator needs at least 2 samples")
        return float(_pair_h(p, y, kernel, bw, binary).mean())
    off, diag = _quadratic_sums(p, y, kernel, bw, binary)
    if estimator == "biased":
        return float((off + diag) / n ** 2)
    if n < 2:
        raise ValueError("the unbiased SKCE estimator needs at least 2 samples")
    return float(off / (n * (n - 1)))


def skce_test(y_true, y_prob, *, method: str = "linear", kernel: str = "laplacian",
              bandwidth: float | str = "median", n_bootstrap: int = 1000, random_state=0,
              sum_tol: float | None = None) -> CalibrationTestResult:
    """Test of calibration with the SKCE (Widmann, Lindsten and Zachariah 2019).

    Null hypothesis: the model is calibrated (so the SKCE is 0).

    The linear test needs many samples for power; the bootstrap test is the
    stronger one up to 10,000 samples.

    * ``method="linear"``: the linear estimator's terms ``h(2i - 1, 2i)`` are
      i.i.d. with mean SKCE; ``z = mean / (sd / sqrt(m))`` over the ``m`` pairs
      is asymptotically standard normal under the null, one-sided p-value
      ``1 - Phi(z)``.  O(N): the test for large samples.
    * ``method="bootstrap"``: the statistic
      ``T = n / (n - 1) SKCE_unbiased - SKCE_biased`` with the bootstrap
      null of the asymptotic quadratic test (CalibrationTests.jl's
      ``AsymptoticSKCETest``): ``p = (1 + #{T* >= T}) / (1 + n_bootstrap)``.
      Needs the ``N x N`` matrix of ``h``: at most 10,000 samples.

    Parameters
    ----------
    y_true, y_prob, kernel, bandwidth, sum_tol
        As for :func:`skce`.
    method : {"linear", "bootstrap"}, default="linear"
    n_bootstrap : int, default=1000
        Bootstrap resamples (``method="bootstrap"``).
    random_state : int or numpy Generator, default=0
        Seeds the bootstrap and the median heuristic.

    Returns
    -------
    CalibrationTestResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import skce_test
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=500)
    >>> y = (rng.uniform(size=(500, 1)) > p.cumsum(1)).sum(1)   # y ~ Categorical(p)
    >>> skce_test(y, p, method="bootstrap").reject()
    False
    >>> sharp = p ** 3 / (p ** 3).sum(1, keepdims=True)            # over-confident
    >>> skce_test(y, sharp, method="bootstrap").reject()
    True
    """
    check_option(method, "method", ("linear", "bootstrap"))
    p, y, binary = _vectors(y_true, y_prob, sum_tol)
    bw = _check_kernel_args(kernel, bandwidth, p, random_state)
    n = p.shape[0]
    settings = _settings(kernel, bw, "linear" if method == "linear" else "quadratic", n, binary)
    settings.update(test="skce", method=method)
    if method == "linear":
        h = _pair_h(p, y, kernel, bw, binary)
        if h.shape[0] < 2:
            raise ValueError("the linear SKCE test needs at least 4 samples")
        sd = float(h.std(ddof=1))
        if not sd > 0:
            raise ValueError("the linear SKCE terms have zero variance; the test is undefined")
        z = float(h.mean() / (sd / math.sqrt(h.shape[0])))
        return CalibrationTestResult(z, float(stats.norm.sf(z)), settings)
    if n > 10_000:
        raise ValueError(f"method='bootstrap' needs the {n} x {n} kernel matrix; use at most "
                         "10,000 samples or method='linear'")
    if n < 2:
        raise ValueError("the bootstrap SKCE test needs at least 2 samples")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    h = _h_block(p, y, slice(0, n), slice(0, n), kernel, bw, binary)
    diag = np.diagonal(h).copy()
    total = h.sum()
    statistic = float((n / (n - 1)) * (total - diag.sum()) / (n * (n - 1)) - total / n ** 2)
    rng = np.random.default_rng(random_state)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(np.float64)
    quad = np.einsum("bi,bi->b", counts @ h, counts)       # c^T H c
    lin = counts @ h.sum(1)                                  # c^T H 1
    null = ((n / (n - 1)) * (quad - counts @ diag) - 2.0 * lin) / n ** 2
    settings.update(n_bootstrap=n_bootstrap)
    pvalue = float((1 + np.count_nonzero(null >= statistic)) / (1 + n_bootstrap))
    return CalibrationTestResult(statistic, pvalue, settings, null_distribution=null)

