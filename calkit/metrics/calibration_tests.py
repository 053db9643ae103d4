"""Statistical tests of calibration: is a model miscalibrated, or is it noise?

Each test takes ``(y_true, y_prob)`` like the metrics, looks at one (score,
0/1 target) pair per sample through a *view* (``"top_label"``: confidence of
the predicted class against correctness, the default for ``(N, K)``
probabilities; ``"positive"``: ``P(y = 1)`` of a binary task against ``y``;
``"confidence"``: (correct, confidence) pairs; a 1-D ``y_prob`` needs the view
said, as for the metrics) and returns a :class:`CalibrationTestResult` with
the statistic, its p-value and the settings that produced them.

* :func:`hosmer_lemeshow`: the Hosmer-Lemeshow ``C-hat`` statistic on groups of
  equal mass (deciles of risk), built by the binning engine.
* :func:`spiegelhalter_z`: Spiegelhalter's (1986) z-test of the Brier score.

The null hypothesis of both is that the scores are calibrated,
``P(target = 1 | score = s) = s``, with samples independent.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from scipy import stats

from calkit import _array as xp
from calkit._export import Exportable
from calkit._validation import check_classification, check_option
from calkit.binning import BinTable, _bin_table, _bin_table_explicit
from calkit.metrics._views import resolve_view, score_target_pairs

#: views the tests support: each gives one (score, target) pair per sample
TEST_VIEWS = ("top_label", "positive", "confidence")
#: how Hosmer-Lemeshow groups are formed
HL_GROUPINGS = ("quantile", "hoslem")
#: Paul, Pennell and Lemeshow (2013) studied their group rule up to this many samples
_PAUL_MAX_N = 25_000


@dataclass(frozen=True)
class CalibrationTestResult(Exportable):
    """The outcome of a test of calibration: statistic, p-value, settings.

    The one result type of every test in :mod:`calkit.metrics` that returns a
    p-value: :func:`hosmer_lemeshow`, :func:`spiegelhalter_z`,
    :func:`~calkit.metrics.consistency_test`, :func:`~calkit.metrics.skce_test`
    and :func:`~calkit.metrics.t_cal_test`.  ``settings["test"]`` names the test.

    Attributes
    ----------
    statistic : float
        The test statistic.
    pvalue : float
        Probability, under the null hypothesis of calibration, of a statistic at
        least as extreme.
    settings : dict
        The test's name (``"test"``) and every setting that produced the numbers
        (view, groups, degrees of freedom, resamples, seed, ...).
    table : BinTable or None
        The groups behind a grouped statistic (Hosmer-Lemeshow), else None.
    null_distribution : ndarray of shape (n_resamples,) or None
        The statistic on each resample of a resampling test (the consistency
        test, the bootstrap SKCE test), else None.
    p_value, null
        Aliases of ``pvalue`` and ``null_distribution``, the names
        :func:`~calkit.metrics.consistency_test` results used before the test
        results were one type; code written against them keeps working.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import spiegelhalter_z
    >>> r = spiegelhalter_z([0, 1, 1, 0], np.array([0.2, 0.6, 0.7, 0.4]), view="positive")
    >>> r.settings["test"], round(r.statistic, 4), round(r.pvalue, 4)
    ('spiegelhalter_z', -1.2039, 0.2286)
    >>> r.reject(0.05), r.null_distribution is None
    (False, True)
    """

    statistic: float
    pvalue: float
    settings: dict = field(default_factory=dict)
    table: BinTable | None = None
    null_distribution: np.ndarray | None = None

    @property
    def p_value(self) -> float:
        """Alias of ``pvalue``."""
        return self.pvalue

    @property
    def null(self) -> np.ndarray | None:
        """Alias of ``null_distribution``."""
        return self.null_distribution

    def reject(self, alpha: float = 0.05) -> bool:
        """Whether calibration is rejected at level ``alpha``."""
        if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
        return bool(self.pvalue < alpha)

    def to_dict(self) -> dict:
        """JSON-ready dict: statistic, p-value, settings (the groups' table, the null)."""
        out = {"statistic": self.statistic, "pvalue": self.pvalue,
               "settings": dict(self.settings)}
        if self.table is not None:
            out["table"] = self.table.to_dict()
        if self.null_distribution is not None:
            out["null_distribution"] = np.asarray(self.null_distribution).tolist()
        return out

    def _frame_columns(self) -> dict:
        return {"test": [self.settings.get("test")], "statistic": [self.statistic],
                "pvalue": [self.pvalue]}

    def __repr__(self) -> str:
        extra = ("" if self.null_distribution is None else
                 f", {len(self.null_distribution)} resamples")
        return (f"CalibrationTestResult({self.settings.get('test')}: "
                f"statistic={self.statistic:.6g}, pvalue={self.pvalue:.4g}{extra})")


def _pairs(y_true, y_prob, view: str | None, sum_tol) -> tuple[np.ndarray, np.ndarray, str]:
    """The (score, target) pair of ``view`` as float64 numpy arrays, and the view used.

    ``view`` follows the metrics' rule (:func:`calkit.metrics._views.resolve_view`):
    ``None`` is the top-label view of ``(N, K)`` probabilities, and a 1-D
    ``y_prob`` without a view is refused rather than guessed.
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    view = resolve_view(view, data, TEST_VIEWS)
    ((scores, targets),) = score_target_pairs(data, view)
    return (np.asarray(xp.to_numpy(scores), dtype=np.float64),
            np.asarray(xp.to_numpy(targets), dtype=np.float64), view)


def paul_n_groups(n_samples: int, n_events: int) -> int:
    """Number of Hosmer-Lemeshow groups for ``n_samples`` (Paul, Pennell and Lemeshow 2013).

    10 groups up to 1,000 samples; above,
    ``max(10, min(m / 2, (n - m) / 2, 2 + 8 (n / 1000)^2))`` (floored) with ``m``
    the number of events, which keeps the test's power near that of 10 groups at
    ``n = 1000``.  The rule was derived for ``n <= 25,000``; beyond it the
    formula is still applied (a warning says so), and subsampling or another
    test (:func:`spiegelhalter_z`) is advisable.

    Examples
    --------
    >>> from calkit.metrics.calibration_tests import paul_n_groups
    >>> paul_n_groups(500, 100), paul_n_groups(5000, 1000), paul_n_groups(5000, 30)
    (10, 202, 15)
    """
    if n_samples > _PAUL_MAX_N:
        warnings.warn(f"the group rule of Paul et al. (2013) was studied for at most "
                      f"{_PAUL_MAX_N} samples, got {n_samples}; the Hosmer-Lemeshow test has "
                      "high power against tiny miscalibration at this size", stacklevel=3)
    if n_samples <= 1000:
        return 10
    g = min(n_events / 2, (n_samples - n_events) / 2, 2 + 8 * (n_samples / 1000) ** 2)
    return max(10, math.floor(g))


def hosmer_lemeshow(y_true, y_prob, *, n_groups: int | str = 10, view: str | None = None,
                    grouping: str = "quantile", df: int | str = "in_sample",
                    sum_tol: float | None = None) -> CalibrationTestResult:
    """Hosmer-Lemeshow goodness-of-fit test of calibration.

    Samples are grouped by their score into ``G`` groups of (about) equal mass;
    with ``n_g`` samples, ``O_g`` events and ``E_g`` summed scores in group ``g``
    and ``p_g = E_g / n_g``,

    ``C = sum_g (O_g - E_g)^2 / (n_g p_g (1 - p_g))``,

    the Pearson statistic of the 2 x G table of observed against expected
    counts.  Under the null hypothesis of calibration (with the model fitted on
    these data) ``C`` is approximately chi-square with ``G - 2`` degrees of
    freedom; for models evaluated on new data, ``df="external"`` uses ``G``.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    n_groups : int or "paul", default=10
        Number of groups, or ``"paul"`` for the sample-size rule of Paul,
        Pennell and Lemeshow (2013) (:func:`paul_n_groups`), which keeps the
        power of the test from growing without bound with ``N``.
    view : {"top_label", "positive", "confidence"}, optional
        Which (score, target) pairs are tested; default top-label for ``(N, K)``
        probabilities, and a 1-D ``y_prob`` needs it said (as for the metrics).
    grouping : {"quantile", "hoslem"}, default="quantile"
        ``"quantile"``: calkit's equal-mass bins (:mod:`calkit.binning`: the
        sorted scores split as evenly as possible, ties never split).
        ``"hoslem"``: R ``ResourceSelection::hoslem.test``'s groups: breaks at
        the type-7 quantiles of the scores, duplicates dropped, bins ``(a, b]``
        with the first closed.  Both agree when scores have no ties.
    df : {"in_sample", "external"} or int, default="in_sample"
        Degrees of freedom of the chi-square null: ``G - 2`` (``"in_sample"``,
        with ``G`` the number of non-empty groups), ``G`` (``"external"``) or an
        explicit positive integer.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    CalibrationTestResult
        ``statistic`` is ``C``, ``table`` the groups; settings record
        ``n_groups`` (non-empty groups used), ``df``, ``grouping`` and ``view``.

    Raises
    ------
    ValueError
        When a group's mean score is exactly 0 or 1 (the expected count of a
        cell is 0 and ``C`` is undefined), or fewer than 3 groups remain with
        ``df="in_sample"``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import hosmer_lemeshow
    >>> p = (2 * np.arange(1, 21) - 1) / 40
    >>> y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    >>> r = hosmer_lemeshow(y, p, view="positive")
    >>> round(r.statistic, 7), r.settings["df"], round(r.pvalue, 7)
    (5.8230053, 8, 0.6670502)
    """
    check_option(grouping, "grouping", HL_GROUPINGS)
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    n = scores.shape[0]
    if isinstance(n_groups, str):
        check_option(n_groups, "n_groups", ("paul",))
        groups = paul_n_groups(n, int(targets.sum()))
    elif isinstance(n_groups, bool) or not isinstance(n_groups, Integral) or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2 or 'paul', got {n_groups!r}")
    else:
        groups = int(n_groups)
    groups = min(groups, n)
    if grouping == "quantile":
        table = _bin_table(scores, targets, groups, "quantile", "right")
    else:
        breaks = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, groups + 1)))
        if breaks.shape[0] < 2:
            raise ValueError("all scores are equal: the Hosmer-Lemeshow groups are undefined")
        table = _bin_table_explicit(scores, targets, breaks, "right")
    table = table.to_numpy()
    keep = table.count > 0
    n_g = table.count[keep].astype(np.float64)
    expected = table.sum_score[keep]
    observed = table.sum_target[keep]
    mean_p = expected / n_g
    if np.any((mean_p <= 0) | (mean_p >= 1)):
        raise ValueError("a Hosmer-Lemeshow group has mean score 0 or 1, so an expected count "
                         "is 0 and the statistic is undefined; use fewer groups")
    statistic = float(np.sum((observed - expected) ** 2 / (n_g * mean_p * (1 - mean_p))))
    used = int(keep.sum())
    dof = _hl_df(df, used)
    settings = dict(test="hosmer_lemeshow", view=view, n_groups=used, grouping=grouping,
                    df=dof, df_rule=df if isinstance(df, str) else "explicit", n_samples=n,
                    null="chi-square")
    return CalibrationTestResult(statistic, float(stats.chi2.sf(statistic, dof)), settings,
                                 table)


def _hl_df(df, n_groups: int) -> int:
    if isinstance(df, str):
        check_option(df, "df", ("in_sample", "external"))
        dof = n_groups - 2 if df == "in_sample" else n_groups
        if dof < 1:
            raise ValueError(f"only {n_groups} non-empty groups: df='in_sample' needs at "
                             "least 3 (use more groups, or df='external')")
        return dof
    if isinstance(df, bool) or not isinstance(df, Integral) or df < 1:
        raise ValueError(f"df must be 'in_sample', 'external' or a positive integer, got {df!r}")
    return int(df)


def spiegelhalter_z(y_true, y_prob, *, view: str | None = None,
                    sum_tol: float | None = None) -> CalibrationTestResult:
    """Spiegelhalter's (1986) z-test of calibration.

    ``z = sum_i (y_i - p_i)(1 - 2 p_i) / sqrt(sum_i (1 - 2 p_i)^2 p_i (1 - p_i))``:
    the Brier score standardised by its mean and variance under the null
    hypothesis that ``y_i ~ Bernoulli(p_i)`` independently.  The two-sided
    p-value is ``2 Phi(-|z|)`` (as R ``rms::val.prob``'s ``S:p``).  Positive
    ``z``: the targets are further from the scores than calibration allows.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    view : {"top_label", "positive", "confidence"}, optional
        Which (score, target) pairs are tested; default top-label for ``(N, K)``
        probabilities, and a 1-D ``y_prob`` needs it said (as for the metrics).
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    CalibrationTestResult

    Raises
    ------
    ValueError
        When every score is 0, 1/2 or 1 (the null variance is 0).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import spiegelhalter_z
    >>> p = (2 * np.arange(1, 21) - 1) / 40
    >>> y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    >>> r = spiegelhalter_z(y, p, view="positive")
    >>> round(r.statistic, 8), round(r.pvalue, 8)
    (0.51890318, 0.60382826)
    """
    scores, targets, view = _pairs(y_true, y_prob, view, sum_tol)
    slope = 1.0 - 2.0 * scores
    variance = float(np.sum(slope ** 2 * scores * (1.0 - scores)))
    if not variance > 0:
        raise ValueError("Spiegelhalter's z is undefined: every score is 0, 0.5 or 1, so the "
                         "variance of the Brier score under calibration is 0")
    z = float(np.sum((targets - scores) * slope) / math.sqrt(variance))
    settings = dict(test="spiegelhalter_z", view=view, n_samples=int(scores.shape[0]),
                    alternative="two-sided", null="standard normal")
    return CalibrationTestResult(z, float(2.0 * stats.norm.sf(abs(z))), settings)
