"""Binomial confidence intervals on the accuracy of each bin of a bin table.

A bin with ``n`` samples of which ``k`` have target 1 estimates its accuracy
(mean target) by ``k / n``.  Two intervals are offered:

* ``"wilson"`` (Wilson 1927): the score interval, the set of ``p`` the
  normal-approximation score test does not reject,
  ``(k + z^2/2) / (n + z^2) +- z / (n + z^2) sqrt(k (n - k) / n + z^2 / 4)``
  with ``z`` the ``1 - alpha/2`` normal quantile.  Its coverage is close to the
  nominal level on average, slightly below it for some ``p``; it never leaves
  [0, 1] and is not degenerate at ``k = 0`` or ``k = n``.  The default.
* ``"clopper-pearson"`` (Clopper and Pearson 1934): the "exact" interval from
  beta quantiles, ``[B(alpha/2; k, n - k + 1), B(1 - alpha/2; k + 1, n - k)]``
  (0 when ``k = 0``, 1 when ``k = n``).  Its coverage is at least the nominal
  level for every ``p``, so it is conservative (wider).

Both equal ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method)``
(``"wilson"`` and ``"exact"``), computed for all bins at once.  Empty bins get
NaN bounds, like their accuracy in :class:`calkit.binning.BinTable`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv, ndtri

from calkit._array import to_numpy
from calkit._validation import check_option
from calkit.binning import BinTable

__all__ = ["INTERVALS", "bin_intervals", "binomial_interval"]

INTERVALS = ("wilson", "clopper-pearson")


def _check_confidence(confidence) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | np.floating):
        raise TypeError(f"confidence must be a float in (0, 1), got {type(confidence).__name__}")
    if not 0 < float(confidence) < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(confidence)


def binomial_interval(successes, trials, *, method: str = "wilson",
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of a binomial proportion ``successes / trials``, elementwise.

    Parameters
    ----------
    successes : array of non-negative numbers
        Successes ``k`` (counts; the engine's float64 ``sum_target`` is accepted).
    trials : array of the same shape
        Trials ``n >= k``; where ``n == 0`` the bounds are NaN.
    method : {"wilson", "clopper-pearson"}, default="wilson"
        See the module docstring.
    confidence : float, default=0.95
        Nominal coverage.

    Returns
    -------
    low, high : arrays of float64

    Examples
    --------
    >>> from calkit.metrics.intervals import binomial_interval
    >>> low, high = binomial_interval([0, 7, 10], [10, 10, 10])
    >>> low.round(4).tolist(), high.round(4).tolist()
    ([0.0, 0.3968, 0.7225], [0.2775, 0.8922, 1.0])
    >>> low, high = binomial_interval([0, 7, 10], [10, 10, 10], method="clopper-pearson")
    >>> low.round(4).tolist(), high.round(4).tolist()
    ([0.0, 0.3475, 0.6915], [0.3085, 0.9333, 1.0])
    """
    check_option(method, "method", INTERVALS)
    confidence = _check_confidence(confidence)
    k = np.asarray(to_numpy(successes), dtype=np.float64)
    n = np.asarray(to_numpy(trials), dtype=np.float64)
    if k.shape != n.shape:
        raise ValueError(f"successes and trials must have the same shape, got {k.shape} "
                         f"and {n.shape}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise ValueError("successes and trials must be finite")
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes must lie in [0, trials]")
    alpha = 1 - confidence
    empty = n == 0
    safe_n = np.where(empty, 1.0, n)
    if method == "wilson":
        z = ndtri(1 - alpha / 2)
        z2 = z * z
        centre = (k + z2 / 2) / (safe_n + z2)
        half = z / (safe_n + z2) * np.sqrt(np.maximum(k * (safe_n - k) / safe_n, 0) + z2 / 4)
        # exact at the ends (k = 0: low = 0; k = n: high = 1), not off by a rounding error
        low = np.where(k > 0, np.clip(centre - half, 0, 1), 0.0)
        high = np.where(k < safe_n, np.clip(centre + half, 0, 1), 1.0)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            low = np.where(k > 0, betaincinv(np.maximum(k, 1e-300), safe_n - k + 1, alpha / 2),
                           0.0)
            high = np.where(k < safe_n, betaincinv(k + 1, np.maximum(safe_n - k, 1e-300),
                                                   1 - alpha / 2), 1.0)
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def bin_intervals(table: BinTable, method: str = "wilson",
                  confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:func:`binomial_interval` of every bin's accuracy (``sum_target / count``).

    Parameters
    ----------
    table : BinTable
        From :func:`calkit.binning.bin_table` or a metric's result.
    method : {"wilson", "clopper-pearson"}, default="wilson"
    confidence : float, default=0.95

    Returns
    -------
    low, high : arrays of shape (n_bins,)
        NaN for empty bins.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics.intervals import bin_intervals
    >>> t = bin_table(np.array([0.1, 0.2, 0.7, 0.8, 0.9]), np.array([0, 1, 1, 1, 0]), n_bins=2)
    >>> low, high = bin_intervals(t)
    >>> bool(np.all((low <= t.mean_target) & (t.mean_target <= high)))
    True
    """
    return binomial_interval(table.sum_target, table.count, method=method,
                             confidence=confidence)
