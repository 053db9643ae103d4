"""Proper scores and accuracy: Brier score, negative log-likelihood, accuracy."""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._validation import Classification, check_classification, check_sample_weight

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


def _brier_per_sample(data: Classification, p_true=None):
    """Brier score of every sample of validated data, in float64.

    Parameters
    ----------
    data : Classification
        Validated labels and probabilities.
    p_true : array, optional
        ``_true_class_prob(data)``, when the caller already has it.

    Returns
    -------
    array of shape (N,)
        ``(1 - p_true)^2`` for binary 1-D input, else ``sum_k (p_k - 1[y = k])^2``.
    """
    if p_true is None:
        p_true = _true_class_prob(data)
    if data.binary:
        return (1 - p_true) ** 2
    return _sum_of_squares(data.y_prob) - 2 * p_true + 1


def _mean(values, data: Classification, sample_weight):
    """Mean of per-sample ``values``, weighted by validated ``sample_weight`` if given."""
    w = check_sample_weight(sample_weight, data.n_samples, like=values)
    if w is None:
        return values.mean()
    return (w * values).sum() / w.sum()


def brier_score(y_true, y_prob, *, sum_tol: float | None = None, sample_weight=None):
    """Brier score.

    Multiclass ``(N, K)`` input: ``mean_i sum_k (p_ik - 1[y_i = k])^2``, in
    ``[0, 2]`` (scikit-learn's multiclass ``brier_score_loss``).  Binary 1-D input
    (probability of class 1): ``mean_i (p_i - y_i)^2``, in ``[0, 1]`` (the
    classic binary Brier score, half the two-column sum).  ``sample_weight``
    (optional, shape ``(N,)``) makes it the weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import brier_score
    >>> brier_score([1, 0], np.array([0.8, 0.4]))
    0.1
    >>> round(brier_score([0, 1], np.array([[0.8, 0.2], [0.4, 0.6]])), 6)
    0.2
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    return xp.scalar(_mean(_brier_per_sample(data), data, sample_weight))


def nll(y_true, y_prob, *, eps: float | None = None, sum_tol: float | None = None,
        sample_weight=None):
    """Mean negative log-likelihood of the true class (log loss).

    The true-class probability is clipped below at ``eps`` (default: the machine
    epsilon of ``y_prob``'s dtype, as scikit-learn's ``log_loss``) so that a zero
    probability gives a large finite loss rather than ``inf``.  ``sample_weight``
    (optional, shape ``(N,)``) makes it the weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import nll
    >>> round(nll([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]])), 6)
    0.458145
    >>> round(nll([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]]), sample_weight=[0, 1]), 6)
    0.223144
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    if eps is None:
        eps = float(np.finfo(str(data.y_prob.dtype).replace("torch.", "")).eps)
    p_true = _true_class_prob(data)
    p_true = p_true.clamp(min=eps) if xp.is_torch(p_true) else np.maximum(p_true, eps)
    log_p = p_true.log() if xp.is_torch(p_true) else np.log(p_true)
    return xp.scalar(-_mean(log_p, data, sample_weight))


def accuracy(y_true, y_prob, *, sum_tol: float | None = None, sample_weight=None):
    """Share of samples whose predicted (argmax) class is the true class.

    ``sample_weight`` (optional, shape ``(N,)``) makes it the weighted share.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import accuracy
    >>> accuracy([0, 1, 1], np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]))
    0.6666666666666666
    """
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    correct = data.correct
    correct = correct.double() if xp.is_torch(correct) else correct.astype(np.float64)
    return xp.scalar(_mean(correct, data, sample_weight))
