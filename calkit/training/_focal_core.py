"""The maths shared by every focal-family loss: weights and the differentiable reduction.

Every loss is ``L = reduction(m * ce)`` with ``ce = -log p_t`` from PyTorch's fused
``cross_entropy(reduction="none")`` and a modulating factor ``m = b ** |gamma|``
(``gamma`` chosen per sample, without gradient, by the loss: ``gamma_of(ce)``).
Its derivative in ``ce`` has the closed form ``c`` of :func:`focal_weights`, so
the loss is built from built-in operations only::

    L = reduction(c * ce) + reduction((m - c) * ce)     (second term constant)

which has the value ``reduction(m * ce)`` and the gradient ``c``: autograd runs
just the cross-entropy's own backward behind one ``dot`` (or ``mul``), with no
Python in the backward pass.  The per-sample weights are computed without
gradient: with torch on the tensors' device (no host synchronisation), or, for
CPU tensors, on a numpy view, whose calls on short vectors cost a fraction of
torch's dispatch (small batches are dominated by that fixed cost).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: smallest base of the modulating factor (representable in float32, as in the reference)
BASE_FLOOR = 1e-20


def namespace(values):
    """The array library of per-sample ``values``: numpy on the host path, else torch."""
    return np if isinstance(values, np.ndarray) else torch


def like_values(tensor: Tensor, values):
    """``tensor`` as the kind of array ``values`` is: a numpy view on the host path."""
    return tensor.detach().cpu().numpy() if isinstance(values, np.ndarray) else tensor


def focal_weights(ce, gamma):
    """Modulating factor ``m`` and slope ``c = dL/d ce`` of ``L = m * ce``, per sample.

    ``ce = -log p_t``; ``m = b ** |gamma|`` with ``b = 1 - p_t`` (``gamma >= 0``)
    or ``1 + p_t`` (``gamma < 0``).  With ``s p_t = 1 - b`` (``s`` the sign),
    ``c = m - |gamma| (1 - b) log(p_t) m / b``, which is ``>= m`` for focal and
    ``<= m`` for inverse focal.  Works on numpy arrays and on (detached) torch
    tensors alike, in the dtype of ``ce``; ``gamma`` is a number or an array of
    the same kind and shape.  ``b`` is clamped at :data:`BASE_FLOOR`, where the
    second term of the slope is taken as 0; so is it where ``ce = +inf``
    (``p_t = 0``, ``b = 1``: the limit of ``(1 - b) log p_t`` is 0), so such a
    sample has ``m = c = 1`` and the loss is ``+inf`` with the gradient of the
    cross-entropy, as ``torch.nn.functional.cross_entropy``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.training._focal_core import focal_weights
    >>> m, c = focal_weights(np.array([np.log(2.0)]), 2.0)  # p_t = 0.5
    >>> float(m[0]), round(float(c[0]), 6)  # 0.5**2, 0.25 + 2 * 0.5 * log(2) * 0.25 / 0.5
    (0.25, 0.596574)
    """
    xp = namespace(ce)
    log_pt = -ce
    if isinstance(gamma, (int, float)):  # one gamma for all: no per-sample selection
        base = 1 + xp.exp(log_pt) if gamma < 0 else -xp.expm1(log_pt)
        exponent = abs(gamma)
    else:
        gamma = gamma.astype(ce.dtype, copy=False) if xp is np else gamma.to(ce.dtype)
        base = xp.where(gamma < 0, 1 + xp.exp(log_pt), -xp.expm1(log_pt))
        exponent = xp.abs(gamma)
    clamped = np.maximum(base, BASE_FLOOR) if xp is np else base.clamp_min(BASE_FLOOR)
    m = clamped ** exponent
    finite_log_pt = xp.where(log_pt > -xp.inf, log_pt, 0.0)  # p_t = 0: (1 - b) log p_t -> 0
    slope = exponent * (1 - base) * finite_log_pt * m / clamped * (base > BASE_FLOOR)
    return m, m - slope


def focal_loss(logits: Tensor, target: Tensor, gamma_of, reduction: str) -> Tensor:
    """``reduction(m * ce)`` of checked 2-D ``logits`` and 1-D ``target``, differentiable."""
    return weighted_cross_entropy(F.cross_entropy(logits, target, reduction="none"),
                                  gamma_of, reduction)


def weighted_cross_entropy(ce: Tensor, gamma_of, reduction: str) -> Tensor:
    """``reduction(m * ce)`` from per-sample cross-entropies ``ce`` (N,), differentiable in ``ce``.

    ``gamma_of(values)`` gives each sample's gamma (a number, or an array of the
    kind of ``values``) from the detached cross-entropies ``values``.
    """
    n = ce.shape[0]
    if reduction == "mean" and n == 0:
        return ce.mean()  # NaN, as cross_entropy gives for an empty batch
    values = _detached(ce)
    m, c = focal_weights(values, gamma_of(values))
    xp = namespace(values)
    finite = xp.where(values < xp.inf, values, 0.0)  # m = c where ce = +inf: no 0 * inf
    if reduction == "none":
        return ce * _tensor(c) + _tensor((m - c) * finite)
    rest = (m - c) @ finite  # the constant part
    if reduction == "mean":
        c, rest = c / n, rest / n
    return torch.dot(ce, _tensor(c)) + (float(rest) if isinstance(values, np.ndarray) else rest)


def _detached(ce: Tensor):
    """A numpy view of a CPU float32/float64 tensor, else the detached tensor."""
    ce = ce.detach()
    if ce.device.type == "cpu" and ce.dtype in (torch.float32, torch.float64):
        return ce.numpy()
    return ce


def _tensor(x):
    """A numpy array as a tensor (no copy); tensors pass through."""
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x
