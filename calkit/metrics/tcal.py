"""T-Cal: an adaptive test of calibration (Lee, Huang, Hassani and Dobriban 2022).

For scores ``Z`` in [0, 1] with 0/1 targets ``Y`` (one pair per sample, through
a view) and residuals ``r = Z - Y``, the debiased plug-in estimator (DPE) of
the squared L2 calibration error on ``m`` equal-width bins is

``DPE_m = (1 / n) sum_b [(sum_{i in b} r_i)^2 - sum_{i in b} r_i^2] / n_b``,

which keeps only the products ``r_i r_j`` with ``i != j`` and so is unbiased
for a calibrated model (it can be negative).  Bins are ``floor(m Z)``: ``[a, b)``
with ``Z = 1`` in a bin of its own, as in the paper's code.

The adaptive test looks at ``m = 2, 4, ..., 2^B`` with
``B = int(2 log2(n / sqrt(ln n)))`` and rejects calibration when some ``DPE_m``
exceeds its ``1 - alpha / B`` quantile under consistency resampling (scores
drawn with replacement, ``Y* ~ Bernoulli(Z*)``).  Here that rule is given as a
Bonferroni p-value ``min(1, B min_m p_m)``, with ``p_m`` the resampling
p-value of ``DPE_m``: it rejects at level ``alpha`` exactly when some ``p_m``
is below ``alpha / B``.

Dyadic bins nest and a resample is a vector of copy counts of the sorted
samples, so every level's bin sums are sums of the level below, and levels
whose non-empty bins hold the same samples are evaluated once.  Going from one
level to the next only the bins that merge are touched (a merge of ``k`` bins
removes ``k - 1``), so all levels together cost O(n) per resample and the test
O(R n) for ``R`` resamples, with no sort per resample.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral

import numpy as np

from calkit.metrics.calibration_tests import CalibrationTestResult, _pairs

_CHUNK_ELEMENTS = 1 << 22  # resampled scores held at once (a few hundred MB at most)


def n_levels(n_samples: int) -> int:
    """T-Cal's number of dyadic bin levels, ``B = int(2 log2(n / sqrt(ln n)))``.

    Examples
    --------
    >>> from calkit.metrics.tcal import n_levels
    >>> n_levels(200), n_levels(10_000)
    (12, 23)
    """
    if n_samples < 3:
        raise ValueError(f"T-Cal needs at least 3 samples, got {n_samples}")
    return max(1, int(2 * math.log2(n_samples / math.sqrt(math.log(n_samples)))))


def _partitions(z: np.ndarray, levels: int) -> list[tuple[list[int], np.ndarray]]:
    """Bins of the sorted scores ``z`` at ``m = 2, ..., 2^levels``, finest first.

    Each entry is (level numbers sharing one partition, start positions of its
    non-empty bins).  Levels whose non-empty bins hold the same samples give the
    same DPE, so each distinct partition is evaluated once.
    """
    out: list[tuple[list[int], np.ndarray]] = []
    for b in range(levels, 0, -1):
        ids = np.floor(z * 2.0 ** b)        # exact: multiplying by 2^b loses nothing
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        if out and out[-1][1].shape == starts.shape and np.array_equal(out[-1][1], starts):
            out[-1][0].append(b)
        else:
            out.append(([b], starts))
    return out


def _merge_plan(partitions, n: int) -> list:
    """What changes from each distinct partition to the next coarser one.

    The first step goes from single (sorted) samples to the finest partition.
    Every bin is kept at the slot of its first sample (its representative).
    Going coarser, only the bins that share a coarser bin with another change:
    for each step, the representatives of the bins merged in pairs (left and
    right: most merges at the fine levels), and of those in larger groups (in
    order) with where their groups start among them and each group's
    representative.  Each merge of ``k`` bins removes ``k - 1``, so all steps
    together touch at most ``2 n`` bins: the levels cost O(n) together, not
    O(n) each.
    """
    prev = prev_rep = np.arange(n)                      # from single samples
    steps = []
    for members, starts in partitions:
        group = np.searchsorted(starts, prev, side="right") - 1   # coarser bin of each bin
        merging = np.bincount(group, minlength=starts.shape[0])[group] > 1
        reps, groups = prev_rep[merging], group[merging]
        heads = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if reps.size else reps
        pair = np.diff(np.r_[heads, reps.shape[0]]) == 2     # most merges join two bins
        first = heads[pair]
        big = np.isin(groups, groups[heads[~pair]])
        big_reps = reps[big]
        big_heads = np.flatnonzero(np.r_[True, groups[big][1:] != groups[big][:-1]]) \
            if big_reps.size else big_reps
        steps.append((members, reps[first], reps[first + 1], big_reps, big_heads,
                      big_reps[big_heads]))
        prev_rep = prev_rep[np.searchsorted(prev, starts)]
        prev = starts
    return steps


def _bin_terms(s1: np.ndarray, s2: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Every bin's ``[(sum r)^2 - sum r^2] / n_b`` summed per resample (an empty bin adds 0).

    Arrays are (resamples, bins), as everywhere in :func:`_level_dpe`."""
    return ((s1 * s1 - s2) / np.maximum(count, 1.0)).sum(axis=1)


def _level_dpe(plan, z: np.ndarray, copies: np.ndarray, hits: np.ndarray,
               levels: int) -> np.ndarray:
    """DPE at every level for rows of resample counts (``plan`` from :func:`_merge_plan`).

    ``copies[r, i]`` is how often sorted sample ``i`` is in resample ``r`` and
    ``hits[r, i]`` how many of those copies have target 1; returns (rows, levels).
    Each level comes from the one below through the bins that merge into it.
    """
    n = z.shape[0]
    s1 = copies * z - hits                                        # sum of r = z - y
    s2 = copies * (z * z) - 2.0 * z * hits + hits                 # sum of r^2 (y^2 = y)
    count = copies.astype(np.float64)
    total = _bin_terms(s1, s2, count)
    out = np.empty((copies.shape[0], levels))
    for members, left, right, reps, heads, group_reps in plan:
        if left.size:                                    # pairs: one addition each
            a = [np.take(x, left, axis=1) for x in (s1, s2, count)]
            b = [np.take(x, right, axis=1) for x in (s1, s2, count)]
            merged = [u + v for u, v in zip(a, b, strict=True)]
            total = total + _bin_terms(*merged) - _bin_terms(*a) - _bin_terms(*b)
            s1[:, left], s2[:, left], count[:, left] = merged
        if reps.size:                                    # groups of three or more
            parts = [np.take(x, reps, axis=1) for x in (s1, s2, count)]
            merged = [np.add.reduceat(x, heads, axis=1) for x in parts]
            total = total + _bin_terms(*merged) - _bin_terms(*parts)
            s1[:, group_reps], s2[:, group_reps], count[:, group_reps] = merged
        out[:, [b - 1 for b in members]] = (total / n)[:, None]
    return out


def debiased_plugin_ece(y_true, y_prob, *, n_bins: int, view: str | None = None,
                        sum_tol: float | None = None) -> float:
    """T-Cal's debiased plug-in estimate of the squared L2 calibration error.

    ``n_bins`` equal-width bins ``floor(n_bins Z)`` (``[a, b)``, ``Z = 1`` alone);
    see the module docstring.  Unbiased (so possibly negative) for a calibrated
    model; compare with :func:`calkit.debiased_ece`, Kumar et al.'s estimator,
    which subtracts the binomial variance of the bin accuracy instead.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import debiased_plugin_ece
    >>> z = np.array([0.1, 0.2, 0.6, 0.9])
    >>> round(debiased_plugin_ece([0, 1, 1, 1], z, n_bins=2, view="positive"), 6)
    -0.01
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    idx = np.minimum(np.floor(scores * n_bins), n_bins).astype(np.int64)
    r = scores - targets
    count = np.bincount(idx, minlength=n_bins + 1)
    s1 = np.bincount(idx, weights=r, minlength=n_bins + 1)
    s2 = np.bincount(idx, weights=r * r, minlength=n_bins + 1)
    keep = count > 0
    return float(np.sum((s1[keep] ** 2 - s2[keep]) / count[keep]) / scores.shape[0])


def t_cal_test(y_true, y_prob, *, n_resamples: int = 3000, view: str | None = None,
               random_state=0, sum_tol: float | None = None) -> CalibrationTestResult:
    """T-Cal adaptive test of calibration (Lee, Huang, Hassani and Dobriban 2022).

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    n_resamples : int, default=3000
        Consistency resamples for the null distribution (the paper's 3,000).
        The cost is linear in it and in ``N`` (every level is reached from the
        one below through the bins that merge): some ``0.1-0.3 n_resamples N``
        microseconds on a 2-core machine (5,000 samples: about 2 s; 100,000:
        about 45 s; a million: about 15 min with the default, four to five
        times less than summing every level in full).  The smallest p-value is
        ``n_levels / (n_resamples + 1)``, so ``n_resamples = 20 n_levels``
        (about 700 at a million samples) is the
        least that can still reject at the 5% level; or test a random subsample.
    view : {"top_label", "positive", "confidence"}, optional
        Which (score, target) pairs are tested; default top-label for ``(N, K)``
        probabilities, and a 1-D ``y_prob`` needs it said (as for the metrics).
    random_state : int or numpy Generator, default=0
        Seeds the resampling.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    CalibrationTestResult
        ``statistic`` is the DPE at the most significant level, ``pvalue`` the
        Bonferroni-adjusted p-value; ``settings["dpe"]`` and
        ``settings["level_pvalues"]`` hold every level's DPE and p-value, keyed
        by the number of bins.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import t_cal_test
    >>> rng = np.random.default_rng(0)
    >>> z = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < z).astype(int)
    >>> t_cal_test(y, z, view="positive", n_resamples=1000).reject()
    False
    >>> y = (rng.uniform(size=1000) < z ** 1.5).astype(int)
    >>> t_cal_test(y, z, view="positive", n_resamples=1000).reject()
    True
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, Integral) or \
            n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    n = scores.shape[0]
    levels = n_levels(n)
    floor_p = min(1.0, levels / (1 + n_resamples))
    if floor_p >= 0.05:
        warnings.warn(f"with {n_resamples} resamples and {levels} levels the smallest p-value "
                      f"T-Cal can give is {floor_p:.3g}, so it cannot reject at the 5% level; "
                      f"use n_resamples >= {math.ceil(20 * levels)}", stacklevel=2)
    order = np.argsort(scores, kind="stable")
    z = scores[order]
    plan = _merge_plan(_partitions(z, levels), n)
    observed = _level_dpe(plan, z, np.ones((1, n)), targets[order][None, :], levels)[0]
    rng = np.random.default_rng(random_state)
    exceed = np.zeros(levels, dtype=np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(rows, n))                # scores drawn with replacement
        y_star = rng.uniform(size=(rows, n)) < z[idx]           # Y* ~ Bernoulli(Z*)
        keys = (idx + n * np.arange(rows)[:, None]).ravel()
        copies = np.bincount(keys, minlength=rows * n).reshape(rows, n)
        hits = np.bincount(keys, weights=y_star.ravel(), minlength=rows * n).reshape(rows, n)
        null = _level_dpe(plan, z, copies, hits, levels)
        exceed += np.count_nonzero(null >= observed, axis=0)
    level_p = (1 + exceed) / (1 + n_resamples)
    best = int(np.argmin(level_p))
    bins = [2 ** b for b in range(1, levels + 1)]
    settings = dict(test="t_cal", view=view, n_samples=n, n_resamples=n_resamples,
                    n_levels=levels, min_pvalue=floor_p, selected_n_bins=bins[best],
                    adjustment="bonferroni",
                    dpe=dict(zip(bins, observed.tolist(), strict=True)),
                    level_pvalues=dict(zip(bins, level_p.tolist(), strict=True)),
                    null="consistency resampling")
    return CalibrationTestResult(float(observed[best]), float(min(1.0, levels * level_p[best])),
                                 settings)
