"""Smooth ECE (Blasiok and Nakkiran 2023, "Smooth ECE: principled reliability diagrams
via kernel smoothing").

The residuals ``r_i = s_i - y_i`` are smoothed with a Gaussian kernel of width
``sigma`` reflected at 0 and 1; smECE(sigma) is the mean absolute smoothed
residual under the smoothed score density, and the bandwidth is the fixed point
``smECE(sigma) = sigma``.  The computation follows the reference package
``relplot`` 1.0.3 step by step, so the numbers agree to rounding:

* every sample's weight is split linearly between the two nearest nodes of a
  grid of ``G = max(2000, round(20 / sigma)) // 2 + 1`` points on [0, 1];
* the grid values are mirrored at both ends (end points not repeated) and
  convolved with the unnormalised-grid Gaussian ``exp(-(u - 1/2)^2 / 2 sigma^2)
  / (sqrt(2 pi) sigma)``, ``u`` on the same grid;
* both smoothed sums are interpolated linearly onto ``M = max(round(10 / sigma),
  200)`` evaluation points, the density gets ``+1e-4`` (in these unnormalised
  units) and ``smECE = sum |K r / (K 1 + 1e-4)| (K 1 + 1e-4) / sum (K 1 + 1e-4)``;
* the bandwidth is 1 if ``smECE(1) > 1``; otherwise 10 bisection steps on
  [0, 1] keep the upper end ``a`` of the bracket, where ``a >= smECE(a)`` and
  ``a >= eps``; the result is ``smECE`` at that ``a``.

The convolutions use FFTs (O(G log G) instead of relplot's direct O(G^2)), the
O(N) spreading of the samples onto the grid is done once per grid size rather
than once per bandwidth (the grid has 1001 nodes for every ``sigma >= 0.01``), and
numpy and torch inputs share the code path: torch tensors stay on their device
and everything is computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from calkit import _array as xp
from calkit._array import Array
from calkit._export import Exportable, json_ready
from calkit._validation import (
    check_classification,
    check_fraction,
    check_int,
    check_positive,
)
from calkit.metrics._views import resolve_view, score_target_pairs

REGULARIZER = 1e-4
MIN_MESH = 200
BISECTION_STEPS = 10


@dataclass(frozen=True)
class SmoothECEResult(Exportable):
    """Smooth ECE with its bandwidth and the smoothed reliability curve.

    Attributes
    ----------
    value : float or 0-d torch tensor
        smECE at ``sigma``.
    sigma : float
        The kernel bandwidth (the fixed point, unless it was given).
    grid : array of shape (M,)
        Evaluation points in [0, 1].
    residual : array of shape (M,)
        Kernel-smoothed mean of ``score - target`` at each grid point
        (positive: over-confident there).
    density : array of shape (M,)
        Smoothed score density (regularised as in relplot), scaled so that its
        average over the grid is 1 (a density on [0, 1]).
    settings : dict
        ``view``, ``eps``, ``sigma_given``, ``n_samples`` (and ``band``,
        ``n_resamples``, ``random_state`` when a band was computed).
    band : (ndarray, ndarray) or None
        Pointwise bootstrap percentile band ``(low, high)`` of :attr:`curve` on
        ``grid`` (numpy, host), when asked for with ``band=``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.smooth import smooth_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p ** 2).astype(int)   # over-confident
    >>> r = smooth_ece(y, p, view="positive")
    >>> round(float(r), 3), r.grid.shape == r.curve.shape == r.density.shape
    (0.168, True)
    >>> bool(np.isclose(float(r), np.mean(np.abs(r.residual) * r.density)))   # density-weighted
    True
    >>> d = r.to_dict()   # JSON-ready; r.to_frame() (pandas) has one row per grid point
    >>> len(d["curve"]) == len(r.grid), round(d["value"], 3)
    (True, 0.168)
    """

    value: object
    sigma: float
    grid: Array
    residual: Array
    density: Array
    settings: dict = field(default_factory=dict)
    band: tuple | None = None

    @property
    def curve(self) -> Array:
        """Smoothed accuracy ``grid - residual`` (the reliability curve)."""
        return self.grid - self.residual

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"SmoothECEResult(smECE={float(self):.6f}, sigma={self.sigma:.6g})"

    def to_dict(self) -> dict:
        """JSON-ready dict: ``value``, ``sigma``, ``settings`` and the curve arrays as lists."""
        out = {"value": json_ready(float(self)), "sigma": float(self.sigma),
               "settings": json_ready(self.settings)}
        out.update({k: json_ready(v) for k, v in self._frame_columns().items()})
        return out

    def _frame_columns(self) -> dict:
        columns = {"grid": self.grid, "curve": self.curve, "residual": self.residual,
                   "density": self.density}
        if self.band is not None:
            columns.update(band_low=self.band[0], band_high=self.band[1])
        return {k: xp.to_numpy(v) for k, v in columns.items()}


def _lib(x):
    return xp.torch_module() if xp.is_torch(x) else np


def _grid_weights(scores: Array, weights: Array, n_grid: int) -> Array:
    """Linear split of each sample's weight onto its two neighbouring grid nodes."""
    pos = scores * (n_grid - 1)
    if xp.is_torch(pos):
        lower = pos.long().clamp(0, n_grid - 2)
    else:
        lower = pos.astype(np.int64).clip(0, n_grid - 2)
    frac = pos - lower
    return (xp.bin_sum(lower, n_grid, (1 - frac) * weights)
            + xp.bin_sum(lower + 1, n_grid, frac * weights))


def _kernel(sigma: float, n_grid: int, like: Array) -> Array:
    u = np.linspace(0, 1, n_grid)
    k = np.exp(-(u - 0.5) * (u - 0.5) / (2 * sigma ** 2))
    k /= np.sqrt(2 * np.pi) * sigma
    return xp.like(k, like)


def _reflected_convolve(values: Array, sigma: float) -> Array:
    """relplot's reflected convolution of grid ``values`` (rows of a 2-D array), by FFT."""
    lib = _lib(values)
    g = values.shape[-1]
    cat = (lambda parts: lib.cat(parts, -1)) if lib is not np else (
        lambda parts: np.concatenate(parts, -1))
    flipped = lib.flip(values, [-1]) if lib is not np else values[..., ::-1]
    ext = cat([flipped[..., :-1], values, flipped[..., 1:]])
    ker = _kernel(sigma, g, values)
    n_fft = _fast_len(ext.shape[-1] + g - 1)
    fft = lib.fft
    full = fft.irfft(fft.rfft(ext, n_fft) * fft.rfft(ker, n_fft), n_fft)
    start = (g - 1) + g // 2  # 'valid' part starts at g - 1, relplot keeps [g//2, g//2 + g)
    return full[..., start:start + g]


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (a fast FFT size)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _interpolate(t: Array, values: Array) -> Array:
    """relplot's linear interpolation of ``values`` (at ``i / (G-1)``) onto ``t``."""
    g = values.shape[-1]
    size = 1 / (g - 1)
    pos = t * (g - 1)
    inds = pos.long().clamp(0, g - 2) if xp.is_torch(pos) else pos.astype(np.int64).clip(
        0, g - 2)
    frac = (t - xp.as_float64(inds) * size) / size
    return values[..., inds] * (1 - frac) + values[..., inds + 1] * frac


class _GridMass:
    """The samples' residual and unit mass on relplot's grid, cached by grid size.

    The grid has ``G = max(2000, round(20 / sigma)) // 2 + 1`` nodes, which is
    1001 for every ``sigma >= 0.01``: the O(N) pass over the samples is done
    once per grid size, and each bandwidth of the bisection then costs only an
    O(G log G) convolution.  Values are exactly those of a fresh computation.
    """

    def __init__(self, scores: Array, residuals: Array):
        self.scores, self.residuals = scores, residuals
        self._cache: dict[int, Array] = {}

    def on_grid(self, n_grid: int) -> Array:
        if n_grid not in self._cache:
            s, r = self.scores, self.residuals
            self._cache[n_grid] = _lib(s).stack([
                _grid_weights(s, r, n_grid), _grid_weights(s, xp.as_float64(r * 0 + 1), n_grid)])
        return self._cache[n_grid]

    def smooth(self, sigma: float):
        """Evaluation grid, smoothed mean residual and regularised density at ``sigma``."""
        n_grid = max(2000, round(20 / sigma)) // 2 + 1
        smoothed = _reflected_convolve(self.on_grid(n_grid), sigma)
        t = xp.like(np.linspace(0, 1, max(round(10 / sigma), MIN_MESH)), self.scores)
        at_t = _interpolate(t, smoothed)
        density = at_t[1] + REGULARIZER
        return t, at_t[0] / density, density

    def smece(self, sigma: float):
        t, mean_residual, density = self.smooth(sigma)
        value = (xp.abs_(mean_residual) * density).sum() / density.sum()
        return value, (t, mean_residual, density)


def _fixed_point_sigma(mass: _GridMass, eps: float) -> float:
    """relplot's bisection for ``sigma = smECE(sigma)`` (10 steps, upper bracket)."""
    def small_enough(alpha: float) -> bool:
        return alpha < eps or alpha < float(mass.smece(alpha)[0])

    if small_enough(1.0):
        return 1.0
    hi, lo = 1.0, 0.0
    for _ in range(BISECTION_STEPS):
        mid = (hi + lo) / 2
        if small_enough(mid):
            lo = mid
        else:
            hi = mid
    return hi


def smooth_ece_from_scores(scores: Array, targets: Array, sigma: float | None = None,
                           eps: float = 1e-3) -> SmoothECEResult:
    """Smooth ECE of validated 1-D ``scores`` in [0, 1] against 0/1 ``targets``.

    The core of :func:`smooth_ece` once a view has turned the data into
    (score, target) pairs; ``sigma=None`` finds the fixed point ``smECE(sigma) = sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.smooth import smooth_ece, smooth_ece_from_scores
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p ** 2).astype(float)
    >>> r = smooth_ece_from_scores(p, y)
    >>> round(float(r), 3), bool(abs(float(r) - r.sigma) < 1e-3)   # a fixed point
    (0.15, True)
    >>> bool(float(r) == float(smooth_ece(y.astype(int), p, view="positive")))
    True
    >>> fixed = smooth_ece_from_scores(p, y, sigma=0.05)
    >>> fixed.sigma, fixed.settings["sigma_given"]
    (0.05, True)
    """
    s = xp.as_float64(scores)
    mass = _GridMass(s, s - xp.as_float64(targets))
    sigma_given = sigma is not None
    if sigma is None:
        sigma = _fixed_point_sigma(mass, eps)
    value, (t, mean_residual, density) = mass.smece(sigma)
    density = density / density.mean()
    settings = dict(eps=eps, sigma_given=sigma_given, n_samples=int(s.shape[0]))
    return SmoothECEResult(xp.scalar(value), float(sigma), t, mean_residual, density, settings)


def curve_band(scores, targets, sigma: float, *, confidence: float = 0.95,
               n_resamples: int = 100, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise bootstrap percentile band of the smoothed reliability curve.

    The samples are resampled with replacement ``n_resamples`` times; each
    resample's curve ``grid - smoothed residual`` is computed at the same
    bandwidth ``sigma`` on the same grid (so the band shows the sampling noise of
    the curve, as relplot's bootstrap band does), and the band is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles at every
    grid point.  Computed on the host in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.smooth import curve_band, smooth_ece_from_scores
    >>> rng = np.random.default_rng(0)
    >>> f = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < f).astype(float)
    >>> r = smooth_ece_from_scores(f, y)
    >>> low, high = curve_band(f, y, r.sigma, n_resamples=50)
    >>> bool((low <= r.curve + 1e-12).mean() > 0.9 and (r.curve <= high + 1e-12).mean() > 0.9)
    True
    """
    confidence = check_fraction(confidence, "confidence")
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    sigma = check_positive(sigma, "sigma")
    s = np.asarray(xp.to_numpy(scores), dtype=np.float64)
    r = s - np.asarray(xp.to_numpy(targets), dtype=np.float64)
    rng = np.random.default_rng(random_state)
    curves = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(s), len(s))
        t, mean_residual, _ = _GridMass(s[idx], r[idx]).smooth(sigma)
        curves.append(t - mean_residual)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.asarray(curves), [alpha, 100 - alpha], axis=0)
    return low, high


def smooth_ece(y_true, y_prob, *, view: str | None = None, sigma: float | None = None,
               eps: float = 1e-3, sum_tol: float | None = None, band: float | None = None,
               n_resamples: int = 100, random_state=0, classes=None) -> SmoothECEResult:
    """Smooth ECE (smECE) with the automatic fixed-point bandwidth, as in ``relplot``.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels, or a one-hot matrix; with ``view="confidence"``, 0/1
        whether each answer was right.
    y_prob : array of shape (N, K) or (N,)
        Class probabilities; or 1-D: a binary classifier's P(y = 1), or the
        confidence of each predicted answer.  numpy array or torch tensor
        (kept on its device, float64 inside).
    view : {"top_label", "positive", "confidence"}, optional
        Top-label confidence against correctness (relplot's
        ``multiclass_logits_to_confidences``; the default for an ``(N, K)``
        ``y_prob``), ``P(y = 1)`` against ``y`` for a binary task (what
        ``relplot.smECE(p, y)`` measures on 1-D input), or (correct,
        confidence) pairs as given.  A 1-D ``y_prob`` needs ``"confidence"``
        or ``"positive"`` said explicitly (:mod:`calkit.metrics._views`).
    sigma : float, optional
        Fixed kernel bandwidth (``relplot.smECE_sigma``); default: the fixed
        point ``smECE(sigma) = sigma`` found by bisection.
    eps : float, default=1e-3
        Smallest bandwidth the bisection accepts (relplot's ``eps``), in (0, 1].
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    band : float, optional
        Also compute a pointwise bootstrap band of the curve at this confidence
        level, e.g. 0.95 (:func:`curve_band`, ``n_resamples`` resamples seeded
        with ``random_state``); stored in ``result.band``.
    n_resamples : int, default=100
    random_state : int, numpy Generator or None, default=0
    classes : sequence, optional
        The label of each column of ``y_prob`` (see :func:`calkit.calibration_error`).

    Returns
    -------
    SmoothECEResult
        ``float(result)`` is smECE; ``sigma``, ``grid``, ``residual``,
        ``density`` and ``curve`` describe the smoothed reliability diagram.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.smooth import smooth_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=5000)
    >>> y = (rng.uniform(size=5000) < p ** 2).astype(int)   # over-confident
    >>> r = smooth_ece(y, p, view="positive")
    >>> round(float(r), 2), 0 < r.sigma < 1
    (0.16, True)
    """
    eps = check_fraction(eps, "eps", closed_high=True)
    if sigma is not None:
        sigma = check_positive(sigma, "sigma")
        if sigma > 1:
            raise ValueError(f"sigma must be at most 1, got {sigma}")
    if band is not None:
        band = check_fraction(band, "band")
        n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    view = resolve_view(view, data, ("top_label", "positive", "confidence"))
    ((scores, targets),) = score_target_pairs(data, view)
    result = smooth_ece_from_scores(scores, targets, sigma, eps)
    result.settings["view"] = view
    if data.classes is not None:
        result.settings["classes"] = list(data.classes)
    if band is None:
        return result
    low_high = curve_band(scores, targets, result.sigma, confidence=band,
                          n_resamples=n_resamples, random_state=random_state)
    result.settings.update(band=float(band), n_resamples=n_resamples,
                           random_state=random_state)
    return replace(result, band=low_high)

