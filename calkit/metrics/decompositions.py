"""Decompositions: over- vs under-confidence, and calibration vs refinement of a score.

* :func:`signed_ece`: the binned ECE split into its over-confident and
  under-confident parts, and their difference (the signed calibration error).
* :func:`brier_decomposition`: Murphy's (1973) partition of the Brier score on a
  bin table, ``BS = REL - RES + UNC + WBV - WBC`` with the two within-bin terms
  of Stephenson, Coelho and Jolliffe (2008) that make it an exact identity.
* :func:`calibration_refinement`: the CORP split (Dimitriadis, Gneiting and
  Jordan 2021) of the Brier or log score into miscalibration ``MCB``,
  discrimination ``DSC`` and uncertainty ``UNC`` through isotonic (PAV)
  recalibration on the same data: ``S = MCB - DSC + UNC``.

All three look at one (score, 0/1 target) pair per sample through a view
(``"top_label"`` or ``"positive"``), as the calibration tests do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.special import xlogy

from calkit import _array as xp
from calkit._validation import check_option
from calkit.binning import CLOSED, STRATEGIES, BinTable, _bin_table, resolve_n_bins
from calkit.metrics.calibration_tests import _pairs

#: proper scores :func:`calibration_refinement` decomposes
SCORES = ("brier", "log")


@dataclass(frozen=True)
class SignedCalibrationResult:
    """Binned calibration error split by the sign of each bin's gap.

    Attributes
    ----------
    value : float
        Signed calibration error ``sum_b (n_b / N) gap_b`` with
        ``gap_b = mean score - mean target``: positive means over-confident on
        average.  It equals ``mean(score) - mean(target)`` whatever the bins.
    over, under : float
        ``sum_b (n_b / N) max(gap_b, 0)`` and ``sum_b (n_b / N) max(-gap_b, 0)``:
        the ECE of the over- and under-confident bins; ``over + under`` is the
        L1 ECE and ``over - under`` is ``value``.
    table : BinTable
        The bins; ``table.gap`` gives the per-bin signed gaps.
    settings : dict
        ``n_bins``, ``strategy``, ``closed``, ``view``, ``n_samples``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import signed_ece
    >>> r = signed_ece([1, 0, 1, 1], np.array([0.9, 0.8, 0.3, 0.2]), n_bins=2,
    ...                view="positive")
    >>> round(r.value, 6), round(r.over, 6), round(r.under, 6)
    (-0.2, 0.175, 0.375)
    """

    value: float
    over: float
    under: float
    table: BinTable
    settings: dict = field(default_factory=dict)

    @property
    def ece(self) -> float:
        """The L1 ECE of the same bins, ``over + under``."""
        return self.over + self.under

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return (f"SignedCalibrationResult(signed={self.value:.6f}, over={self.over:.6f}, "
                f"under={self.under:.6f}, {self.settings.get('view')})")

    def to_dict(self) -> dict:
        """JSON-ready dict of the numbers, the settings and the bin table."""
        return {"signed_ece": self.value, "over": self.over, "under": self.under,
                "ece": self.ece, "settings": dict(self.settings),
                "table": self.table.to_dict()}


def signed_parts_from_table(table: BinTable) -> tuple:
    """``(signed, over, under)`` of one bin table, the numbers of :func:`signed_ece`.

    ``signed = sum_b (S_b - T_b) / N``, ``over`` and ``under`` the same sum over
    the bins where the score sum ``S_b`` exceeds the target sum ``T_b`` (or falls
    below it), with ``|S_b - T_b|``.  Works on numpy and torch tables (the
    streaming accumulator's), returning 0-d arrays of the table's kind.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics.decompositions import signed_parts_from_table
    >>> t = bin_table(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 0, 1, 1]), n_bins=2)
    >>> [round(float(v), 6) for v in signed_parts_from_table(t)]
    [-0.2, 0.175, 0.375]
    """
    diff = table.sum_score - table.sum_target
    size = xp.abs_(diff)
    n = table.n_samples
    return diff.sum() / n, (size + diff).sum() / (2 * n), (size - diff).sum() / (2 * n)


def murphy_from_table(table: BinTable) -> dict:
    """Reliability, resolution and uncertainty of one bin table (Murphy 1973).

    The three terms of :class:`BrierDecomposition` that the table alone
    determines: ``REL = sum_b (n_b / N)(mean score_b - mean target_b)^2``,
    ``RES = sum_b (n_b / N)(mean target_b - mean target)^2`` and
    ``UNC = o (1 - o)``.  The two within-bin terms (and so the Brier score
    itself) need ``sum score^2`` and ``sum score * target`` as well.  Numpy or
    torch tables; values are 0-d arrays of the table's kind.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics.decompositions import murphy_from_table
    >>> t = bin_table(np.array([0.2, 0.4, 0.7, 0.9]), np.array([0, 1, 1, 1]), n_bins=2)
    >>> {k: round(float(v), 6) for k, v in murphy_from_table(t).items()}
    {'reliability': 0.04, 'resolution': 0.0625, 'uncertainty': 0.1875}
    """
    n = table.n_samples
    keep = table.count > 0
    count = xp.as_float64(table.count)[keep]
    sum_f, sum_o = table.sum_score[keep], table.sum_target[keep]
    mean_f, mean_o = sum_f / count, sum_o / count
    base = table.sum_target.sum() / n
    return dict(reliability=(count * (mean_f - mean_o) ** 2).sum() / n,
                resolution=(count * (mean_o - base) ** 2).sum() / n,
                uncertainty=base * (1.0 - base))


def _check_binning(n_bins, strategy, closed, n_samples) -> tuple[int, str | None]:
    """The number of bins (``n_bins`` or a rule of ``n_samples``) and the rule, if any."""
    check_option(strategy, "strategy", STRATEGIES)
    check_option(closed, "closed", CLOSED)
    return resolve_n_bins(n_bins, n_samples)


def signed_ece(y_true, y_prob, *, n_bins: int | str = 15, strategy: str = "uniform",
               view: str | None = None, closed: str = "right",
               sum_tol: float | None = None) -> SignedCalibrationResult:
    """Signed calibration error and the over-/under-confident parts of the ECE.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    n_bins : int or str, default=15
        Number of bins, or a bin-count rule of the number of samples
        (``"sqrt"``, ``"cube_root"``, ``"rice"``, ``"sturges"``:
        :func:`calkit.binning.resolve_n_bins`; recorded in ``settings``).
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (:mod:`calkit.binning`).
    view : {"top_label", "positive", "confidence"}, optional
        Which (score, target) pairs are binned; default top-label for ``(N, K)``
        probabilities, and a 1-D ``y_prob`` needs it said (as for the metrics).
    closed : {"right", "left"}, default="right"
        Bin edge convention (:mod:`calkit.binning`).
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    SignedCalibrationResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.metrics import signed_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p ** 2).astype(int)   # over-confident
    >>> r = signed_ece(y, p, view="positive")
    >>> r.value > 0, bool(np.isclose(r.ece, ece(y, p, view="positive")))
    (True, True)
    """
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    n_bins, rule = _check_binning(n_bins, strategy, closed, scores.shape[0])
    table = _bin_table(scores, targets, n_bins, strategy, closed)
    n = table.n_samples
    settings = dict(n_bins=n_bins, strategy=strategy, closed=closed, view=view, n_samples=n)
    if rule is not None:
        settings["n_bins_rule"] = rule
    value, over, under = (float(v) for v in signed_parts_from_table(table))
    return SignedCalibrationResult(value, over, under, table, settings)


@dataclass(frozen=True)
class BrierDecomposition:
    """Murphy's partition of the Brier score of one bin table.

    ``brier = reliability - resolution + uncertainty + within_variance -
    within_covariance`` holds exactly; the familiar three-term form
    ``REL - RES + UNC`` is exact only when scores are constant within bins.

    Attributes
    ----------
    brier : float
        ``mean((score - target)^2)``.
    reliability : float
        ``REL = sum_b (n_b / N) (mean score_b - mean target_b)^2`` (lower is better).
    resolution : float
        ``RES = sum_b (n_b / N) (mean target_b - mean target)^2`` (higher is better).
    uncertainty : float
        ``UNC = o (1 - o)`` with ``o`` the mean target.
    within_variance : float
        ``WBV = (1 / N) sum_b sum_{i in b} (score_i - mean score_b)^2``.
    within_covariance : float
        ``WBC = (2 / N) sum_b sum_{i in b} (score_i - mean score_b)(target_i - mean target_b)``.
    table : BinTable
    settings : dict

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import brier_decomposition
    >>> d = brier_decomposition([0, 1, 1, 1], np.array([0.2, 0.4, 0.7, 0.9]), n_bins=2,
    ...                         view="positive")
    >>> round(d.reliability, 6), round(d.resolution, 6), d.uncertainty
    (0.04, 0.0625, 0.1875)
    >>> bool(np.isclose(d.reliability - d.resolution + d.uncertainty + d.within_variance
    ...                 - d.within_covariance, d.brier))
    True
    """

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_variance: float
    within_covariance: float
    table: BinTable
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict of the terms, the settings and the bin table."""
        names = ("brier", "reliability", "resolution", "uncertainty", "within_variance",
                 "within_covariance")
        out = {k: getattr(self, k) for k in names}
        out.update(settings=dict(self.settings), table=self.table.to_dict())
        return out


def brier_decomposition(y_true, y_prob, *, n_bins: int | str = 10, strategy: str = "uniform",
                        view: str = "positive", closed: str = "right",
                        sum_tol: float | None = None) -> BrierDecomposition:
    """Murphy (1973) decomposition of the Brier score on a bin table.

    The bins come from the binning engine; the within-bin terms need only the
    table and two sums over all samples (``sum score^2`` and
    ``sum score * target``), so the whole decomposition is one pass.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    n_bins : int or str, default=10
        Number of bins, or a bin-count rule of the number of samples (as in
        :func:`signed_ece`).
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins.
    view : {"positive", "top_label"}, default="positive"
        ``"positive"``: the binary Brier score of ``P(y = 1)`` (binary tasks);
        ``"top_label"``: the Brier score of the confidence against correctness.
    closed : {"right", "left"}, default="right"
        Bin edge convention; ``"left"`` gives the bins ``min(floor(B p), B - 1)``
        used in much of the forecasting literature.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    BrierDecomposition

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import brier_decomposition
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=5000)
    >>> y = (rng.uniform(size=5000) < p).astype(int)    # calibrated
    >>> d = brier_decomposition(y, p)
    >>> d.reliability < 0.001, d.resolution > 0.05
    (True, True)
    """
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    n_bins, rule = _check_binning(n_bins, strategy, closed, scores.shape[0])
    table = _bin_table(scores, targets, n_bins, strategy, closed)
    n = table.n_samples
    keep = table.count > 0
    count = table.count[keep].astype(np.float64)
    sum_f, sum_o = table.sum_score[keep], table.sum_target[keep]
    mean_f, mean_o = sum_f / count, sum_o / count
    terms = {k: float(v) for k, v in murphy_from_table(table).items()}
    terms.update(
        brier=float(np.mean((scores - targets) ** 2)),
        within_variance=float((np.dot(scores, scores) - np.sum(sum_f * mean_f)) / n),
        within_covariance=float(2.0 * (np.dot(scores, targets) - np.sum(sum_f * mean_o)) / n),
    )
    settings = dict(n_bins=n_bins, strategy=strategy, closed=closed, view=view, n_samples=n)
    if rule is not None:
        settings["n_bins_rule"] = rule
    return BrierDecomposition(**terms, table=table, settings=settings)


@dataclass(frozen=True)
class CalibrationRefinement:
    """CORP decomposition of a proper score: ``score = MCB - DSC + UNC``.

    Attributes
    ----------
    score : float
        Mean score of the original predictions (lower is better).
    miscalibration : float
        ``MCB = score - score of the PAV-recalibrated predictions`` (>= 0).
    discrimination : float
        ``DSC = UNC - score of the recalibrated predictions`` (>= 0).
    uncertainty : float
        Score of the constant prediction ``mean(target)``.
    refinement : float
        Score of the recalibrated predictions, ``UNC - DSC``: what is left after
        perfect in-sample recalibration.
    recalibrated : ndarray of shape (N,)
        The PAV-recalibrated scores.
    settings : dict

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import calibration_refinement
    >>> r = calibration_refinement([0, 1, 0, 1], np.array([0.1, 0.3, 0.6, 0.8]),
    ...                            view="positive")
    >>> r.recalibrated.tolist()
    [0.0, 0.5, 0.5, 1.0]
    >>> round(r.miscalibration, 4), round(r.discrimination, 4), r.uncertainty
    (0.1, 0.125, 0.25)
    """

    score: float
    miscalibration: float
    discrimination: float
    uncertainty: float
    refinement: float
    recalibrated: np.ndarray
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict of the terms and settings (without the recalibrated scores)."""
        names = ("score", "miscalibration", "discrimination", "uncertainty", "refinement")
        out = {k: getattr(self, k) for k in names}
        out["settings"] = dict(self.settings)
        return out


def _mean_score(p: np.ndarray, y: np.ndarray, score: str) -> float:
    if score == "brier":
        return float(np.mean((p - y) ** 2))
    with np.errstate(divide="ignore"):
        return float(-np.mean(xlogy(y, p) + xlogy(1.0 - y, 1.0 - p)))


def calibration_refinement(y_true, y_prob, *, score: str = "brier", view: str = "positive",
                           sum_tol: float | None = None) -> CalibrationRefinement:
    """Split a proper score into miscalibration, discrimination and uncertainty (CORP).

    The scores are recalibrated in-sample by isotonic regression (the
    pool-adjacent-violators algorithm, tied scores pooled first, so the result
    does not depend on sample order); then ``MCB = S(p) - S(PAV(p))``,
    ``DSC = S(mean y) - S(PAV(p))`` and ``UNC = S(mean y)``, and
    ``S(p) = MCB - DSC + UNC`` exactly (Dimitriadis, Gneiting and Jordan 2021).

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    score : {"brier", "log"}, default="brier"
        The proper score: ``mean((p - y)^2)`` or the log loss (``inf`` when a
        score of 0 or 1 is wrong, which makes ``MCB`` infinite).
    view : {"positive", "top_label"}, default="positive"
        Which (score, target) pairs are decomposed.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    CalibrationRefinement

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import calibration_refinement
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=3000)
    >>> y = (rng.uniform(size=3000) < p ** 3).astype(int)   # badly over-confident
    >>> r = calibration_refinement(y, p)
    >>> r.miscalibration > 0.05, bool(np.isclose(
    ...     r.miscalibration - r.discrimination + r.uncertainty, r.score))
    (True, True)
    """
    check_option(score, "score", SCORES)
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    pooled = np.bincount(inverse, weights=targets) / counts
    fit = isotonic_regression(pooled, weights=counts.astype(np.float64), increasing=True).x
    recalibrated = np.clip(fit, 0.0, 1.0)[inverse]
    base = float(targets.mean())
    s_orig = _mean_score(scores, targets, score)
    s_recal = _mean_score(recalibrated, targets, score)
    s_base = _mean_score(np.full_like(scores, base), targets, score)
    settings = dict(score=score, view=view, n_samples=int(scores.shape[0]),
                    recalibration="isotonic (PAV, ties pooled, in-sample)")
    return CalibrationRefinement(s_orig, s_orig - s_recal, s_base - s_recal, s_base, s_recal,
                                 recalibrated, settings)
