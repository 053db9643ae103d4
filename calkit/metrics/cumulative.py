"""Binning-free calibration error from cumulative sums: the KS calibration error.

Gupta et al. (2021, "Calibration of neural networks using splines") sort the
scores ascending and compare the cumulative sums of scores and of targets:

``KS = max_i |(1 / N) sum_{j <= i} (z_(j) - y_(j))|``.

A calibrated model's two cumulative curves agree; the KS error is their
largest gap, with no bins to choose.  Tied scores are one step of the curve
(the sums are read only at the last sample of each run of ties), so the value
does not depend on the order of tied samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from calkit import _array as xp
from calkit._validation import check_classification
from calkit.metrics._views import resolve_view, score_target_pairs

KS_VIEWS = ("top_label", "positive", "classwise", "confidence")


@dataclass(frozen=True)
class KSCalibrationResult:
    """KS calibration error with the cumulative curves behind it.

    Attributes
    ----------
    value : float
        The KS error (for ``view="classwise"``, the mean over classes).
    curves : tuple of dict
        One per (score, target) pair: ``score`` (sorted distinct scores),
        ``fraction`` (share of samples with a score up to each), ``cum_score``
        and ``cum_target`` (cumulative sums / N at each), drawn by
        :class:`calkit.plotting.CumulativeCalibrationDisplay`.
    per_class : ndarray or None
        The KS error of each class for ``view="classwise"``.
    settings : dict

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import ks_calibration_error
    >>> r = ks_calibration_error([0, 1, 1], np.array([0.2, 0.5, 0.9]), view="positive")
    >>> round(r.value, 6), r.curves[0]["cum_target"].tolist()
    (0.133333, [0.0, 0.3333333333333333, 0.6666666666666666])
    """

    value: float
    curves: tuple
    per_class: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        """JSON-ready dict of the value, per-class values and settings (no curves)."""
        return {"ks": self.value, "settings": dict(self.settings),
                "per_class": None if self.per_class is None else self.per_class.tolist()}


def _curve(scores: np.ndarray, targets: np.ndarray) -> dict:
    order = np.argsort(scores, kind="stable")
    z, y = scores[order], targets[order]
    n = z.shape[0]
    last = np.r_[z[1:] != z[:-1], True]                  # the last sample of each tie run
    return {"score": z[last], "fraction": (np.flatnonzero(last) + 1) / n,
            "cum_score": np.cumsum(z)[last] / n, "cum_target": np.cumsum(y)[last] / n}


def _ks(curve: dict) -> float:
    return float(np.max(np.abs(curve["cum_score"] - curve["cum_target"])))


def ks_calibration_error(y_true, y_prob, *, view: str | None = None, rank: int = 1,
                         sum_tol: float | None = None) -> KSCalibrationResult:
    """KS calibration error of Gupta et al. (2021).

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D is the positive-class probability of a binary task.
    view : {"top_label", "positive", "classwise", "confidence"}, optional
        ``"top_label"``: the ``rank``-th largest probability of each row against
        whether the label is that class (``rank=1``: the confidence against
        correctness; the paper's KS error, ``rank=2`` its second-ranked one);
        ``"positive"``: ``P(y = 1)`` of a binary task; ``"classwise"``: each class
        column against ``y == k``, averaged; ``"confidence"``: (correct,
        confidence) pairs.  Default top-label for ``(N, K)`` probabilities; a 1-D
        ``y_prob`` needs it said (as for the metrics).
    rank : int, default=1
        Which ranked probability ``"top_label"`` looks at (1 = the largest).
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.

    Returns
    -------
    KSCalibrationResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import ks_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=5000)
    >>> y = (rng.uniform(size=5000) < p ** 2).astype(int)
    >>> r = ks_calibration_error(y, p, view="positive")    # the gap grows to mean(p - p^2)
    >>> round(r.value, 3), round(float(np.mean(p - p ** 2)), 3)
    (0.162, 0.166)
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    view = resolve_view(view, data, KS_VIEWS)
    k = data.n_classes
    if isinstance(rank, bool) or not isinstance(rank, Integral) or not 1 <= rank <= k:
        raise ValueError(f"rank must be an integer in [1, {k}], got {rank!r}")
    if rank != 1 and view != "top_label":
        raise ValueError("rank applies to view='top_label' only")
    settings = dict(view=view, rank=int(rank), n_samples=data.n_samples)
    if rank == 1:
        curves = tuple(_curve(np.asarray(xp.to_numpy(s), dtype=np.float64),
                              np.asarray(xp.to_numpy(t), dtype=np.float64))
                       for s, t in score_target_pairs(data, view))
        if view != "classwise":
            return KSCalibrationResult(_ks(curves[0]), curves, None, settings)
        per_class = np.array([_ks(c) for c in curves])
        return KSCalibrationResult(float(per_class.mean()), curves, per_class, settings)
    prob = np.asarray(xp.to_numpy(data.y_prob), dtype=np.float64)
    labels = np.asarray(xp.to_numpy(data.y_true))
    if prob.ndim == 1:
        prob = np.column_stack([1.0 - prob, prob])
    cls = np.argsort(-prob, axis=1, kind="stable")[:, rank - 1]   # the rank-th largest class
    score = np.take_along_axis(prob, cls[:, None], 1)[:, 0]
    curve = _curve(score, (cls == labels).astype(np.float64))
    return KSCalibrationResult(_ks(curve), (curve,), None, settings)
