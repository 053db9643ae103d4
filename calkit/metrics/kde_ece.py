"""KDE calibration errors of two seed papers: Mix-n-Match's KDE-ECE and the canonical ECE^KDE.

Both replace the bins of the ECE by kernel density estimates of the scores.

**KDE-ECE** (:func:`kde_ece`; Zhang, Kailkhura and Han 2020, "Mix-n-Match:
ensemble and compositional methods for uncertainty calibration in deep
learning", reference code ``util_evaluation.ece_kde_binary``).  With ``f`` the
density of the scores and ``f1`` that of the scores whose target is 1 (both
triweight KDEs with the same bandwidth), ``pi = mean(target)`` and the smoothed
accuracy ``acc(c) = min(pi f1(c) / f(c), 1)``,

``KDE-ECE^order = int_0^1 |c - acc(c)|^order f(c) dc / int_0^1 f(c) dc``.

The conventions of the reference code are kept, so the numbers agree with it:

* bandwidth ``h = std(scores with target 1) (2 N)^(-1/5)`` (population
  standard deviation, ``N`` all samples), the same ``h`` for both densities;
  ``h`` is the kernel's standard deviation (KDEpy's ``bw``), so the triweight
  kernel ``35/32 (1 - u^2)^3 / (3 h)``, ``u = (c - s) / (3 h)``, reaches
  ``3 h`` to each side;
* reflection at the boundary: a score below 1/2 is mirrored about 0, one at or
  above 1/2 about 1; the density is set to 0 outside ``(0, 1)`` and doubled;
* both densities are evaluated on ``linspace(-0.6, 1.6, 2^14)`` (the data are
  split linearly onto the two nearest grid points, then convolved with the
  kernel sampled on the grid, as KDEpy's ``FFTKDE`` does); where
  ``max(f1, f) <= 1e-6`` (a gap in the data) the integrand keeps the value of
  the previous grid point, and both integrals are trapezoid sums over the grid
  points in ``[0, 1]``;
* the value is ``KDE-ECE^order`` (the ``order``-th power, no root: order 2 is
  the squared error), as the reference function returns it.

The cost is O(N) for the binning plus O(G L) for the grid convolution (``G``
grid points, ``L = 3 h / spacing`` kernel points): a million samples take well
under a second.

**ECE^KDE** (:func:`canonical_kde_ece`; Popordanoska, Sayer and Blaschko 2022,
"A consistent and differentiable Lp canonical calibration error estimator",
reference code ``ece_kde.get_ece_kde``).  The calibration map ``E[e_y | f]`` at
each sample is a leave-one-out Nadaraya-Watson estimate with a Dirichlet
kernel on the probability simplex,

``r_i = sum_{j != i} k(f_i; f_j) e_{y_j} / sum_{j != i} k(f_i; f_j)``,
``k(f_i; f_j) = Dirichlet(f_i; alpha = f_j / h + 1)``,

and ``ECE^KDE = mean_i sum_c |r_ic - f_ic|^order`` estimates the canonical
``ECE^order`` (again the power, no root).  It is O(N^2 K) by nature; the
kernel is evaluated in row blocks in log space (log-sum-exp in float64,
memory O(block x N), never an N x N x K tensor), and ``max_samples`` refuses
sizes whose cost the caller did not ask for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from calkit import _array as xp
from calkit._export import Exportable, json_ready
from calkit._validation import check_classification, check_int, check_option, check_positive
from calkit.metrics._views import resolve_view, score_target_pairs
from calkit.metrics.smooth import SmoothECEResult

#: views of :func:`kde_ece` (one (score, target) pair per sample)
KDE_ECE_VIEWS = ("top_label", "positive", "confidence")
#: views of :func:`canonical_kde_ece`
CANONICAL_VIEWS = ("canonical", "classwise", "top_label", "positive", "confidence")
#: the reference's evaluation grid: ``linspace(-0.6, 1.6, 2^14)``
GRID_RANGE = (-0.6, 1.6)
DEFAULT_GRID = 2 ** 14
#: support radius of the unit-variance triweight kernel (its variance is 1/9 of its width^2)
TRIWEIGHT_RADIUS = 3.0
#: the reference treats the densities as zero where both are at most this
DENSITY_FLOOR = 1e-6
#: default largest sample for the O(N^2) canonical estimator
MAX_SAMPLES = 20_000
_BLOCK_ELEMENTS = 1 << 22  # kernel entries per row block (32 MiB of float64)


@dataclass(frozen=True, repr=False)
class KDEECEResult(SmoothECEResult):
    """Mix-n-Match KDE-ECE with its bandwidth and the KDE reliability curve.

    The fields are those of :class:`calkit.metrics.smooth.SmoothECEResult`
    (``to_dict()``, ``to_frame()`` and ``curve`` work the same way).

    Attributes
    ----------
    value : float
        ``KDE-ECE^order`` (``settings["order"]``; order 2 is the squared error).
    sigma : float
        The bandwidth ``h``: the triweight kernel's standard deviation (its
        support is ``+-3 h``); also available as :attr:`bandwidth`.
    grid : ndarray of shape (M,)
        The evaluation grid points in ``[0, 1]``.
    residual : ndarray of shape (M,)
        ``grid - acc(grid)`` (positive: over-confident there); in gaps of the
        data the accuracy of the previous grid point is kept, as the reference
        keeps its integrand.
    density : ndarray of shape (M,)
        The reflected KDE ``f`` of the scores, scaled to mean 1 over the grid.
    settings : dict
        ``view``, ``order``, ``bandwidth_rule``, ``kernel``, ``boundary``,
        ``n_grid``, ``grid_range``, ``n_samples``, ``n_positive``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import kde_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p ** 2).astype(int)   # over-confident
    >>> r = kde_ece(y, p, view="positive")
    >>> round(float(r), 3), round(r.bandwidth, 4), r.settings["order"]
    (0.169, 0.0369, 1)
    >>> bool((r.residual[(r.grid > 0.2) & (r.grid < 0.8)] > 0).all())
    True
    """

    @property
    def bandwidth(self) -> float:
        """The bandwidth ``h`` (same as ``sigma``)."""
        return self.sigma

    def __repr__(self) -> str:
        return (f"KDEECEResult(KDE-ECE^{self.settings.get('order')}={float(self):.6f}, "
                f"bandwidth={self.sigma:.6g})")


@dataclass(frozen=True)
class KDECalibrationResult(Exportable):
    """Popordanoska et al.'s ECE^KDE with the leave-one-out estimates behind it.

    Attributes
    ----------
    value : float
        The estimate of ``ECE^order`` (the power, no root).
    bandwidth : float
        The Dirichlet / Beta kernel bandwidth ``h``.
    recalibrated : ndarray
        The leave-one-out kernel estimate ``r_i`` of ``E[target | score]`` at
        every sample: shape ``(N, K)`` for the canonical and class-wise views,
        ``(N,)`` for the others.
    per_class : ndarray or None
        ``mean_i |r_ik - f_ik|^order`` of each class for ``view="classwise"``.
    settings : dict
        ``view``, ``order``, ``bandwidth``, ``kernel``, ``factor`` (2 for the
        one-column ``"positive"`` view), ``n_samples``, ``leave_one_out``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import canonical_kde_ece
    >>> p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    >>> r = canonical_kde_ece([0, 1, 1, 2], p, bandwidth=0.2)
    >>> r.settings["view"], r.recalibrated.shape, round(float(r), 4)
    ('canonical', (4, 3), 0.9052)
    >>> bool(np.allclose(r.recalibrated.sum(1), 1))   # each r_i is a probability vector
    True
    """

    value: float
    bandwidth: float
    recalibrated: np.ndarray
    per_class: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return (f"KDECalibrationResult({self.settings.get('view')} "
                f"ECE^KDE(order={self.settings.get('order')})={float(self):.6f}, "
                f"bandwidth={self.bandwidth:.6g})")

    def to_dict(self) -> dict:
        """JSON-ready dict: ``value``, ``bandwidth``, ``per_class`` and ``settings``."""
        return {"value": json_ready(float(self)), "bandwidth": float(self.bandwidth),
                "per_class": json_ready(self.per_class), "settings": json_ready(self.settings)}


# --------------------------------------------------------------------------- Mix-n-Match


def mixnmatch_bandwidth(scores, targets) -> float:
    """The Mix-n-Match bandwidth rule ``std(scores | target = 1) (2 N)^(-1/5)``.

    ``std`` is the population standard deviation of the scores whose target
    is 1 and ``N`` the number of all samples.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.kde_ece import mixnmatch_bandwidth
    >>> s, t = np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1])
    >>> bool(np.isclose(mixnmatch_bandwidth(s, t), 0.2 * 8 ** -0.2))
    True
    """
    s = np.asarray(xp.to_numpy(scores), dtype=np.float64)
    t = np.asarray(xp.to_numpy(targets))
    if s.ndim != 1 or t.shape != s.shape:
        raise ValueError(f"scores and targets must be 1-D of one length, got shapes "
                         f"{s.shape} and {t.shape}")
    positive = s[t == 1]
    spread = float(positive.std()) if positive.size else 0.0
    if not spread > 0:
        raise ValueError(
            f"the Mix-n-Match bandwidth rule needs at least two distinct scores with target 1 "
            f"({positive.size} samples with target 1 here); pass bandwidth= explicitly")
    return spread * (2 * s.shape[0]) ** -0.2


def _triweight_on_grid(h: float, spacing: float, n_grid: int) -> np.ndarray:
    """The kernel of standard deviation ``h`` at the grid offsets ``-L..L`` (KDEpy's sampling)."""
    radius = TRIWEIGHT_RADIUS * h
    half = int(min(math.floor(radius / spacing), n_grid))
    if half < 1:
        raise ValueError(
            f"bandwidth={h:.3g} is below the grid resolution: the kernel (support +-3 h) covers "
            f"no grid point besides its centre (spacing {spacing:.3g}); use a larger bandwidth "
            f"or a finer grid (n_grid)")
    u = np.arange(-half, half + 1) * spacing / radius
    return np.maximum(1.0 - u * u, 0.0) ** 3 * (35.0 / 32.0) / radius


def _reflected_density(scores: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reflected KDE of ``scores`` on the grid ``x``: zero outside (0, 1), integral ~1."""
    n_grid = x.shape[0]
    if scores.shape[0] == 0:
        return np.zeros(n_grid)
    spacing = (x[-1] - x[0]) / (n_grid - 1)
    mirrored = np.where(scores < 0.5, -scores, 2.0 - scores)
    mass = np.zeros(n_grid)
    for points in (scores, mirrored):
        pos = (points - x[0]) / spacing
        lower = np.clip(np.floor(pos).astype(np.int64), 0, n_grid - 2)
        frac = pos - lower
        mass += np.bincount(lower, 1.0 - frac, n_grid) + np.bincount(lower + 1, frac, n_grid)
    density = np.convolve(mass, kernel, mode="same") / scores.shape[0]  # 2 x (mass / 2n)
    density[(x <= 0) | (x >= 1)] = 0.0
    return density


def kde_ece_from_scores(scores, targets, *, order: int = 1, bandwidth: float | None = None,
                        n_grid: int = DEFAULT_GRID) -> KDEECEResult:
    """Mix-n-Match KDE-ECE of validated 1-D ``scores`` in [0, 1] against 0/1 ``targets``.

    The core of :func:`kde_ece` once a view has made the (score, target) pairs.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.kde_ece import kde_ece_from_scores
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(size=5000)
    >>> t = (rng.uniform(size=5000) < s).astype(float)          # calibrated
    >>> round(float(kde_ece_from_scores(s, t)), 3)
    0.01
    >>> r = kde_ece_from_scores(s, 1 - t, order=2)               # anti-calibrated
    >>> round(float(r), 3), r.settings["bandwidth_rule"]
    (0.335, 'std(scores | target = 1) * (2N)^(-1/5)')
    """
    s = np.asarray(xp.to_numpy(scores), dtype=np.float64)
    t = np.asarray(xp.to_numpy(targets), dtype=np.float64)
    if bandwidth is None:
        h = mixnmatch_bandwidth(s, t)
        rule = "std(scores | target = 1) * (2N)^(-1/5)"
    else:
        h, rule = check_positive(bandwidth, "bandwidth"), "given"
    x = np.linspace(*GRID_RANGE, n_grid)
    kernel = _triweight_on_grid(h, (x[-1] - x[0]) / (n_grid - 1), n_grid)
    positive = t == 1
    f1 = _reflected_density(s[positive], x, kernel)
    f = _reflected_density(s, x, kernel)
    pi = float(t.mean())
    defined = np.maximum(f1, f) > DENSITY_FLOOR
    with np.errstate(divide="ignore", invalid="ignore"):
        # f = 0 < f1 (rounding) is 1, the reference's min(inf, 1)
        acc = np.where(f > 0, np.minimum(pi * f1 / f, 1.0), 1.0)
    integrand = np.where(defined, np.abs(x - acc) ** order * f, 0.0)
    acc = np.where(defined, acc, x)
    # a gap (both densities <= floor) keeps the previous grid point's value
    last = np.maximum.accumulate(np.where(defined, np.arange(n_grid), 0))
    integrand, acc = integrand[last], acc[last]
    inside = (x >= 0) & (x <= 1)
    xi, fi = x[inside], f[inside]
    value = float(np.trapezoid(integrand[inside], xi) / np.trapezoid(fi, xi))
    settings = dict(order=order, bandwidth_rule=rule, kernel="triweight",
                    boundary="reflection", n_grid=n_grid, grid_range=list(GRID_RANGE),
                    n_samples=int(s.shape[0]), n_positive=int(positive.sum()))
    return KDEECEResult(value, float(h), xi, xi - acc[inside], fi / fi.mean(), settings)


def kde_ece(y_true, y_prob, *, view: str | None = None, order: int = 1,
            bandwidth: float | None = None, n_grid: int = DEFAULT_GRID,
            sum_tol: float | None = None, classes=None) -> KDEECEResult:
    """KDE-ECE of the Mix-n-Match paper (Zhang, Kailkhura and Han 2020).

    A triweight kernel density estimate with reflection at 0 and 1 replaces
    the bins of the ECE (the conventions of the reference code are listed in
    :mod:`calkit.metrics.kde_ece`).

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels, or a one-hot matrix; with ``view="confidence"``, 0/1
        whether each answer was right.
    y_prob : array of shape (N, K) or (N,)
        Probabilities (numpy array or torch tensor; computed on the host in
        float64), or 1-D scores with ``view`` said.  Rows are used as given (they
        sum to one within ``sum_tol``); the reference divides by the row sum.
    view : {"top_label", "positive", "confidence"}, optional
        Default, as in the reference code: ``"top_label"`` (confidence of the
        predicted class against correctness) for ``K > 2`` columns, and
        ``"positive"`` (``p[:, 1]`` against ``y = 1``, not the top label) for
        ``K = 2`` columns.  A 1-D ``y_prob`` needs the view said
        (:mod:`calkit.metrics._views`).
    order : {1, 2}, default=1
        The power of ``|c - acc(c)|``; the result is ``KDE-ECE^order``.
    bandwidth : float, optional
        The kernel's standard deviation ``h``; default: the paper's rule
        ``std(scores | target = 1) (2N)^(-1/5)`` (:func:`mixnmatch_bandwidth`).
    n_grid : int, default=2**14
        Points of the evaluation grid on ``[-0.6, 1.6]`` (the reference's 2^14);
        a finer grid moves the value by O(spacing) at the ends of ``[0, 1]``.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    classes : sequence, optional
        The label of each column of ``y_prob`` (see :func:`calkit.calibration_error`).

    Returns
    -------
    KDEECEResult
        ``float(result)`` is ``KDE-ECE^order``; ``bandwidth``, ``grid``,
        ``residual``, ``density`` and ``curve`` describe the KDE reliability curve.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import softmax
    >>> from calkit.metrics import kde_ece
    >>> rng = np.random.default_rng(0)
    >>> p = softmax(3 * rng.normal(size=(4000, 10)))
    >>> y = (rng.uniform(size=(4000, 1)) > p.cumsum(1)).sum(1).clip(0, 9)  # y ~ p: calibrated
    >>> r = kde_ece(y, p)
    >>> r.settings["view"], float(r) < 0.02
    ('top_label', True)
    >>> float(kde_ece(y, softmax(3 * np.log(p)))) > 0.1                     # over-confident
    True
    """
    order = check_int(order, "order", minimum=1, maximum=2)
    n_grid = check_int(n_grid, "n_grid", minimum=256, maximum=1 << 24)
    if bandwidth is not None:
        bandwidth = check_positive(bandwidth, "bandwidth")
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    if view is None and not data.binary and data.n_classes == 2:
        view = "positive"   # the reference code's convention for two columns
    view = resolve_view(view, data, KDE_ECE_VIEWS)
    ((scores, targets),) = score_target_pairs(data, view)
    result = kde_ece_from_scores(scores, targets, order=order, bandwidth=bandwidth,
                                 n_grid=n_grid)
    result.settings["view"] = view
    if data.classes is not None:
        result.settings["classes"] = list(data.classes)
    return result


# --------------------------------------------------------------------------- Popordanoska


def _log_parts(columns: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log f``, ``alpha - 1 = f / h`` and ``log B(alpha)`` of the Dirichlet kernels.

    ``log f`` takes ``log(0)`` as the log of the smallest positive float, so a
    zero coordinate with ``alpha = 1`` contributes ``0 * log 0 = 0`` (the
    density's limit) and one with ``alpha > 1`` an (almost) zero kernel.
    """
    log_f = np.log(np.maximum(columns, np.finfo(np.float64).tiny))
    a1 = columns / h
    log_beta = gammaln(a1 + 1.0).sum(1) - gammaln((a1 + 1.0).sum(1))
    return log_f, a1, log_beta


def loo_kernel_regression(columns: np.ndarray, targets: np.ndarray, h: float) -> np.ndarray:
    """Leave-one-out Dirichlet-kernel estimate of ``E[targets | columns]`` at every sample.

    ``r_i = sum_{j != i} k_ij t_j / sum_{j != i} k_ij`` with
    ``k_ij = Dirichlet(columns_i; columns_j / h + 1)`` (a Beta kernel for two
    columns ``[s, 1 - s]``), computed in row blocks in log space: float64
    log-sum-exp, memory O(block x N).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from calkit.metrics.kde_ece import loo_kernel_regression
    >>> s = np.array([0.2, 0.3, 0.8]); t = np.array([[0.0], [1.0], [1.0]])
    >>> r = loo_kernel_regression(np.column_stack([s, 1 - s]), t, 0.1)
    >>> k = stats.beta.pdf(s[0], s[1:] / 0.1 + 1, (1 - s[1:]) / 0.1 + 1)
    >>> bool(np.isclose(r[0, 0], k @ t[1:, 0] / k.sum()))
    True
    """
    n = columns.shape[0]
    log_f, a1, log_beta = _log_parts(columns, h)
    out = np.empty((n, targets.shape[1]))
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        log_k = log_f[rows] @ a1.T
        log_k -= log_beta[None, :]
        log_k[np.arange(rows.shape[0]), rows] = -np.inf     # leave one out
        log_k -= log_k.max(1, keepdims=True)
        np.exp(log_k, out=log_k)
        out[rows] = (log_k @ targets) / log_k.sum(1, keepdims=True)
    return out


def canonical_kde_ece(y_true, y_prob, *, bandwidth: float = 0.1, order: float = 1,
                      view: str | None = None, max_samples: int = MAX_SAMPLES,
                      sum_tol: float | None = None, classes=None) -> KDECalibrationResult:
    """ECE^KDE of Popordanoska, Sayer and Blaschko (2022): Dirichlet-kernel Lp calibration error.

    Estimates ``ECE^order`` (no root) from leave-one-out kernel estimates of
    the calibration map (see :mod:`calkit.metrics.kde_ece`); the conventions
    are those of the reference ``get_ece_kde``.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels, or a one-hot matrix; with ``view="confidence"``, 0/1
        whether each answer was right.
    y_prob : array of shape (N, K) or (N,)
        Probabilities (numpy array or torch tensor; computed on the host in
        float64).  Zeros are allowed (``0 log 0 = 0`` in the kernels).
    bandwidth : float, default=0.1
        The kernel bandwidth ``h`` (Dirichlet parameters ``f_j / h + 1``).
        The reference's ``get_bandwidth`` rule is not offered: its likelihood
        subtracts ``log h`` from already normalised kernels, which favours the
        smallest candidate (it picks ``h ~ 7e-5`` on the reference data set),
        and it returns -1 when every likelihood is negative.
    order : float, default=1
        The exponent ``p >= 1`` of ``|r - f|^p``.
    view : {"canonical", "classwise", "top_label", "positive", "confidence"}, optional
        ``"canonical"`` (the default for ``(N, K)`` probabilities; the
        reference's ``mc_type="canonical"``): Dirichlet kernels on the whole
        probability vector, ``mean_i sum_c |r_ic - f_ic|^p``.
        ``"classwise"`` (the reference's ``"marginal"``): a Beta kernel per
        class, ``sum_c mean_i |r_ic - f_ic|^p``.  ``"top_label"``: a Beta kernel
        on the confidence, against correctness, ``mean_i |r_i - f_i|^p``.
        ``"positive"``: the reference's one-column input, a Beta kernel on
        ``P(y = 1)``, reported as **2 x** ``mean_i |r_i - f_i|^p`` (the
        canonical error of ``[1 - p, p]``, equal to ``"canonical"`` on two
        columns).  ``"confidence"``: (correct, confidence) pairs, no factor 2.
        A 1-D ``y_prob`` needs the view said; ``"canonical"`` on 1-D input is
        ``"positive"``.
    max_samples : int, default=20000
        Refuse more samples than this: the time is O(N^2 K) (about 3 s for
        N = 10,000 and K = 10 on one core) and ``"classwise"`` costs K times
        the binary view.  Raise it deliberately, or subsample.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    classes : sequence, optional
        The label of each column of ``y_prob`` (see :func:`calkit.calibration_error`).

    Returns
    -------
    KDECalibrationResult
        ``float(result)`` is the estimate; ``recalibrated`` holds the
        leave-one-out estimates ``r_i``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import softmax
    >>> from calkit.metrics import canonical_kde_ece
    >>> rng = np.random.default_rng(0)
    >>> p = softmax(rng.normal(size=(1000, 3)))
    >>> y = (rng.uniform(size=(1000, 1)) > p.cumsum(1)).sum(1).clip(0, 2)   # calibrated
    >>> r = canonical_kde_ece(y, p, bandwidth=0.1)
    >>> sharp = canonical_kde_ece(y, softmax(4 * np.log(p)), bandwidth=0.1)
    >>> float(r) < 0.15 < float(sharp)
    True
    >>> binary = canonical_kde_ece(y == 0, p[:, 0], view="positive")
    >>> binary.settings["factor"], binary.settings["kernel"]
    (2, 'beta')
    """
    h = check_positive(bandwidth, "bandwidth")
    order = check_positive(order, "order")
    if order < 1:
        raise ValueError(f"order must be at least 1 (an Lp norm), got {order!r}")
    max_samples = check_int(max_samples, "max_samples", minimum=2)
    if view is not None:
        check_option(view, "view", CANONICAL_VIEWS)
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    n = data.n_samples
    if n < 2:
        raise ValueError("canonical_kde_ece needs at least 2 samples (leave-one-out)")
    if n > max_samples:
        raise ValueError(
            f"canonical_kde_ece is O(N^2 K): {n} samples exceed max_samples={max_samples}; "
            f"subsample, or raise max_samples deliberately")
    if view is None and not data.binary:
        view = "canonical"
    if view == "canonical" and data.binary:
        view = "positive"
    if view != "canonical":
        view = resolve_view(view, data, CANONICAL_VIEWS[1:])
    settings = dict(view=view, order=order, bandwidth=h, n_samples=n, leave_one_out=True,
                    factor=2 if view == "positive" else 1,
                    kernel="dirichlet" if view == "canonical" else "beta")
    if data.classes is not None:
        settings["classes"] = list(data.classes)
    labels = np.asarray(xp.to_numpy(data.y_true))
    if view == "canonical":
        prob = np.asarray(xp.to_numpy(data.y_prob), dtype=np.float64)
        onehot = (labels[:, None] == np.arange(prob.shape[1])[None, :]).astype(np.float64)
        r = loo_kernel_regression(prob, onehot, h)
        value = float((np.abs(r - prob) ** order).sum(1).mean())
        return KDECalibrationResult(value, h, r, None, settings)
    pairs = [(np.asarray(xp.to_numpy(s), dtype=np.float64),
              np.asarray(xp.to_numpy(t), dtype=np.float64)) for s, t in
             score_target_pairs(data, view)]
    r = np.column_stack([loo_kernel_regression(np.column_stack([s, 1.0 - s]), t[:, None], h)[:, 0]
                         for s, t in pairs])
    errors = np.array([np.mean(np.abs(r[:, c] - s) ** order) for c, (s, _) in enumerate(pairs)])
    if view == "classwise":
        return KDECalibrationResult(float(errors.sum()), h, r, errors, settings)
    return KDECalibrationResult(float(settings["factor"] * errors[0]), h, r[:, 0], None, settings)
