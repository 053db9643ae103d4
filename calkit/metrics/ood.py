"""Out-of-distribution (OOD) detection: confidence scores and detection metrics.

Score convention
----------------
Every score returned by :func:`ood_score` is an *in-distribution score*: higher
means "more like the training distribution".  Entropy and energy, which grow
for OOD inputs, are therefore returned negated (``-H(p)`` and ``-E(z) =
T logsumexp(z / T)``).

Metric convention
-----------------
:func:`ood_metrics` takes the in-distribution scores and the OOD scores.

* ``auroc``: probability that a random in-distribution sample scores higher than
  a random OOD sample, ties counting one half (the Mann-Whitney statistic; the
  same with either class called positive).
* ``aupr_in``: average precision with in-distribution as the positive class,
  ranked by the score; ``aupr_out``: OOD as the positive class, ranked by the
  negated score.  Average precision is scikit-learn's step-wise
  ``sum_k (R_k - R_{k-1}) P_k`` over distinct thresholds (no interpolation).
* ``fpr_at_tpr``: with ``positive="in"`` (default, Hendrycks and Gimpel 2017;
  Liang et al. 2018) the fraction of OOD samples accepted when the threshold
  accepts at least ``tpr`` (0.95) of the in-distribution samples; with
  ``positive="out"`` the roles swap (the fraction of in-distribution samples
  flagged when at least 95 % of the OOD samples are flagged).

Ties are handled exactly: every metric is computed on the distinct score
values (a threshold can only accept or reject a whole group of tied scores), so
the result does not depend on the order of the samples.  The threshold for
``fpr_at_tpr`` is the largest one whose true-positive rate reaches ``tpr``,
i.e. the first point of scikit-learn's ``roc_curve(drop_intermediate=False)``
with ``tpr >= 0.95``.  All counts are exact integers; torch inputs are moved to
the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from calkit import _array as xp
from calkit._export import Exportable, json_ready
from calkit._validation import (
    _as_array,
    check_classification,
    check_fraction,
    check_logits,
    check_option,
    check_positive,
)
from calkit.logits import log_softmax

SCORES = ("msp", "entropy", "energy", "max_logit")
POSITIVE = ("in", "out")


def ood_score(x, method: str = "msp", *, logits: bool = True,
              temperature: float = 1.0) -> np.ndarray:
    """In-distribution score per sample (higher = more in-distribution).

    Parameters
    ----------
    x : array of shape (N, K)
        Logits (``logits=True``) or probabilities; numpy or torch.
    method : {"msp", "entropy", "energy", "max_logit"}, default="msp"
        Maximum softmax probability (Hendrycks and Gimpel 2017); negative
        predictive entropy ``sum_k p_k log p_k`` (the AdaFocal paper's OOD
        score); negative energy ``T logsumexp(z / T)`` (Liu et al. 2020); or
        the maximum logit (Hendrycks et al. 2022).  Energy and max logit need
        logits.
    logits : bool, default=True
        Whether ``x`` holds logits (else probabilities, rows summing to one).
    temperature : float, default=1.0
        Softmax / energy temperature (logits only).

    Returns
    -------
    ndarray of shape (N,), float64.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.ood import ood_score
    >>> z = np.array([[4.0, 0.0], [0.0, 0.0]])
    >>> ood_score(z, "msp").round(3).tolist()
    [0.982, 0.5]
    >>> ood_score(z, "entropy").round(3).tolist()    # -H(p); uniform gives -log 2
    [-0.09, -0.693]
    >>> ood_score(z, "energy").round(3).tolist()     # logsumexp(z)
    [4.018, 0.693]
    """
    check_option(method, "method", SCORES)
    temperature = check_positive(temperature, "temperature")
    if logits:
        z = xp.as_float64(xp.to_numpy(check_logits(x, "x"))) / temperature
        if method == "max_logit":
            return z.max(1) * temperature
        logp = log_softmax(z)
        if method == "energy":
            return (z.max(1) - logp.max(1)) * temperature  # T logsumexp(z / T)
        if method == "msp":
            return np.exp(logp.max(1))
        return (np.exp(logp) * logp).sum(1)
    if method in ("energy", "max_logit"):
        raise ValueError(f"method={method!r} needs logits; pass logits=True")
    if temperature != 1.0:
        raise ValueError("temperature applies to logits only")
    p = _check_probabilities(x)
    if method == "msp":
        return p.max(1)
    return -entr(p).sum(1)


def _check_probabilities(x) -> np.ndarray:
    """(N, K) probabilities, validated like classifier outputs (labels are not needed)."""
    n = int(np.shape(x)[0]) if np.ndim(x) else 0
    try:
        data = check_classification(np.zeros(n, dtype=np.int64), x)
    except (TypeError, ValueError) as exc:  # the checks name y_prob; here it is x
        raise type(exc)(str(exc).replace("y_prob", "x")) from exc
    if data.binary:
        raise ValueError("probabilities must be a 2-D (N, K) array")
    return np.asarray(xp.to_numpy(data.y_prob), dtype=np.float64)


@dataclass(frozen=True)
class OODResult(Exportable):
    """OOD detection metrics (see :mod:`calkit.metrics.ood` for the conventions).

    Attributes
    ----------
    auroc, aupr_in, aupr_out, fpr_at_tpr : float
    threshold : float
        The score threshold (accept ``score >= threshold``) behind ``fpr_at_tpr``.
    settings : dict
        ``tpr``, ``positive``, ``n_in``, ``n_out``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.ood import ood_metrics, ood_score
    >>> rng = np.random.default_rng(0)
    >>> z_in = rng.normal(size=(500, 10)) + 4 * np.eye(10)[rng.integers(0, 10, 500)]
    >>> z_out = rng.normal(size=(300, 10))   # no class stands out
    >>> s_in, s_out = ood_score(z_in, "energy"), ood_score(z_out, "energy")
    >>> r = ood_metrics(s_in, s_out)
    >>> round(r.auroc, 4), r.fpr_at_tpr, r.settings["n_in"], r.settings["n_out"]
    (0.981, 0.09, 500, 300)
    >>> bool(np.isclose(r.auroc, np.mean(s_in[:, None] > s_out)))   # P(in scores above out)
    True
    >>> float(np.mean(s_in >= r.threshold)), float(np.mean(s_out >= r.threshold))
    (0.95, 0.09)
    >>> sorted(r.to_dict())[:4]
    ['aupr_in', 'aupr_out', 'auroc', 'fpr_at_tpr']
    """

    auroc: float
    aupr_in: float
    aupr_out: float
    fpr_at_tpr: float
    threshold: float
    settings: dict

    def to_dict(self) -> dict:
        """JSON-ready dict of the metrics and settings (``to_frame()``: one row of them)."""
        return json_ready(dict(auroc=self.auroc, aupr_in=self.aupr_in, aupr_out=self.aupr_out,
                               fpr_at_tpr=self.fpr_at_tpr, threshold=self.threshold,
                               **self.settings))


def _check_scores_1d(x, name: str) -> np.ndarray:
    a = np.asarray(xp.to_numpy(_as_array(x, name)), dtype=np.float64)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _roc_points(pos: np.ndarray, neg: np.ndarray):
    """Cumulative (tp, fp) counts at each distinct score, thresholds decreasing."""
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    order = np.argsort(-scores, kind="stable")
    s, lab = scores[order], is_pos[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(lab)[last_of_group]
    fp = np.cumsum(~lab)[last_of_group]
    return s[last_of_group], tp, fp


def _auc(tp: np.ndarray, fp: np.ndarray) -> float:
    """Trapezoidal area under (fp, tp) from (0, 0): the tie-averaged Mann-Whitney statistic."""
    tp0, fp0 = np.r_[0, tp[:-1]], np.r_[0, fp[:-1]]
    area = ((fp - fp0) * (tp + tp0)).sum() / 2.0
    return float(area / (tp[-1] * fp[-1]))


def _average_precision(tp: np.ndarray, fp: np.ndarray) -> float:
    recall_step = np.diff(np.r_[0, tp]) / tp[-1]
    precision = tp / (tp + fp)
    return float((recall_step * precision).sum())


def _fpr_at_tpr(thresholds, tp, fp, tpr: float):
    k = int(np.searchsorted(tp / tp[-1], tpr, side="left"))
    return float(fp[k] / fp[-1]), float(thresholds[k])


def ood_metrics(score_in, score_out, *, tpr: float = 0.95,
                positive: str = "in") -> OODResult:
    """AUROC, AUPR-in, AUPR-out and FPR at ``tpr`` TPR of an OOD detector.

    Parameters
    ----------
    score_in : array of shape (N_in,)
        In-distribution scores (higher = more in-distribution), e.g. from
        :func:`ood_score` on in-distribution test data.
    score_out : array of shape (N_out,)
        Scores of the OOD samples.
    tpr : float, default=0.95
        True-positive rate at which the false-positive rate is reported.
    positive : {"in", "out"}, default="in"
        Which set is the positive class for ``fpr_at_tpr`` (AUROC and the two
        AUPRs are reported for both conventions already).

    Returns
    -------
    OODResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.ood import ood_metrics
    >>> r = ood_metrics(np.array([0.9, 0.8, 0.7, 0.4]), np.array([0.75, 0.3, 0.2]))
    >>> round(r.auroc, 4), round(r.aupr_in, 4), round(r.aupr_out, 4)   # 10/12, 3.55/4, 2.6/3
    (0.8333, 0.8875, 0.8667)
    >>> round(r.fpr_at_tpr, 4), r.threshold    # all 4 accepted at 0.4; OOD 0.75 gets in too
    (0.3333, 0.4)
    """
    check_option(positive, "positive", POSITIVE)
    tpr = check_fraction(tpr, "tpr", closed_high=True)
    s_in = _check_scores_1d(score_in, "score_in")
    s_out = _check_scores_1d(score_out, "score_out")
    thr, tp, fp = _roc_points(s_in, s_out)
    thr_out, tp_out, fp_out = _roc_points(-s_out, -s_in)
    if positive == "in":
        fpr, threshold = _fpr_at_tpr(thr, tp, fp, tpr)
    else:
        fpr, threshold = _fpr_at_tpr(thr_out, tp_out, fp_out, tpr)
        threshold = -threshold  # flag as OOD when score <= threshold
    settings = dict(tpr=float(tpr), positive=positive, n_in=len(s_in), n_out=len(s_out))
    return OODResult(_auc(tp, fp), _average_precision(tp, fp),
                     _average_precision(tp_out, fp_out), fpr, threshold, settings)
