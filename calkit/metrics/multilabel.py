"""Multilabel calibration: ``L`` independent binary outputs per sample.

A multilabel classifier (tagging, multi-disease screening, attribute
prediction) gives every sample ``L`` probabilities ``p[i, l] = P(label l is
present)`` that need not sum to one, against a 0/1 matrix ``y_true`` of the
same shape.  Each label is a binary task, checked in the positive view
(``p[:, l]`` against ``y[:, l]``), and the per-label numbers are averaged:

``average="macro"`` (default)
    The mean of the ``L`` per-label errors: every label counts the same,
    rare ones included.  (Unlike the class-wise view of
    :func:`calkit.calibration_error`, which combines ``l2`` and ``max`` errors
    by a power mean, the macro average is the plain mean for every norm.)
``average="weighted"``
    The mean weighted by each label's support: its number of positives
    (the sum of the sample weights of its positives), as scikit-learn's
    ``average="weighted"``.  Labels without positives weigh nothing; when no
    label has a positive at all this is a ``ValueError``.
``average="micro"``
    One bin table over all ``N * L`` (sample, label) pairs pooled: the ECE of
    the flattened matrices, so frequent labels and labels with many confident
    scores dominate.
``average=None``
    The per-label errors as an array of shape ``(L,)``.

Labels with no positives (or no negatives) in ``y_true`` need no special
case: their error is still defined (for ``norm="l1"`` a label without
positives has ECE equal to its mean predicted probability), so no NaN ever
comes back; only ``average="weighted"`` gives them weight zero.

Inputs are validated by :func:`calkit._validation.check_multilabel`: ``y_prob``
is ``(N, L)`` probabilities in ``[0, 1]`` or, with ``logits=True``, per-label
logits (the sigmoid is applied); ``y_true`` a 0/1 or boolean ``(N, L)`` matrix.
1-D labels with an ``(N, K)`` matrix are multiclass data and are refused
(use ``view="classwise"``).  A one-hot ``y_true`` with rows of ``y_prob`` summing
to one is accepted: it is then read as ``K`` one-vs-rest labels, and the macro
ECE equals the class-wise ECE of :func:`calkit.ece`.  numpy arrays and torch
tensors (kept on their device, sums in float64) are accepted.

Every table comes from the binning engine (:mod:`calkit.binning`), one per
label as for the class-wise view, and is reduced by
:func:`calkit.metrics.error_from_table`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calkit import _array as xp
from calkit._export import json_ready
from calkit._validation import (
    check_fraction,
    check_multilabel,
    check_option,
    check_sample_weight,
)
from calkit.binning import CLOSED, STRATEGIES, _bin_table, resolve_n_bins
from calkit.metrics.binned import NORMS, CalibrationResult, Norm, error_from_table
from calkit.metrics.scores import _machine_eps

AVERAGES = ("macro", "micro", "weighted")


@dataclass(frozen=True)
class MultilabelCalibrationResult(CalibrationResult):
    """A multilabel calibration error with its per-label errors, bin tables and settings.

    Attributes
    ----------
    value : float, ndarray of shape (L,), or torch tensor
        The averaged error (per-label array for ``average=None``).
    tables : tuple of BinTable
        One table per label; for ``average="micro"`` the single pooled table.
    settings : dict
        ``norm``, ``n_bins``, ``strategy``, ``closed``, ``view`` (``"multilabel"``),
        ``average``, ``logits``, ``n_samples``, ``n_labels``.
    per_label : ndarray of shape (L,) or torch tensor
        The error of every label (positive view of its column).
    support : ndarray of shape (L,) or torch tensor
        Positives of every label (weighted by ``sample_weight``): the weights of
        ``average="weighted"``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import multilabel_calibration_error
    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    >>> p = np.array([[0.9, 0.2], [0.3, 0.1], [0.8, 0.6], [0.4, 0.9]])
    >>> r = multilabel_calibration_error(y, p, n_bins=2)
    >>> r.describe()
    'macro ECE = 0.275000 (multilabel, 2 labels, 2 uniform bins, closed=right)'
    >>> r.per_label.round(6).tolist(), r.support.tolist(), len(r.tables)
    ([0.25, 0.3], [2.0, 3.0], 2)
    """

    per_label: object = None
    support: object = None

    def __float__(self) -> float:
        if self.settings.get("average") is None:
            raise TypeError("average=None gives one error per label: use result.per_label "
                            "(or pass average='macro', 'micro' or 'weighted')")
        return float(self.value)

    def describe(self) -> str:
        s = self.settings
        name = {"l1": "ECE", "l2": "RMSCE", "max": "MCE"}[s["norm"]]
        where = (f"multilabel, {s['n_labels']} labels, {s['n_bins']} {s['strategy']} bins, "
                 f"closed={s['closed']}")
        if s["average"] is None:
            values = ", ".join(f"{v:.6f}" for v in np.asarray(xp.to_numpy(self.per_label)))
            return f"per-label {name} = [{values}] ({where})"
        return f"{s['average']} {name} = {float(self):.6f} ({where})"

    def __repr__(self) -> str:
        return f"MultilabelCalibrationResult({self.describe()})"

    def to_dict(self) -> dict:
        """JSON-ready dict: ``value``, ``per_label``, ``support``, ``settings``, ``tables``."""
        return {"value": json_ready(self.value), "per_label": json_ready(self.per_label),
                "support": json_ready(self.support), "settings": json_ready(self.settings),
                "tables": [t.to_dict() for t in self.tables]}


# ----------------------------------------------------------------------------- helpers
def _check_average(average):
    if average is not None:
        check_option(average, "average", AVERAGES)
    return average


def _probabilities(scores, logits: bool):
    """Per-label probabilities: ``scores`` itself, or ``sigmoid(scores)`` for logits."""
    if not logits:
        return scores
    if xp.is_torch(scores):
        return scores.sigmoid()
    from scipy.special import expit

    return expit(scores)


def _stack(values):
    if xp.is_torch(values[0]):
        return xp.torch_module().stack(values)
    return np.asarray(values, dtype=np.float64)


def _support(targets, weights):
    """Positives of every label (float64; weighted sums with ``weights``)."""
    if xp.is_torch(targets):
        t = targets.double()
        return t.sum(0) if weights is None else weights @ t
    t = np.asarray(targets, dtype=np.float64)
    return t.sum(0) if weights is None else weights @ t


def _average(per_label, support, average):
    """Combine per-label values by ``average`` (``"micro"`` is handled by the caller)."""
    if average is None:
        return per_label
    if average == "weighted":
        total = float(support.sum())
        if not total > 0:
            raise ValueError("average='weighted' weights each label by its positives, and "
                             "y_true has no positive label at all; use average='macro'")
        return (per_label * support).sum() / total
    return per_label.mean()


def _flat_weights(weights, n_labels: int):
    """Sample weights of the flattened (row-major) ``(N * L,)`` pairs."""
    if weights is None:
        return None
    if xp.is_torch(weights):
        return weights.repeat_interleave(n_labels)
    return np.repeat(weights, n_labels)


# ----------------------------------------------------------------------------- ECE family
def multilabel_calibration_error(y_true, y_prob, *, logits: bool = False, n_bins: int | str = 15,
                                 strategy: str = "uniform", norm: Norm = "l1",
                                 average: str | None = "macro", closed: str = "right",
                                 sample_weight=None) -> MultilabelCalibrationResult:
    """Binned calibration error of ``L`` independent binary outputs, per label and averaged.

    Parameters
    ----------
    y_true : array of shape (N, L)
        0/1 (or boolean) label matrix.
    y_prob : array of shape (N, L)
        Per-label probabilities in ``[0, 1]`` (rows need not sum to one), or
        per-label logits with ``logits=True``.  numpy array, torch tensor or
        pandas object.
    logits : bool, default=False
        Read ``y_prob`` as logits and apply the sigmoid first.
    n_bins : int or str, default=15
        Bins per label (at most ``N``), or a bin-count rule of the number of
        rows ``N`` (``"sqrt"``, ``"cube_root"``, ``"rice"``, ``"sturges"``:
        :func:`calkit.binning.resolve_n_bins`; recorded in ``settings``).  The
        same number of bins serves ``average="micro"``'s pooled table.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (per label, or over the pooled scores for
        ``average="micro"``).
    norm : {"l1", "l2", "max"}, default="l1"
        ECE, RMS calibration error or MCE of each table.
    average : {"macro", "weighted", "micro"} or None, default="macro"
        How labels are combined (module docstring): mean over labels, mean
        weighted by positives, one table over all (sample, label) pairs, or the
        per-label array.
    closed : {"right", "left"}, default="right"
        Bin edge convention (:mod:`calkit.binning`).
    sample_weight : array of shape (N,), optional
        Non-negative frequency weights of the samples (every label of a sample
        gets its weight).

    Returns
    -------
    MultilabelCalibrationResult
        ``float(result)`` is the averaged error; ``result.per_label`` the error
        of each label.  numpy input gives floats and numpy arrays, torch input
        float64 tensors on the input's device.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.metrics import multilabel_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=(2000, 3))
    >>> y = (rng.uniform(size=(2000, 3)) < p ** np.array([1.0, 2.0, 0.5])).astype(int)
    >>> r = multilabel_calibration_error(y, p, average=None)
    >>> r.per_label.round(3).tolist()            # label 0 is calibrated, 1 and 2 are not
    [0.025, 0.162, 0.185]
    >>> bool(np.isclose(r.per_label[1], ece(y[:, 1], p[:, 1], view="positive")))
    True
    >>> micro = multilabel_calibration_error(y, p, average="micro")
    >>> bool(np.isclose(float(micro), ece(y.ravel(), p.ravel(), view="positive")))
    True
    """
    check_option(strategy, "strategy", STRATEGIES)
    check_option(norm, "norm", NORMS)
    check_option(closed, "closed", CLOSED)
    average = _check_average(average)
    targets, scores = check_multilabel(y_true, y_prob, logits=logits)
    p = _probabilities(scores, logits)
    n, n_labels = (int(s) for s in p.shape)
    weights = check_sample_weight(sample_weight, n, like=p)
    n_bins, rule = resolve_n_bins(n_bins, n, weights)
    tables = tuple(_bin_table(p[:, j], targets[:, j], n_bins, strategy, closed, weights)
                   for j in range(n_labels))
    per_label = _stack([error_from_table(t, norm) for t in tables])
    support = _support(targets, weights)
    if average == "micro":
        pooled = _bin_table(p.reshape(-1), targets.reshape(-1), n_bins, strategy, closed,
                            _flat_weights(weights, n_labels))
        value, tables = error_from_table(pooled, norm), (pooled,)
    else:
        value = _average(per_label, support, average)
    if not xp.is_torch(p):
        per_label = np.asarray(per_label, dtype=np.float64)
    settings = dict(norm=norm, n_bins=n_bins, strategy=strategy, closed=closed,
                    view="multilabel", average=average, logits=bool(logits), debiased=False,
                    n_samples=n, n_labels=n_labels)
    if rule is not None:
        settings["n_bins_rule"] = rule
    value = per_label if average is None else xp.scalar(value)
    return MultilabelCalibrationResult(value, tables, settings, per_label=per_label,
                                       support=support)


def multilabel_ece(y_true, y_prob, *, logits: bool = False, n_bins: int | str = 15,
                   strategy: str = "uniform", norm: Norm = "l1",
                   average: str | None = "macro", closed: str = "right", sample_weight=None):
    """Multilabel expected calibration error (a number, or per-label array for ``average=None``).

    See :func:`multilabel_calibration_error` for the arguments and the averages.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import multilabel_ece
    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    >>> p = np.array([[0.9, 0.2], [0.3, 0.1], [0.8, 0.6], [0.4, 0.9]])
    >>> multilabel_ece(y, p, n_bins=2, average=None).round(6).tolist()
    [0.25, 0.3]
    >>> round(multilabel_ece(y, p, n_bins=2), 6)                      # (0.25 + 0.3) / 2
    0.275
    >>> round(multilabel_ece(y, p, n_bins=2, average="weighted"), 6)  # 2 and 3 positives
    0.28

    Pooled, the two labels' gaps in the low bin cancel (0.3 + 0.4 + 0.2 + 0.1 = 1.0
    against one positive), and the high bin's 3.2 against 4 positives is left:

    >>> round(multilabel_ece(y, p, n_bins=2, average="micro"), 6)     # 0.8 / 8
    0.1
    """
    r = multilabel_calibration_error(y_true, y_prob, logits=logits, n_bins=n_bins,
                                     strategy=strategy, norm=norm, average=average,
                                     closed=closed, sample_weight=sample_weight)
    return r.value


# ----------------------------------------------------------------------------- proper scores
def _weighted_column_mean(values, weights):
    """Mean over samples of every column, float64 (weighted by ``weights``)."""
    if xp.is_torch(values):
        v = values.double()
        return v.mean(0) if weights is None else (weights @ v) / weights.sum()
    if weights is None:
        return values.mean(axis=0, dtype=np.float64)
    return np.einsum("i,il->l", weights, values, dtype=np.float64) / weights.sum()


def _finish(per_label, support, average):
    if average == "micro":  # every (sample, label) pair weighs the same: the label mean
        average = "macro"
    out = _average(per_label, support, average)
    return out if average is None else xp.scalar(out)


def multilabel_brier(y_true, y_prob, *, logits: bool = False, average: str | None = "macro",
                     sample_weight=None):
    """Brier score of ``L`` binary outputs: ``mean_i (p_il - y_il)^2`` per label, averaged.

    Each label's score is the binary Brier score of its column (in ``[0, 1]``,
    as :func:`calkit.brier_score` with a 1-D ``y_prob``).  ``average``,
    ``logits`` and ``sample_weight`` as in :func:`multilabel_calibration_error`;
    for this per-sample mean ``"micro"`` (all pairs weigh the same) equals
    ``"macro"``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import multilabel_brier
    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    >>> p = np.array([[0.9, 0.2], [0.3, 0.1], [0.8, 0.6], [0.4, 0.9]])
    >>> multilabel_brier(y, p, average=None).round(6).tolist()   # (.01+.09+.04+.16)/4, ...
    [0.075, 0.255]
    >>> round(multilabel_brier(y, p), 6)
    0.165
    """
    average = _check_average(average)
    targets, scores = check_multilabel(y_true, y_prob, logits=logits)
    p = _probabilities(scores, logits)
    weights = check_sample_weight(sample_weight, int(p.shape[0]), like=p)
    t = targets.double() if xp.is_torch(targets) else np.asarray(targets, dtype=np.float64)
    d = (p.double() if xp.is_torch(p) else np.asarray(p, dtype=np.float64)) - t
    per_label = _weighted_column_mean(d * d, weights)
    return _finish(per_label, _support(targets, weights), average)


def multilabel_nll(y_true, y_prob, *, logits: bool = False, average: str | None = "macro",
                   eps: float | None = None, sample_weight=None):
    """Binary cross-entropy of ``L`` outputs: ``-mean_i log P(y_il)`` per label, averaged.

    With probabilities, ``p`` is clipped to ``[eps, 1 - eps]`` (default: the
    machine epsilon of ``y_prob``'s dtype, as :func:`calkit.nll` and
    scikit-learn's ``log_loss``), so a confident mistake gives a large finite
    loss; with ``logits=True`` the log-probabilities are computed exactly from
    the logits (``log sigmoid``), without clipping.  ``average``, ``logits``
    and ``sample_weight`` as in :func:`multilabel_calibration_error` (``"micro"``
    equals ``"macro"`` for this per-sample mean).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import multilabel_nll
    >>> y = np.array([[1, 0], [0, 1]])
    >>> p = np.array([[0.8, 0.5], [0.4, 0.9]])
    >>> multilabel_nll(y, p, average=None).round(6).tolist()   # -(ln .8 + ln .6)/2, ...
    [0.366985, 0.399253]
    >>> z = np.log(p / (1 - p))                                 # the same, from logits
    >>> bool(np.isclose(multilabel_nll(y, z, logits=True), multilabel_nll(y, p)))
    True
    """
    average = _check_average(average)
    if eps is not None:
        eps = check_fraction(eps, "eps")
    targets, scores = check_multilabel(y_true, y_prob, logits=logits)
    weights = check_sample_weight(sample_weight, int(scores.shape[0]), like=scores)
    torch = xp.torch_module() if xp.is_torch(scores) else None
    t = targets.bool() if torch is not None else np.asarray(targets, dtype=bool)
    if logits:
        if torch is not None:
            z = scores.double()
            loss = -torch.nn.functional.logsigmoid(torch.where(t, z, -z))
        else:
            from scipy.special import log_expit

            z = np.asarray(scores, dtype=np.float64)
            loss = -log_expit(np.where(t, z, -z))
    else:
        if eps is None:
            eps = _machine_eps(scores)
        if torch is not None:
            p = scores.double().clamp(eps, 1 - eps)
            loss = -torch.where(t, p, 1 - p).log()
        else:
            p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps)
            loss = -np.log(np.where(t, p, 1 - p))
    per_label = _weighted_column_mean(loss, weights)
    return _finish(per_label, _support(targets, weights), average)
