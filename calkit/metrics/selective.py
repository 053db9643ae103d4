"""Selective classification: risk-coverage curve, AURC, E-AURC (Geifman et al. 2019).

A selective classifier answers only when its confidence is high enough.
Sorting the samples by decreasing confidence, covering the top ``k`` of them
has coverage ``k / N`` and selective risk ``err(k) / k``, with ``err(k)`` the
number of wrong top-label predictions among them.

Ties
----
Tied confidences cannot be separated by a threshold, and the order in which a
sort puts them is arbitrary.  calkit therefore defines everything so that the
order of tied samples never matters:

* the risk-coverage *curve* has one point per distinct confidence (a threshold
  either accepts a whole group of tied samples or none of it);
* ``AURC = (1/N) sum_{k=1}^{N} E[err(k)] / k`` where, inside a group of tied
  samples, ``E[err(k)]`` is the expectation under a uniformly random order of
  the group (it grows linearly through the group).  This is exactly the
  average of the per-order AURC over all tie-breaking orders, and equals the
  usual definition when there are no ties;
* ``accuracy_at_coverage(c)`` uses the ``ceil(c N)`` most confident samples with
  the same expectation for a group cut at the boundary;
* ``coverage_at_risk(r)`` is the largest coverage reachable by a threshold
  (a curve point) whose risk is at most ``r``.

``E-AURC = AURC - AURC*``, where ``AURC*`` is the AURC of a confidence that ranks
every correct prediction above every wrong one (same accuracy), computed exactly
on the discrete sum rather than with the ``r + (1 - r) log(1 - r)`` approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from calkit import _array as xp
from calkit._export import Exportable, json_ready
from calkit._validation import _as_array, check_classification, check_fraction
from calkit.metrics._views import resolve_view

SELECTIVE_VIEWS = ("top_label", "confidence")


@dataclass(frozen=True)
class RiskCoverage(Exportable):
    """Risk-coverage curve of a selective classifier and its summary numbers.

    Attributes
    ----------
    coverage, risk, threshold : ndarray of shape (G,)
        One point per distinct confidence, confidence decreasing: accepting the
        samples with ``confidence >= threshold`` gives ``coverage`` and
        selective ``risk`` (error rate among the accepted).
    aurc, eaurc : float
        Area under the risk-coverage curve and its excess over the oracle.
    n_samples, n_errors : int

    Examples
    --------
    >>> from calkit import accuracy, softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.metrics import risk_coverage
    >>> logits, labels = load_example()
    >>> rc = risk_coverage(labels, softmax(logits))
    >>> rc.n_samples, rc.n_errors, float(rc.coverage[-1])
    (2000, 91, 1.0)
    >>> bool(abs(rc.risk[-1] - (1 - accuracy(labels, softmax(logits)))) < 1e-12)  # all answered
    True
    >>> round(rc.aurc, 4), round(rc.eaurc, 4), rc.accuracy_at_coverage(0.8)
    (0.0093, 0.0082, 0.99125)
    >>> d = rc.to_dict()   # JSON-ready; rc.to_frame() (pandas) has a row per curve point
    >>> len(d["coverage"]) == len(rc.coverage), d["n_errors"]
    (True, 91)
    """

    coverage: np.ndarray
    risk: np.ndarray
    threshold: np.ndarray
    aurc: float
    eaurc: float
    n_samples: int
    n_errors: int

    def to_dict(self) -> dict:
        """JSON-ready dict: the summary numbers and the curve as lists."""
        return {"aurc": self.aurc, "eaurc": self.eaurc, "n_samples": self.n_samples,
                "n_errors": self.n_errors, **{k: json_ready(v) for k, v in
                                              self._frame_columns().items()}}

    def _frame_columns(self) -> dict:
        return {"coverage": self.coverage, "risk": self.risk, "threshold": self.threshold}

    def _expected_errors(self, k: np.ndarray) -> np.ndarray:
        counts = np.r_[0.0, self.coverage * self.n_samples]
        errors = np.r_[0.0, self.risk * self.coverage * self.n_samples]
        return np.interp(k, counts, errors)

    def accuracy_at_coverage(self, coverage: float) -> float:
        """Accuracy on the ``ceil(coverage * N)`` most confident samples (ties averaged)."""
        coverage = check_fraction(coverage, "coverage", closed_high=True)
        k = max(1, math.ceil(coverage * self.n_samples - 1e-9))
        return float(1 - self._expected_errors(np.array([k]))[0] / k)

    def coverage_at_risk(self, risk: float) -> tuple[float, float]:
        """Largest threshold-reachable coverage with selective risk <= ``risk``.

        Returns ``(coverage, threshold)``; ``(0.0, inf)`` when no threshold
        reaches that risk.
        """
        if isinstance(risk, (bool, np.bool_)) or not isinstance(risk, Real) or not 0 <= risk <= 1:
            raise ValueError(f"risk must lie in [0, 1], got {risk!r}")
        ok = np.flatnonzero(self.risk <= risk)
        if ok.size == 0:
            return 0.0, float("inf")
        j = ok[-1]
        return float(self.coverage[j]), float(self.threshold[j])


def _curve_from_sorted(conf_desc: np.ndarray, wrong_desc: np.ndarray):
    last_of_group = np.r_[conf_desc[1:] != conf_desc[:-1], True]
    k = np.flatnonzero(last_of_group) + 1
    errors = np.cumsum(wrong_desc, dtype=np.int64)[last_of_group]
    return k, errors, conf_desc[last_of_group]


def _aurc(k: np.ndarray, errors: np.ndarray, n: int) -> float:
    ranks = np.arange(1, n + 1, dtype=np.float64)
    expected = np.interp(ranks, np.r_[0, k], np.r_[0, errors])
    return float((expected / ranks).sum() / n)


def _oracle_aurc(n: int, n_errors: int) -> float:
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float((np.maximum(0, ranks - (n - n_errors)) / ranks).sum() / n)


def risk_coverage(y_true, y_prob, *, confidence=None, view: str | None = None,
                  sum_tol: float | None = None, classes=None) -> RiskCoverage:
    """Risk-coverage curve, AURC and E-AURC of top-label predictions.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels, or a one-hot matrix; with ``view="confidence"``, 0/1
        whether each answer was right.
    y_prob : array of shape (N, K) or (N,)
        Class probabilities (the prediction is the arg-max), a binary
        classifier's 1-D P(y = 1) (``view="top_label"``: prediction ``p > 0.5``,
        ranked by ``max(p, 1 - p)``), or the 1-D confidence of each answer
        (``view="confidence"``: ranked by it, wrong where ``y_true`` is 0).
    confidence : array of shape (N,), optional
        Score used to rank the samples (higher = answer first); default: the
        top-label probability.  Any real score works, e.g.
        :func:`calkit.metrics.ood.ood_score`.
    view : {"top_label", "confidence"}, optional
        Default ``"top_label"`` for an ``(N, K)`` ``y_prob``.  For a 1-D
        ``y_prob`` the two readings rank and score alike when every value is
        above 0.5 (then the default is accepted); otherwise the view must be
        said explicitly, as for every calkit metric (:mod:`calkit.metrics._views`).
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    classes : sequence, optional
        The label of each column of ``y_prob`` (see :func:`calkit.calibration_error`).

    Returns
    -------
    RiskCoverage

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.selective import risk_coverage
    >>> y_prob = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    >>> rc = risk_coverage([0, 1, 0, 1], y_prob)   # ranked: right, right, wrong, wrong
    >>> rc.coverage.tolist(), rc.risk.tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.3333333333333333, 0.5])
    >>> round(rc.aurc, 6), rc.eaurc                # (0 + 0 + 1/3 + 1/2) / 4; oracle order
    (0.208333, 0.0)
    >>> rc.accuracy_at_coverage(0.75), rc.coverage_at_risk(0.1)
    (0.6666666666666667, (0.5, 0.8))
    >>> risk_coverage([1, 0, 1], np.array([0.9, 0.4, 0.7]), view="confidence").risk.tolist()
    [0.0, 0.0, 0.3333333333333333]
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    if view is None and data.binary and bool((data.y_prob > 0.5).all()):
        view = "top_label"  # p > 0.5 everywhere: predicts 1, ranked by p in both readings
    view = resolve_view(view, data, SELECTIVE_VIEWS)
    if view == "confidence":
        wrong = xp.to_numpy(data.y_true) != 1
        own = data.y_prob
    else:
        wrong = ~xp.to_numpy(data.correct)
        own = data.confidence
    if confidence is None:
        score = np.asarray(xp.to_numpy(own), dtype=np.float64)
    else:
        score = _as_array(confidence, "confidence")
        score = np.asarray(xp.to_numpy(score), dtype=np.float64)
        if score.shape != (data.n_samples,):
            raise ValueError(f"confidence must have shape ({data.n_samples},), "
                             f"got {score.shape}")
        if not np.isfinite(score).all():
            raise ValueError("confidence contains NaN or infinite values")
    order = np.argsort(-score, kind="stable")
    k, errors, threshold = _curve_from_sorted(score[order], wrong[order])
    n, n_errors = data.n_samples, int(wrong.sum())
    aurc = _aurc(k, errors, n)
    return RiskCoverage(k / n, errors / k, threshold, aurc, aurc - _oracle_aurc(n, n_errors),
                        n, n_errors)


def aurc(y_true, y_prob, *, confidence=None, view: str | None = None) -> float:
    """Area under the risk-coverage curve (ties: expectation over orders).

    ``y_true``, ``y_prob``, ``confidence`` and ``view`` as in :func:`risk_coverage`
    (``view="confidence"`` for (correct, confidence) pairs).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.selective import aurc
    >>> aurc([0, 1], np.array([[0.6, 0.4], [0.6, 0.4]]))   # tied: (1/2 + 1/2) / 2
    0.5
    """
    return risk_coverage(y_true, y_prob, confidence=confidence, view=view).aurc


def eaurc(y_true, y_prob, *, confidence=None, view: str | None = None) -> float:
    """Excess AURC over the oracle ranking (Geifman et al. 2019).

    ``y_true``, ``y_prob``, ``confidence`` and ``view`` as in :func:`risk_coverage`
    (``view="confidence"`` for (correct, confidence) pairs).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.selective import eaurc
    >>> eaurc([1, 0], np.array([[0.4, 0.6], [0.3, 0.7]]))  # wrong first: 3/4 - 1/4
    0.5
    """
    return risk_coverage(y_true, y_prob, confidence=confidence, view=view).eaurc


def accuracy_at_coverage(y_true, y_prob, coverage: float, *, confidence=None,
                         view: str | None = None) -> float:
    """Accuracy on the most confident ``coverage`` share of the samples.

    ``y_true``, ``y_prob``, ``confidence`` and ``view`` as in :func:`risk_coverage`
    (``view="confidence"`` for (correct, confidence) pairs).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.selective import accuracy_at_coverage
    >>> accuracy_at_coverage([0, 1, 1], np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), 0.5)
    0.5
    """
    return risk_coverage(y_true, y_prob, confidence=confidence,
                         view=view).accuracy_at_coverage(coverage)


def coverage_at_risk(y_true, y_prob, risk: float, *, confidence=None,
                     view: str | None = None) -> float:
    """Largest coverage a confidence threshold reaches with selective risk <= ``risk``.

    ``y_true``, ``y_prob``, ``confidence`` and ``view`` as in :func:`risk_coverage`
    (``view="confidence"`` for (correct, confidence) pairs).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.selective import coverage_at_risk
    >>> coverage_at_risk([0, 1, 1], np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), 0.5)
    1.0
    """
    return risk_coverage(y_true, y_prob, confidence=confidence,
                         view=view).coverage_at_risk(risk)[0]
