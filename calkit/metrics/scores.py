"""Proper scores and accuracy: Brier score, negative log-likelihood, accuracy.

One Brier score for a binary task
---------------------------------
A binary task can come as a 1-D ``P(y = 1)`` or as an ``(N, 2)`` matrix; both
layouts give the same Brier score, the classic binary one
``mean_i (p_i - y_i)^2`` in ``[0, 1]`` (half the sum over the two columns).
Tasks with three or more classes use the multiclass sum
``mean_i sum_k (p_ik - 1[y_i = k])^2`` in ``[0, 2]``.  This is scikit-learn's
``brier_score_loss(scale_by_half="auto")``; ``scale_by_half=False`` gives the
two-column sum for binary tasks too.  The streaming accumulator and the
reports use this same rule.

1-D scores
----------
Brier score and NLL of a 1-D ``y_prob`` are the same number whether it is a
binary classifier's ``P(y = 1)`` against the 0/1 class or the confidence of
each predicted answer against 0/1 correctness, so they need no ``view``.
:func:`accuracy` does depend on the reading and asks for a ``view``.
"""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._validation import (
    Classification,
    check_classification,
    check_fraction,
    check_sample_weight,
)
from calkit.metrics._views import resolve_view

_BLOCK_BYTES = 1 << 20


def _true_class_prob(data: Classification):
    """Probability given to the true class, as float64."""
    p, y = data.y_prob, data.y_true
    if data.binary:
        p = xp.as_float64(p)
        return xp.where(y == 1, p, 1.0) - xp.where(y == 1, 0.0, p)
    if xp.is_torch(p):
        return p.gather(1, y[:, None])[:, 0].double()
    return np.take_along_axis(p, y[:, None], axis=1)[:, 0].astype(np.float64)


def _sum_of_squares(p):
    """Row sums of ``p**2`` in float64, in cache-sized blocks (no N x K float64 copy)."""
    if xp.is_torch(p):
        return (p.double() ** 2).sum(1)
    n, k = p.shape
    out = np.empty(n, dtype=np.float64)
    block = max(1, _BLOCK_BYTES // (8 * k))
    for start in range(0, n, block):
        rows = p[start:start + block].astype(np.float64)
        np.einsum("ij,ij->i", rows, rows, out=out[start:start + block])
    return out


def _brier_per_sample(data: Classification, p_true=None, scale_by_half="auto"):
    """Brier score of every sample of validated data, in float64.

    Parameters
    ----------
    data : Classification
        Validated labels and probabilities.
    p_true : array, optional
        ``_true_class_prob(data)``, when the caller already has it.
    scale_by_half : bool or "auto", default="auto"
        See :func:`brier_score`.

    Returns
    -------
    array of shape (N,)
        Binary tasks (1-D or two columns): ``(1 - p_true)^2``; more classes:
        ``sum_k (p_k - 1[y = k])^2``; halved or doubled per ``scale_by_half``.
    """
    if p_true is None:
        p_true = _true_class_prob(data)
    half = _check_scale(scale_by_half, data.n_classes)
    if data.n_classes == 2:  # 1-D or two columns: both columns err by 1 - p_true
        per_sample = (1 - p_true) ** 2
        return per_sample if half else 2 * per_sample
    total = _sum_of_squares(data.y_prob) - 2 * p_true + 1
    return total / 2 if half else total


def _mean(values, data: Classification, sample_weight):
    """Mean of per-sample ``values``, weighted by validated ``sample_weight`` if given."""
    w = check_sample_weight(sample_weight, data.n_samples, like=values)
    if w is None:
        return values.mean()
    return (w * values).sum() / w.sum()


def _check_scale(scale_by_half, n_classes: int) -> bool:
    if isinstance(scale_by_half, str):
        if scale_by_half != "auto":
            raise ValueError(f"scale_by_half must be True, False or 'auto', got "
                             f"{scale_by_half!r}")
        return n_classes == 2
    if not isinstance(scale_by_half, (bool, np.bool_)):
        raise ValueError(f"scale_by_half must be True, False or 'auto', got {scale_by_half!r}")
    return bool(scale_by_half)


def brier_score(y_true, y_prob, *, scale_by_half="auto", sum_tol: float | None = None,
                classes=None, sample_weight=None):
    """Brier score: one definition for a binary task, whatever its layout.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Labels (or a one-hot matrix); for (correct, confidence) pairs, 0/1 correctness.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D: a binary classifier's ``P(y = 1)``, or the confidence
        of each predicted answer (both give the same Brier score).
    scale_by_half : bool or "auto", default="auto"
        ``"auto"``: binary tasks (1-D or two columns) give the classic
        ``mean_i (p_i - y_i)^2`` in ``[0, 1]`` (half the two-column sum),
        three or more classes the multiclass sum
        ``mean_i sum_k (p_ik - 1[y_i = k])^2`` in ``[0, 2]``.  ``False``: the
        sum over all columns for every task (binary: twice the classic score);
        ``True``: half of it for every task.  As scikit-learn's
        ``brier_score_loss``.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    classes : sequence, optional
        The label of each column of ``y_prob`` (see :func:`calkit.calibration_error`).
    sample_weight : array of shape (N,), optional
        Non-negative frequency weights: the weighted mean over samples.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import brier_score
    >>> brier_score([1, 0], np.array([0.8, 0.4]))
    0.1
    >>> round(brier_score([1, 0], np.array([[0.2, 0.8], [0.6, 0.4]])), 6)   # same task
    0.1
    >>> round(brier_score([1, 0], np.array([[0.2, 0.8], [0.6, 0.4]]), scale_by_half=False), 6)
    0.2
    >>> round(brier_score([0, 2], np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])), 6)  # (.06+.24)/2
    0.15
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    return xp.scalar(_mean(_brier_per_sample(data, scale_by_half=scale_by_half), data,
                           sample_weight))


def nll(y_true, y_prob, *, eps: float | None = None, sum_tol: float | None = None,
        classes=None, sample_weight=None):
    """Mean negative log-likelihood of the true class (log loss).

    The true-class probability is clipped below at ``eps`` (default: the machine
    epsilon of ``y_prob``'s dtype, as scikit-learn's ``log_loss``; must lie in
    (0, 1)) so that a zero probability gives a large finite loss rather than
    ``inf``.  A 1-D ``y_prob`` is ``P(y = 1)`` against the 0/1 class, which is
    also the log loss of (correct, confidence) pairs; ``classes`` as in
    :func:`calkit.calibration_error`.  ``sample_weight`` (optional, shape ``(N,)``)
    makes it the weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import nll
    >>> round(nll([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]])), 6)
    0.458145
    >>> round(nll([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]]), sample_weight=[0, 1]), 6)
    0.223144
    """
    if eps is not None:
        eps = check_fraction(eps, "eps")
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    if eps is None:
        eps = _machine_eps(data.y_prob)
    p_true = _true_class_prob(data)
    p_true = p_true.clamp(min=eps) if xp.is_torch(p_true) else np.maximum(p_true, eps)
    log_p = p_true.log() if xp.is_torch(p_true) else np.log(p_true)
    return xp.scalar(-_mean(log_p, data, sample_weight))


def accuracy(y_true, y_prob, *, view: str | None = None, sum_tol: float | None = None,
             classes=None, sample_weight=None):
    """Share of samples whose predicted (argmax) class is the true class.

    Parameters
    ----------
    y_true, y_prob, classes, sample_weight
        As in :func:`calkit.calibration_error` (weights give the weighted share).
    view : {"top_label", "positive", "classwise", "confidence"}, optional
        ``"confidence"``: ``y_prob`` holds the confidence of each answer and
        ``y_true`` whether it was right, so the accuracy is the share of 1s in
        ``y_true``.  Every other view: the arg-max prediction (``p > 0.5`` for a
        1-D binary ``P(y = 1)``) against the label.  A 1-D ``y_prob`` needs an
        explicit view, as for every calkit metric; an ``(N, K)`` one does not.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import accuracy
    >>> accuracy([0, 1, 1], np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]))
    0.6666666666666666
    >>> accuracy([1, 1, 0], np.array([0.4, 0.9, 0.8]), view="confidence")   # 2 of 3 right
    0.6666666666666666
    >>> accuracy([1, 1, 0], np.array([0.4, 0.9, 0.8]), view="positive")    # p > 0.5 vs y
    0.3333333333333333
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    view = resolve_view(view, data)
    correct = data.y_true == 1 if view == "confidence" else data.correct
    correct = correct.double() if xp.is_torch(correct) else correct.astype(np.float64)
    return xp.scalar(_mean(correct, data, sample_weight))


def _machine_eps(p) -> float:
    """Machine epsilon of the float dtype of ``p`` (numpy or torch, bfloat16 included)."""
    if xp.is_torch(p):
        return float(xp.torch_module().finfo(p.dtype).eps)
    return float(np.finfo(p.dtype).eps)
