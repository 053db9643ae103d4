"""Turning logits into probabilities: numerically stable softmax and log-softmax."""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._array import Array
from calkit._validation import check_logits


def softmax(logits, axis: int = -1) -> Array:
    """Numerically stable softmax that keeps the input's float dtype.

    Parameters
    ----------
    logits : array of shape (N, K)
        Finite floating-point logits (numpy array or torch tensor); float32
        stays float32.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    array of the same shape, rows summing to one.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import softmax
    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(3).tolist()
    [[0.25, 0.75]]
    >>> softmax(np.array([[1000.0, 0.0]], dtype=np.float32)).dtype
    dtype('float32')
    """
    z = check_logits(logits)
    if xp.is_torch(z):
        return z.softmax(dim=axis)
    with np.errstate(over="ignore"):  # a shift overflowing to -inf correctly gives exp 0
        e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(logits, axis: int = -1) -> Array:
    """Numerically stable log-softmax (``z - logsumexp(z)``), keeping the float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import log_softmax
    >>> float(np.exp(log_softmax(np.array([[2.0, 2.0]]))[0, 0]))
    0.5
    """
    z = check_logits(logits)
    if xp.is_torch(z):
        return z.log_softmax(dim=axis)
    with np.errstate(over="ignore"):
        shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
