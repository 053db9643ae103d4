"""Sweep calibration error (Roelofs, Cain, Shlens and Mozer 2022).

Bins are made for ``b = 2, 3, ...``; the sweep stops at the first ``b`` whose
non-empty bins' accuracies are not monotonically non-decreasing and keeps
``b - 1`` bins.  The scores are sorted once; every candidate ``b`` is then
evaluated from prefix sums in O(b), so the whole sweep costs
O(N log N + b*^2) instead of the reference's O(b*^2 N).
"""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._validation import check_classification, check_option
from calkit.binning import BinTable, sorted_pairs, table_from_ranks
from calkit.metrics._views import resolve_view, score_target_pairs
from calkit.metrics.binned import CalibrationResult, error_from_table

SWEEP_STRATEGIES = ("quantile", "uniform")


def _rank_boundaries(n: int, b: int) -> np.ndarray:
    """Rank boundaries of caltrain's equal-mass rule ``min(b-1, floor((r/n)*b))``.

    The float64 expression is reproduced exactly: the integer estimate
    ``ceil(j n / b)`` of the first rank in bin ``j`` is corrected by one where
    the floating-point product rounds across an integer.
    """
    j = np.arange(1, b)
    first = -((-j * n) // b)  # ceil(j * n / b)
    first = first - (np.floor(((first - 1) / n) * b) >= j)
    first = first + (np.floor((first / n) * b) < j)
    return np.concatenate([[0], first, [n]])


def _width_boundaries(sorted_scores: np.ndarray, b: int) -> np.ndarray:
    """Rank boundaries of the equal-width rule ``min(b-1, floor(score * b))``."""
    n = len(sorted_scores)
    j = np.arange(1, b)
    first = np.searchsorted(sorted_scores, j / b, side="left")
    # correct the search against the exact float rule floor(s * b) >= j
    below = np.clip(first - 1, 0, n - 1)
    first = first - ((first > 0) & (np.floor(sorted_scores[below] * b) >= j))
    at = np.clip(first, 0, n - 1)
    first = first + ((first < n) & (np.floor(sorted_scores[at] * b) < j))
    return np.concatenate([[0], first, [n]])


def _monotone(table: BinTable) -> bool:
    ok = table.count > 0
    acc = table.sum_target[ok] / table.count[ok]
    return bool(np.all(np.diff(acc) >= 0))


def sweep_table(scores, targets, strategy: str = "quantile") -> BinTable:
    """The bin table the monotone sweep settles on (numpy arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import sweep_ece
    >>> from calkit.metrics import error_from_table
    >>> from calkit.metrics.sweep import sweep_table
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p ** 2).astype(int)
    >>> t = sweep_table(p, y)
    >>> t.n_bins, t.count.tolist()[:3], bool(np.all(np.diff(t.mean_target) >= 0))
    (13, [77, 77, 77], True)
    >>> bool(error_from_table(t) == float(sweep_ece(y, p, view="positive")))
    True
    """
    s, t = sorted_pairs(xp.to_numpy(scores), xp.to_numpy(targets))
    s = s.astype(np.float64)
    n = len(s)
    prefix = (xp.cumsum0(s), xp.cumsum0(t))
    best = table_from_ranks(s, t, np.array([0, n]), strategy=f"sweep-{strategy}", prefix=prefix)
    for b in range(2, n):
        bounds = _rank_boundaries(n, b) if strategy == "quantile" else _width_boundaries(s, b)
        table = table_from_ranks(s, t, bounds, strategy=f"sweep-{strategy}", prefix=prefix,
                                 edges=None if strategy == "quantile" else np.arange(b + 1) / b)
        if not _monotone(table):
            break
        best = table
    return best


def sweep_ece(y_true, y_prob, *, strategy: str = "quantile", norm: str = "l1",
              view: str | None = None, sum_tol: float | None = None,
              classes=None) -> CalibrationResult:
    """Monotonic sweep calibration error (ECE_sweep) of Roelofs et al.

    Parameters
    ----------
    y_true, y_prob, classes
        As in :func:`calkit.calibration_error`: ``(N, K)`` probabilities, or a
        1-D ``y_prob`` with an explicit ``view``.
    strategy : {"quantile", "uniform"}, default="quantile"
        ``"quantile"``: equal-mass bins by rank, sample ``r`` of the sorted
        scores in bin ``min(b - 1, floor((r / N) * b))`` (computed in float64,
        exactly as google-research ``caltrain``).  ``"uniform"``: bin
        ``min(b - 1, floor(score * b))``.
    norm : {"l1", "l2"}, default="l1"
        ``caltrain`` defaults to ``norm=2``; pass ``"l2"`` to match it.
    view : {"top_label", "positive", "confidence"}, optional
        Default ``"top_label"`` for an ``(N, K)`` ``y_prob``.  A 1-D ``y_prob``
        needs ``"confidence"`` ((correct, confidence) pairs: ``y_true`` is 0/1
        correctness, ``y_prob`` the confidence of the predicted answer) or
        ``"positive"`` (a binary classifier's P(y = 1) against the class).

    Returns
    -------
    CalibrationResult
        ``settings["n_bins"]`` is the number of bins the sweep chose.

    Notes
    -----
    Ties: the reference sorts with an unstable ``argsort``, so equal scores
    fall into rank bins in an arbitrary order.  Here equal scores are ordered by
    target (wrong before right), which makes the result depend only on the data,
    not on its order; on data without ties the two agree exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import sweep_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0, 1, 5000)
    >>> y = (rng.uniform(size=5000) < p ** 2).astype(int)   # over-confident
    >>> r = sweep_ece(y, p, view="positive")
    >>> r.settings["n_bins"] > 5 and 0.1 < float(r) < 0.2
    True
    """
    check_option(strategy, "strategy", SWEEP_STRATEGIES)
    check_option(norm, "norm", ("l1", "l2"))
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    view = resolve_view(view, data, ("top_label", "positive", "confidence"))
    ((scores, targets),) = score_target_pairs(data, view)
    table = sweep_table(scores, targets, strategy)
    value = error_from_table(table, norm)
    if xp.is_torch(data.y_prob):
        value = xp.like(value, data.y_prob)
    settings = dict(norm=norm, n_bins=table.n_bins, strategy=f"sweep-{strategy}",
                    closed="rank" if strategy == "quantile" else "left", view=view,
                    debiased=False, n_samples=data.n_samples)
    if data.classes is not None:
        settings["classes"] = list(data.classes)
    return CalibrationResult(xp.scalar(value), (table,), settings)
