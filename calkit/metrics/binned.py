"""Binned calibration error: ECE (L1), RMS calibration error (L2), MCE (max), debiased ECE.

The public functions validate their input once, turn it into (score, target)
pairs with a *view* (:mod:`calkit.metrics._views`), build bin tables with the
binning engine (:mod:`calkit.binning`) and reduce each table to a number with
:func:`error_from_table` or :func:`debiased_error_from_table`.  The streaming
accumulator and the diagrams reuse those two reductions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from calkit import _array as xp
from calkit._array import Array
from calkit._export import Exportable, json_ready
from calkit._validation import (
    check_classification,
    check_option,
    check_sample_weight,
)
from calkit.binning import CLOSED, STRATEGIES, BinTable, _bin_table, resolve_n_bins
from calkit.metrics._views import resolve_view, score_target_pairs

Norm = Literal["l1", "l2", "max"]
NORMS = ("l1", "l2", "max")


@dataclass(frozen=True)
class CalibrationResult(Exportable):
    """A calibration error together with the bins and settings that produced it.

    Attributes
    ----------
    value : float or 0-d torch tensor
        The calibration error.
    tables : tuple of BinTable
        One table for the top-label and positive views, one per class for the
        class-wise view.
    settings : dict
        ``norm``, ``n_bins``, ``strategy``, ``closed``, ``view``, ``debiased``;
        ``n_bins_rule`` too when the number of bins came from a rule
        (``n_bins="cube_root"``...; ``n_bins`` is then the number it gave).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import calibration_error
    >>> r = calibration_error([0, 1, 1, 0], np.array([0.2, 0.6, 0.7, 0.9]), n_bins=2,
    ...                       view="positive")
    >>> round(float(r), 6), r.table.count.tolist()
    (0.1, [1, 3])
    >>> r.settings["closed"], r.settings["view"]
    ('right', 'positive')
    >>> import json
    >>> d = r.to_dict()
    >>> round(d["value"], 6), d["tables"][0]["count"], json.loads(json.dumps(d)) == d
    (0.1, [1, 3], True)

    ``r.to_frame()`` (pandas) has one row per bin: ``lower``, ``upper``, ``count``,
    ``sum_score``, ``sum_target``, ``mean_score``, ``mean_target``, ``gap``, ``weight``
    (and ``table``, the class, for class-wise results).
    """

    value: object
    tables: tuple
    settings: dict = field(default_factory=dict)

    @property
    def table(self) -> BinTable:
        """The (first) bin table."""
        return self.tables[0]

    def __float__(self) -> float:
        return float(self.value)

    def describe(self) -> str:
        s = self.settings
        name = {"l1": "ECE", "l2": "RMSCE", "max": "MCE"}[s["norm"]]
        if s.get("metric"):  # a named metric (e.g. Nixon et al.'s SCE / ACE)
            name = s["metric"] + (" (L2)" if s["norm"] == "l2" else "")
        if s.get("debiased"):
            name = "debiased " + name
        rule = f" by {s['n_bins_rule']}" if s.get("n_bins_rule") else ""
        return (f"{name} = {float(self):.6f} ({s['view']}, {s['n_bins']} {s['strategy']} bins"
                f"{rule}, closed={s['closed']})")

    def __repr__(self) -> str:
        return f"CalibrationResult({self.describe()})"

    def to_dict(self) -> dict:
        """JSON-ready dict: ``value``, ``settings`` and ``tables`` (each ``BinTable.to_dict()``)."""
        return {"value": json_ready(float(self)), "settings": json_ready(self.settings),
                "tables": [t.to_dict() for t in self.tables]}

    def _frame_columns(self) -> dict:
        """One row per bin of every table; a ``table`` column (class index) when several."""
        parts = [t._frame_columns() for t in self.tables]
        columns = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        if len(parts) > 1:
            columns = {"table": np.repeat(np.arange(len(parts)),
                                          [len(p["lower"]) for p in parts]), **columns}
        return columns


def error_from_table(table: BinTable, norm: Norm = "l1") -> Array:
    """Calibration error of one bin table.

    ``l1``: ``sum_b (n_b / N) |gap_b|``; ``l2``: ``sqrt(sum_b (n_b / N) gap_b^2)``;
    ``max``: ``max_b |gap_b|`` over non-empty bins.  Empty bins contribute nothing.
    Tables whose arrays have leading batch axes (bins last, e.g. bootstrap
    resamples) give one error per row.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics import error_from_table
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p ** 2).astype(int)   # over-confident
    >>> t = bin_table(p, y, n_bins=10)
    >>> [round(float(error_from_table(t, norm)), 4) for norm in ("l1", "l2", "max")]
    [0.1499, 0.1671, 0.2303]
    >>> bool(np.isclose(error_from_table(t), ece(y, p, n_bins=10, view="positive")))
    True
    """
    if not isinstance(table, BinTable):
        raise TypeError(f"table must be a BinTable, got {type(table).__name__}")
    check_option(norm, "norm", NORMS)
    diff = xp.abs_(table.sum_score - table.sum_target)
    if norm == "l1":
        return diff.sum(-1) / table.n_samples
    gap = xp.where(table.nonempty, diff / xp.where(table.nonempty, xp.as_float64(table.count),
                                                   1.0), 0.0)
    if norm == "l2":
        return xp.sqrt((gap * diff).sum(-1) / table.n_samples)
    return gap.amax(-1) if xp.is_torch(gap) else gap.max(-1)


def debiased_error_from_table(table: BinTable) -> Array:
    """Kumar et al. (2019) debiased L2 calibration error of one bin table.

    ``sqrt(max(0, sum_{b: n_b >= 2} (n_b / N) [gap_b^2 - a_b (1 - a_b) / (n_b - 1)]))``
    with ``a_b`` the bin's mean target.  Bins with fewer than two samples are left
    out entirely, as in ``uncertainty-calibration``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import debiased_ece
    >>> from calkit.binning import bin_table
    >>> from calkit.metrics import debiased_error_from_table, error_from_table
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p ** 2).astype(int)
    >>> t = bin_table(p, y, n_bins=10, strategy="quantile")
    >>> round(float(debiased_error_from_table(t)), 4), round(float(error_from_table(t, "l2")), 4)
    (0.1655, 0.1697)
    >>> bool(np.isclose(debiased_error_from_table(t),
    ...                 debiased_ece(y, p, n_bins=10, view="positive")))
    True
    """
    if not isinstance(table, BinTable):
        raise TypeError(f"table must be a BinTable, got {type(table).__name__}")
    n = xp.as_float64(table.count)
    ok = table.count >= 2
    safe_n = xp.where(ok, n, 2.0)
    conf = table.sum_score / safe_n
    acc = table.sum_target / safe_n
    term = (conf - acc) ** 2 - acc * (1 - acc) / (safe_n - 1)
    total = xp.where(ok, n * term, 0.0).sum(-1) / table.n_samples
    return xp.sqrt(xp.where(total > 0, total, 0.0))


def calibration_error(y_true, y_prob, *, n_bins: int | str = 15, strategy: str = "uniform",
                      norm: Norm = "l1", view: str | None = None, closed: str = "right",
                      debias: bool = False, sum_tol: float | None = None,
                      classes=None, sample_weight=None) -> CalibrationResult:
    """Binned calibration error with its bin table(s) and settings.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels (integers, booleans, or any labels with ``classes``), or
        a one-hot matrix.  With ``view="confidence"``: 0/1, whether each
        answer was right.
    y_prob : array of shape (N, K) or (N,)
        Class probabilities (rows sum to one); or 1-D: a binary classifier's
        probability of class 1 (``view="positive"`` or ``"top_label"``), or the
        confidence of each predicted answer (``view="confidence"``).  numpy
        array, torch tensor or pandas object.
    n_bins : int or str, default=15
        Number of bins, at most the number of samples; or a rule of the number
        ``n`` of binned samples (rows; with ``sample_weight``, the rows of
        positive weight): ``"sqrt"`` (``ceil(sqrt(n))``), ``"cube_root"``
        (``ceil(n^(1/3))``), ``"rice"`` (``ceil(2 n^(1/3))``), ``"sturges"``
        (``ceil(log2 n) + 1``), see :func:`calkit.binning.resolve_n_bins`; or
        ``"sweep"``: the bins of the monotone sweep of Roelofs et al.
        (:func:`calkit.sweep_ece`, with ``strategy`` its equal-mass or
        equal-width bins and their own edge rule, so ``closed`` does not
        apply; not class-wise, not weighted).  ``settings`` record the rule
        (``n_bins_rule``) and the number of bins it gave (``n_bins``).
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (:mod:`calkit.binning`).
    norm : {"l1", "l2", "max"}, default="l1"
        ECE, RMS calibration error or maximum calibration error (MCE).
    view : {"top_label", "positive", "classwise", "confidence"}, optional
        Which scores are checked (:mod:`calkit.metrics._views`).  Default:
        ``"top_label"`` for an ``(N, K)`` ``y_prob``; a 1-D ``y_prob`` needs an
        explicit view, because (correct, confidence) pairs and a binary
        classifier's P(y = 1) look alike and reading one as the other gives a
        plausible wrong number: ``"confidence"`` for (correct, confidence)
        pairs, ``"positive"`` for P(y = 1) against the class.  Class-wise
        errors are combined as ``(mean_k CE_k^p)^(1/p)`` (the mean for l1, the
        root mean square for l2, the maximum for max).
    closed : {"right", "left"}, default="right"
        Bin edge convention: ``(a, b]`` or ``[a, b)`` (:mod:`calkit.binning`).
    debias : bool, default=False
        Kumar et al.'s debiased estimator (``norm="l2"`` only).
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    classes : sequence, optional
        The label of each column of ``y_prob`` (e.g. ``["cat", "dog"]``); labels
        are mapped through it.  Without it, string labels are mapped to their
        sorted distinct values when there are exactly ``K`` of them.  Recorded
        in ``settings["classes"]``.
    sample_weight : array of shape (N,), optional
        Non-negative frequency weights: the result equals that of the samples
        repeated by their (integer) weights; the tables hold weight sums
        (:func:`calkit.binning.bin_table`).

    Returns
    -------
    CalibrationResult
        ``float(result)`` is the error; numpy input gives a float, torch input
        a 0-d float64 tensor on the input's device.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import calibration_error
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> calibration_error([0, 1, 1, 1], y_prob, n_bins=4).describe()
    'ECE = 0.350000 (top_label, 4 uniform bins, closed=right)'

    (correct, confidence) pairs, e.g. top-1 confidences, say so with ``view="confidence"``:

    >>> correct, conf = np.array([1, 0, 1, 1]), np.array([0.9, 0.6, 0.4, 0.8])
    >>> round(float(calibration_error(correct, conf, n_bins=2, view="confidence")), 6)
    0.225

    A bin-count rule is resolved from the number of samples and recorded:

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < p).astype(int)
    >>> r = calibration_error(y, p, n_bins="cube_root", view="positive")
    >>> r.settings["n_bins"], r.settings["n_bins_rule"], r.table.n_bins
    (10, 'cube_root', 10)
    """
    check_option(strategy, "strategy", STRATEGIES)
    check_option(norm, "norm", NORMS)
    check_option(closed, "closed", CLOSED)
    if not isinstance(debias, (bool, np.bool_)):
        raise ValueError(f"debias must be True or False, got {debias!r}")
    if debias and norm != "l2":
        raise ValueError("debias=True is the L2 estimator of Kumar et al.; use norm='l2'")
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    view = resolve_view(view, data)
    weights = check_sample_weight(sample_weight, data.n_samples, like=data.y_prob)
    if isinstance(n_bins, str) and n_bins == "sweep":
        return _sweep_result(data, view, strategy, norm, debias, weights)
    n_bins, rule = resolve_n_bins(n_bins, data.n_samples, weights)
    tables = tuple(_bin_table(s, t, n_bins, strategy, closed, weights)
                   for s, t in score_target_pairs(data, view))
    if debias:
        errors = [debiased_error_from_table(t) for t in tables]
    else:
        errors = [error_from_table(t, norm) for t in tables]
    value = _combine(errors, norm)
    settings = dict(norm=norm, n_bins=n_bins, strategy=strategy, closed=closed, view=view,
                    debiased=bool(debias), n_samples=data.n_samples)
    if rule is not None:
        settings["n_bins_rule"] = rule
    if data.classes is not None:
        settings["classes"] = list(data.classes)
    return CalibrationResult(xp.scalar(value), tables, settings)


def _sweep_result(data, view: str, strategy: str, norm: str, debias: bool,
                  weights) -> CalibrationResult:
    """``n_bins="sweep"``: the table of :func:`calkit.metrics.sweep.sweep_table`, reduced here."""
    from calkit.metrics.sweep import sweep_table  # sweep builds on this module

    if weights is not None:
        raise ValueError("n_bins='sweep' does not take sample_weight (the monotone sweep "
                         "is defined on unweighted samples); give an integer n_bins or a rule")
    if view == "classwise":
        raise ValueError("n_bins='sweep' takes view 'top_label', 'positive' or 'confidence' "
                         "(one sweep over one set of scores), got 'classwise'")
    ((scores, targets),) = score_target_pairs(data, view)
    table = sweep_table(scores, targets, strategy)
    value = debiased_error_from_table(table) if debias else error_from_table(table, norm)
    if xp.is_torch(data.y_prob):
        value = xp.like(value, data.y_prob)
    settings = dict(norm=norm, n_bins=table.n_bins, strategy=f"sweep-{strategy}",
                    closed="rank" if strategy == "quantile" else "left", view=view,
                    debiased=bool(debias), n_samples=data.n_samples, n_bins_rule="sweep")
    if data.classes is not None:
        settings["classes"] = list(data.classes)
    return CalibrationResult(xp.scalar(value), (table,), settings)


def _combine(errors: list, norm: str) -> Array:
    if len(errors) == 1:
        return errors[0]
    if xp.is_torch(errors[0]):
        stacked = xp.torch_module().stack(errors)
    else:
        stacked = np.asarray(errors, dtype=np.float64)
    if norm == "max":
        return stacked.max()
    if norm == "l2":
        return xp.sqrt((stacked ** 2).mean())
    return stacked.mean()


def ece(y_true, y_prob, *, n_bins: int | str = 15, strategy: str = "uniform", norm: Norm = "l1",
        view: str | None = None, closed: str = "right", sum_tol: float | None = None,
        classes=None, sample_weight=None):
    """Expected calibration error (a number); see :func:`calibration_error`.

    ``n_bins`` is a number or a rule (``"sqrt"``, ``"cube_root"``, ``"rice"``,
    ``"sturges"``, ``"sweep"``) as there; for the rule and the number of bins it
    gave, call :func:`calibration_error`, whose ``settings`` record both.
    ``y_true``, ``y_prob``, ``view`` and ``classes`` as there: an ``(N, K)``
    ``y_prob`` is checked top-label by default; a 1-D ``y_prob`` needs
    ``view="confidence"`` ((correct, confidence) pairs: ``y_true`` is 0/1
    correctness, ``y_prob`` the confidence of the predicted answer) or
    ``view="positive"`` (a binary classifier's P(y = 1) against the class).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> round(ece([1, 0, 1, 1], np.array([0.9, 0.2, 0.6, 0.8]), n_bins=2, view="positive"), 6)
    0.225
    >>> correct, conf = [1, 0, 1, 1], np.array([0.9, 0.6, 0.4, 0.8])
    >>> round(ece(correct, conf, n_bins=2, view="confidence"), 6)  # (0.6 + 3 * 0.1) / 4
    0.225
    >>> p = np.array([0.9, 0.2, 0.6])
    >>> weighted = ece([1, 0, 1], p, n_bins=2, view="positive", sample_weight=[1, 1, 2])
    >>> bool(np.isclose(weighted, ece([1, 0, 1, 1], p[[0, 1, 2, 2]], n_bins=2, view="positive")))
    True
    """
    return calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy, norm=norm,
                             view=view, closed=closed, sum_tol=sum_tol, classes=classes,
                             sample_weight=sample_weight).value


def debiased_ece(y_true, y_prob, *, n_bins: int | str = 15, strategy: str = "quantile",
                 view: str | None = None, closed: str = "right",
                 sum_tol: float | None = None, classes=None, sample_weight=None):
    """Debiased L2 calibration error (Kumar, Liang and Ma 2019), on equal-mass bins.

    An L2 quantity (a debiased RMS calibration error), not the L1 ECE of
    :func:`ece`: compare it with ``calibration_error(..., norm="l2")``.  Its
    name means this definition everywhere in calkit (report and grouped
    tables, the accumulator's exact mode); the same estimator on fixed
    equal-width bins is called ``debiased_ece_uniform``.
    ``y_true``, ``y_prob``, ``n_bins`` (a number or a bin-count rule),
    ``view``, ``classes`` and ``sample_weight`` as in
    :func:`calibration_error` (a 1-D ``y_prob`` needs ``view="confidence"``
    or ``view="positive"``).

    The plug-in squared error of every bin with ``n_b >= 2`` samples minus the
    variance of its mean target, ``a_b (1 - a_b) / (n_b - 1)``, weighted by
    ``n_b / N``; the square root of the positive part.  With the default
    15 equal-mass right-closed bins this equals ``uncertainty-calibration``'s
    ``get_calibration_error(..., p=2, debias=True)`` with ``mode="top-label"``
    (``view="classwise"`` gives its ``mode="marginal"``).  We deliberately do not
    copy its switch to one bin per distinct value when scores have few distinct
    values: the bins here are always the ones you ask for.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import debiased_ece
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1.0, 2000)
    >>> y = (rng.uniform(size=2000) < p).astype(int)   # calibrated by construction
    >>> float(debiased_ece(y, p, view="positive")) < 0.02
    True
    """
    return calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy, norm="l2",
                             view=view, closed=closed, debias=True, sum_tol=sum_tol,
                             classes=classes, sample_weight=sample_weight).value
