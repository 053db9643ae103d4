"""Consistency resampling: what a perfectly calibrated model would show, given the same scores.

If a model is calibrated, a prediction made with confidence ``c`` is right with
probability ``c``.  Keeping the observed scores ``c_1..c_N`` and drawing new
targets ``y_i ~ Bernoulli(c_i)`` gives data from a calibrated model with exactly
the observed confidences (Broecker and Smith 2007, "consistency resampling";
Vaicenavicius et al. 2019).  Repeating this ``R`` times gives

* **consistency bands** (:func:`consistency_band`): per bin, the range in which a
  calibrated model's accuracy falls (the ``alpha/2`` and ``1 - alpha/2``
  quantiles of the resampled bin accuracies).  A bin whose observed accuracy
  lies outside its band shows more miscalibration than the bin's size explains.
* a **consistency test** (:func:`consistency_test`) for any calibration
  statistic: its value on the data against its ``R`` values on calibrated
  resamples; the p-value is ``(1 + #{null >= observed}) / (R + 1)``.

The scores are kept fixed (the test is conditional on them).  Under the null
hypothesis of calibration the targets are independent ``Bernoulli(c_i)`` given
the scores, so the resampled statistics have exactly the statistic's null
distribution given the scores and the test is valid at every sample size (up
to Monte-Carlo error).  Vaicenavicius et al. also bootstrap the scores; with
fixed scores the bins (equal-width or equal-mass, both functions of the scores
only) are found once and every resample is a batch of bin tables.

Implementation: every sample's bin is found once (:func:`calkit.binning.assign_bins`);
the targets are drawn in blocks of rows (at most ``2**22`` draws at a time, so
memory does not grow with ``R``) from a seeded ``numpy.random.Generator``
(``rng.random((rows, N)) < c``) and summed per (resample, bin) by one
``bincount`` per block (:func:`calkit._array.bin_sum`), the engine's own
per-bin sum.  Blocks draw the same stream as one ``(R, N)`` draw would, so the
result does not depend on the block size.  The smooth ECE and user callables
are evaluated once per resample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from calkit import _array as xp
from calkit._validation import check_classification, check_n_bins, check_option, check_scores
from calkit.binning import (
    CLOSED,
    STRATEGIES,
    BinTable,
    _bin_table,
    assign_bins,
)
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import error_from_table
from calkit.metrics.calibration_tests import CalibrationTestResult
from calkit.metrics.intervals import _check_confidence

__all__ = [
    "ConsistencyBand",
    "consistency_band",
    "consistency_resample",
    "consistency_test",
]

_BLOCK_ELEMENTS = 1 << 22  # Bernoulli draws per block (32 MiB of float64 uniforms)
METRICS = ("ece", "smooth_ece")
_NORMS = ("l1", "l2", "max")


def _check_n_resamples(n_resamples) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise TypeError(f"n_resamples must be an int, got {type(n_resamples).__name__}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    return int(n_resamples)


def _fixed_bins(scores: np.ndarray, edges, n_bins: int, strategy: str,
                closed: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Edges (given, or the engine's for ``strategy``) and every score's bin index."""
    check_option(closed, "closed", CLOSED)
    if edges is None:
        check_option(strategy, "strategy", STRATEGIES)
        # the engine's edges for these scores (quantile edges depend on the scores only)
        e = np.asarray(_bin_table(scores, np.zeros(scores.shape[0], dtype=bool),
                                  check_n_bins(n_bins), strategy, closed).edges)
    else:
        e = np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.shape[0] < 2 or not bool(np.all(e[1:] > e[:-1])):
            raise ValueError("edges must be a 1-D array of at least 2 strictly increasing "
                             "values")
        strategy = "explicit"
    return e, assign_bins(scores, e, closed), strategy


def _resampled_target_sums(index: np.ndarray, scores: np.ndarray, n_bins: int,
                           n_resamples: int, rng: np.random.Generator):
    """Yield ``(rows, B)`` per-bin sums of Bernoulli(scores) targets, block by block."""
    n = scores.shape[0]
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_resamples:
        rows = min(rows_per_block, n_resamples - done)
        hits = rng.random((rows, n)) < scores  # (rows, N) booleans, one resample per row
        keys = index + (np.arange(rows) * n_bins)[:, None]
        yield xp.bin_sum(keys[hits], rows * n_bins).reshape(rows, n_bins).astype(np.float64)
        done += rows


def consistency_resample(scores, edges=None, *, n_bins: int = 15, strategy: str = "uniform",
                         closed: str = "right", n_resamples: int = 1000,
                         random_state=None) -> BinTable:
    """Bin tables of ``n_resamples`` calibrated resamples: ``y_i ~ Bernoulli(scores_i)``.

    Parameters
    ----------
    scores : array of shape (N,)
        Scores (confidences) in [0, 1], kept fixed.
    edges : array of shape (B + 1,), optional
        Bin edges; default: the engine's ``n_bins`` bins of ``strategy`` for
        these scores (:func:`calkit.binning.bin_table`).
    n_bins : int, default=15
    strategy : {"uniform", "quantile"}, default="uniform"
    closed : {"right", "left"}, default="right"
        As in :func:`calkit.binning.bin_table`.
    n_resamples : int, default=1000
    random_state : None, int or numpy.random.Generator
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    BinTable
        Arrays of shape ``(n_resamples, B)``: row ``r`` is the bin table of
        ``scores`` against the ``r``-th draw of targets.  ``count`` and
        ``sum_score`` are the same in every row (read-only broadcasts);
        ``sum_target`` holds the resampled per-bin sums (float64).
        :func:`calkit.metrics.error_from_table` reduces it row by row.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics.consistency import consistency_resample
    >>> scores = np.linspace(0.05, 0.95, 10)
    >>> batch = consistency_resample(scores, n_bins=5, n_resamples=4, random_state=0)
    >>> batch.sum_target.shape, batch.count[0].tolist()
    ((4, 5), [2, 2, 2, 2, 2])
    >>> y = np.random.default_rng(0).random((4, 10)) < scores     # the same draws
    >>> bool(np.array_equal(batch.sum_target[2], bin_table(scores, y[2], n_bins=5).sum_target))
    True
    """
    s = np.asarray(xp.to_numpy(check_scores(scores)), dtype=np.float64)
    n_resamples = _check_n_resamples(n_resamples)
    e, index, strategy = _fixed_bins(s, edges, n_bins, strategy, closed)
    n_edges = int(e.shape[0]) - 1
    rng = np.random.default_rng(random_state)
    sum_target = np.concatenate(list(_resampled_target_sums(index, s, n_edges, n_resamples,
                                                            rng)))
    count = xp.bin_sum(index, n_edges)
    sum_score = xp.bin_sum(index, n_edges, s)
    shape = (n_resamples, n_edges)
    return BinTable(e, np.broadcast_to(count, shape), np.broadcast_to(sum_score, shape),
                    sum_target, strategy, closed, n_samples=int(s.shape[0]))


@dataclass(frozen=True)
class ConsistencyBand:
    """Per-bin range of a calibrated model's accuracy, given the observed scores.

    Attributes
    ----------
    edges : ndarray of shape (B + 1,)
    count : ndarray of shape (B,)
        Samples per bin.
    mean_score : ndarray of shape (B,)
        The bins' mean score, the centre a calibrated model's accuracy scatters around.
    low, high : ndarray of shape (B,)
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
        the resampled bin accuracies (NaN for empty bins).
    confidence : float
    settings : dict
        ``n_resamples``, ``random_state``, ``strategy``, ``closed``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.consistency import consistency_band
    >>> band = consistency_band(np.full(400, 0.8), edges=[0.0, 0.5, 1.0], random_state=0)
    >>> band.count.tolist(), round(float(band.low[1]), 2), round(float(band.high[1]), 2)
    ([0, 400], 0.76, 0.84)
    >>> bool(np.isnan(band.low[0]))                 # the empty bin has no band
    True
    """

    edges: np.ndarray
    count: np.ndarray
    mean_score: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float
    settings: dict = field(default_factory=dict)

    def outside(self, accuracy) -> np.ndarray:
        """Boolean mask of the bins whose ``accuracy`` lies outside ``[low, high]``."""
        a = np.asarray(accuracy, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (self.count > 0) & ((a < self.low) | (a > self.high))


def consistency_band(scores, edges=None, *, n_bins: int = 15, strategy: str = "uniform",
                     closed: str = "right", confidence: float = 0.95,
                     n_resamples: int = 1000, random_state=None) -> ConsistencyBand:
    """Consistency band of every bin: where a calibrated model's bin accuracy would fall.

    Parameters
    ----------
    scores : array of shape (N,)
        The observed scores (e.g. top-label confidences).
    edges, n_bins, strategy, closed, n_resamples, random_state
        As in :func:`consistency_resample`.
    confidence : float, default=0.95
        Probability that a calibrated model's accuracy lies in a bin's band.

    Returns
    -------
    ConsistencyBand

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.consistency import consistency_band
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=2000)
    >>> band = consistency_band(p, n_bins=5, random_state=0)
    >>> bool(np.all((band.low < band.mean_score) & (band.mean_score < band.high)))
    True
    """
    confidence = _check_confidence(confidence)
    batch = consistency_resample(scores, edges, n_bins=n_bins, strategy=strategy,
                                 closed=closed, n_resamples=n_resamples,
                                 random_state=random_state)
    count = np.asarray(batch.count[0])
    nonempty = count > 0
    accuracy = batch.sum_target[:, nonempty] / count[nonempty]
    alpha = (1 - confidence) / 2
    low = np.full(count.shape, np.nan)
    high = np.full(count.shape, np.nan)
    low[nonempty], high[nonempty] = np.quantile(accuracy, [alpha, 1 - alpha], axis=0)
    mean_score = np.full(count.shape, np.nan)
    mean_score[nonempty] = np.asarray(batch.sum_score[0])[nonempty] / count[nonempty]
    settings = dict(n_resamples=int(batch.sum_target.shape[0]), random_state=random_state,
                    strategy=batch.strategy, closed=closed)
    return ConsistencyBand(np.asarray(batch.edges), count, mean_score, low, high,
                           confidence, settings)


#: The consistency test's results are :class:`~calkit.metrics.CalibrationTestResult`, the one
#: result type of calkit's tests; this name is kept so that code importing it keeps working.
ConsistencyTestResult = CalibrationTestResult


def consistency_test(y_true, y_prob, *, metric: str | Callable = "ece", view: str = "top_label",
                     n_bins: int = 15, strategy: str = "uniform", norm: str = "l1",
                     closed: str = "right", n_resamples: int = 1000, random_state=None,
                     sum_tol: float | None = None) -> CalibrationTestResult:
    """Consistency-resampling test of calibration for a binned or smooth ECE.

    The statistic is computed on the data and on ``n_resamples`` resamples in
    which the targets are redrawn from a calibrated model with the same scores
    (see the module docstring); the p-value is the share of resamples at least
    as miscalibrated, ``(1 + #{null >= observed}) / (R + 1)``.

    Parameters
    ----------
    y_true : array of shape (N,)
        Integer labels (0/1 correctness with ``view="confidence"``).
    y_prob : array of shape (N, K) or (N,)
        Predicted probabilities.
    metric : {"ece", "smooth_ece"} or callable, default="ece"
        ``"ece"``: the binned calibration error of :func:`calkit.calibration_error`
        (``n_bins``, ``strategy``, ``norm``, ``closed``; one batch of bin tables
        for all resamples).  ``"smooth_ece"``: :func:`calkit.metrics.smooth_ece`
        (its bandwidth found again on each resample).  A callable
        ``f(scores, targets) -> float`` on the view's 1-D scores and 0/1 targets.
    view : {"top_label", "positive", "confidence"}, default="top_label"
        Which (score, target) pairs are tested, as in :func:`calkit.calibration_error`
        (``"confidence"``: a 1-D ``y_prob`` of confidences with 0/1 correctness
        as ``y_true``).
    n_bins, strategy, norm, closed
        Settings of ``metric="ece"``.
    n_resamples : int, default=1000
        Calibrated resamples.  The cost is ``n_resamples`` Bernoulli draws per
        sample and one bin sum per resample: about a minute at a million samples
        with the default on a 2-core machine (``metric="ece"``), so
        ``n_resamples=200`` (p-values down to 1/201) is a common bound there.
    random_state : None, int or numpy.random.Generator
    sum_tol : float, optional
        Row-sum tolerance of ``y_prob``, as in :func:`calkit.calibration_error`.

    Returns
    -------
    CalibrationTestResult
        ``statistic`` is the metric on the data, ``pvalue``
        ``(1 + #{null >= statistic}) / (n_resamples + 1)`` (small values reject
        calibration), ``null_distribution`` the metric on each calibrated
        resample; settings hold ``test="consistency"``, ``metric``, ``view``,
        ``n_resamples``, ``random_state`` and the metric's settings.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.metrics.consistency import consistency_test
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1, 1000)
    >>> y = (rng.uniform(size=1000) < p - 0.1).astype(int)      # over-confident by 0.1
    >>> r = consistency_test(y, p, view="positive", n_resamples=200, random_state=1)
    >>> bool(r.statistic == ece(y, p, view="positive")), r.pvalue  # nothing as bad in 200
    (True, 0.004975124378109453)
    >>> r.null_distribution.shape, r.settings["test"], r.settings["metric"]
    ((200,), 'consistency', 'ece')
    """
    check_option(view, "view", ("top_label", "positive", "confidence"))
    n_resamples = _check_n_resamples(n_resamples)
    if not callable(metric):
        check_option(metric, "metric", METRICS)
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    ((scores, targets),) = score_target_pairs(data, view)
    s = np.asarray(xp.to_numpy(scores), dtype=np.float64)
    t = np.asarray(xp.to_numpy(targets), dtype=bool)
    settings = dict(test="consistency", view=view, n_resamples=n_resamples,
                    random_state=random_state, null="consistency resampling")
    if metric == "ece":
        check_option(norm, "norm", _NORMS)
        e, index, strategy_used = _fixed_bins(s, None, n_bins, strategy, closed)
        b = int(e.shape[0]) - 1
        observed = float(error_from_table(BinTable(
            e, xp.bin_sum(index, b), xp.bin_sum(index, b, s), xp.bin_sum(index, b, t * 1.0),
            strategy_used, closed, n_samples=int(s.shape[0])), norm))
        null = np.asarray(error_from_table(consistency_resample(
            s, e, closed=closed, n_resamples=n_resamples, random_state=random_state), norm))
        settings.update(metric="ece", n_bins=n_bins, strategy=strategy, norm=norm,
                        closed=closed)
    else:
        statistic = _smooth_statistic() if metric == "smooth_ece" else metric
        name = "smooth_ece" if metric == "smooth_ece" else getattr(metric, "__name__", "metric")
        observed = float(statistic(s, t))
        rng = np.random.default_rng(random_state)
        null = np.empty(n_resamples)
        rows = max(1, _BLOCK_ELEMENTS // max(s.shape[0], 1))
        for start in range(0, n_resamples, rows):
            draws = rng.random((min(rows, n_resamples - start), s.shape[0])) < s
            null[start:start + draws.shape[0]] = [float(statistic(s, d)) for d in draws]
        settings.update(metric=name)
    if not np.isfinite(observed) or not np.all(np.isfinite(null)):
        raise ValueError(f"metric {settings['metric']!r} returned a non-finite value")
    pvalue = (1.0 + float(np.sum(null >= observed))) / (n_resamples + 1.0)
    return CalibrationTestResult(observed, pvalue, settings, null_distribution=null)


def _smooth_statistic():
    from calkit.metrics.smooth import smooth_ece_from_scores

    def smooth(scores, targets):
        return float(smooth_ece_from_scores(scores, targets.astype(np.float64)))

    return smooth
