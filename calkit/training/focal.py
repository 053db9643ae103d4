"""The focal-loss family: focal, inverse focal, FLSD-53 and dual focal loss.

Every loss here is ``-m * log p_t``, the negative log-likelihood of the true class
``t`` scaled by a modulating factor ``m = base ** |gamma|``; they differ only in how
``gamma`` and ``base`` are chosen.  One function computes that product for all of
them (and for :class:`~calkit.training.adafocal.AdaFocalLoss`):
:func:`calkit.training._focal_core.weighted_cross_entropy`, also exposed per
sample as :func:`focal_term`.

=====================  ===========================  ===============================
loss                   gamma                        base
=====================  ===========================  ===============================
focal                  fixed ``gamma >= 0``         ``1 - p_t``
inverse focal          fixed, written ``-gamma``    ``1 + p_t``
FLSD-53                5 if ``p_t < 0.2`` else 3    ``1 - p_t``
dual focal             fixed                        ``1 - p_t + p_j``
AdaFocal               per validation bin, signed   ``1 - p_t`` or ``1 + p_t``
=====================  ===========================  ===============================

``log p_t`` comes from ``log_softmax`` and ``1 - p_t`` from ``-expm1(log p_t)``, so
the losses are accurate for confident predictions.  When ``p_t`` rounds to exactly
1.0 the base is 0 and ``d base**g / d base`` is infinite for ``0 < g < 1``; the base
is clamped at :data:`BASE_FLOOR` (the AdaFocal reference adds ``1e-20``), which
keeps the gradient finite without changing any representable loss value.
Half-precision logits (autocast) are upcast to float32 first.
"""

from __future__ import annotations

from numbers import Real
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from calkit._validation import check_option
from calkit.training._focal_core import (
    BASE_FLOOR,
    focal_loss,
    like_values,
    namespace,
    weighted_cross_entropy,
)

__all__ = ["FLSD53", "DualFocalLoss", "FocalLoss", "InverseFocalLoss", "focal_term"]

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")


def focal_term(log_pt: Tensor, gamma: Tensor | float, base: Tensor | None = None) -> Tensor:
    """Per-sample ``-(base ** |gamma|) * log_pt``, the shared core of every loss here.

    Parameters
    ----------
    log_pt : Tensor of shape (N,)
        Log-probability of the true class.
    gamma : Tensor of shape (N,) or float
        Focusing parameter.  ``gamma >= 0``: focal, ``base = 1 - p_t``;
        ``gamma < 0``: inverse focal with ``|gamma|``, ``base = 1 + p_t``.
        Treated as a constant (no gradient flows into it).
    base : Tensor of shape (N,), optional
        An explicit base (e.g. dual focal's ``1 - p_t + p_j``); overrides the
        choice by the sign of ``gamma``, and autograd differentiates it.

    Returns
    -------
    Tensor of shape (N,)
        The loss of each sample; ``gamma = 0`` gives the cross-entropy.
        ``log_pt = -inf`` (``p_t = 0``) gives ``+inf``, as the cross-entropy,
        with the gradient of the cross-entropy times the factor.

    Raises
    ------
    TypeError, ValueError
        For a ``log_pt`` that is not a 1-D floating tensor, a ``gamma`` or
        ``base`` of another shape or device, and (CPU tensors: nothing waits
        for a GPU) NaN or positive ``log_pt``, a non-finite ``gamma`` or a
        negative or non-finite ``base``.

    Notes
    -----
    Without ``base``, the gradient is the closed form of
    :func:`calkit.training._focal_core.focal_weights` (see that module): no
    double backward through the modulating factor.

    Examples
    --------
    >>> import math, torch
    >>> from calkit.training.focal import focal_term
    >>> lp = torch.tensor([math.log(0.5)], dtype=torch.float64)
    >>> round(focal_term(lp, 2.0).item(), 6)  # (1 - 0.5)**2 * log(2)
    0.173287
    >>> round(focal_term(lp, -2.0).item(), 6)  # (1 + 0.5)**2 * log(2)
    1.559581
    """
    _check_focal_term(log_pt, gamma, base)
    return _focal_term(log_pt, gamma, base)


def _check_focal_term(log_pt, gamma, base) -> None:
    """The argument checks of :func:`focal_term` (value checks on CPU tensors only)."""
    if not isinstance(log_pt, Tensor):
        raise TypeError(f"log_pt must be a torch tensor, got {type(log_pt).__name__}")
    if not log_pt.is_floating_point() or log_pt.ndim != 1:
        raise ValueError(f"log_pt must be a 1-D floating-point tensor, got {log_pt.dtype} of "
                         f"shape {tuple(log_pt.shape)}")
    named = [("base", base)] if base is not None else []
    if isinstance(gamma, Tensor):
        named.append(("gamma", gamma))
    else:
        check_gamma(gamma, nonnegative=False)
    for name, t in named:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
        if not t.is_floating_point() or tuple(t.shape) not in ((), tuple(log_pt.shape)):
            raise ValueError(f"{name} must be a floating-point tensor of shape "
                             f"{tuple(log_pt.shape)} (like log_pt), got {t.dtype} of shape "
                             f"{tuple(t.shape)}")
        if t.device != log_pt.device:
            raise ValueError(f"{name} is on {t.device} but log_pt is on {log_pt.device}")
    if log_pt.device.type != "cpu":
        return
    with torch.no_grad():
        if bool(torch.isnan(log_pt).any()) or bool((log_pt > 0).any()):
            raise ValueError("log_pt must hold log-probabilities (<= 0, not NaN)")
        for name, t in named:
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
            if name == "base" and bool((t < 0).any()):
                raise ValueError("base must be >= 0")


def _focal_term(log_pt: Tensor, gamma, base: Tensor | None = None) -> Tensor:
    """:func:`focal_term` without the argument checks (for the losses' own calls)."""
    if base is not None:
        exponent = gamma.detach().to(log_pt.dtype).abs() if isinstance(gamma, Tensor) \
            else abs(float(gamma))
        factor = base.clamp_min(BASE_FLOOR) ** exponent
        # p_t = 0: the loss is +inf; the factor's gradient is multiplied by -log p_t, but
        # its limit is 0 (p_t log p_t -> 0), so only the cross-entropy's gradient remains
        finite = log_pt > -torch.inf
        safe = torch.where(finite, log_pt, torch.zeros_like(log_pt))
        return torch.where(finite, -factor * safe, -factor.detach() * log_pt)
    if isinstance(gamma, Tensor):
        fixed = gamma.detach().to(log_pt.dtype)
        return weighted_cross_entropy(-log_pt, lambda ce: like_values(fixed, ce), "none")
    return weighted_cross_entropy(-log_pt, lambda ce: float(gamma), "none")


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ("mean", "sum" or "none") to per-sample losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def check_inputs(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(logits (M, C), target (M,))`` with ``(N, C, d1, ...)`` flattened.

    Half-precision logits are upcast to float32.  Checks shapes and dtypes only
    (no data-dependent check, so nothing waits for the GPU); on CPU the labels
    are also checked to lie in ``[0, C)``.
    """
    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError("logits and target must be torch tensors")
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape (N, C) or (N, C, d1, ...), "
                         f"got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    n_classes = logits.shape[1]
    if n_classes < 2:
        raise ValueError(f"logits need at least 2 classes, got {n_classes}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target must have shape {expected} for logits of shape "
                         f"{tuple(logits.shape)}, got {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got {target.dtype}")
    if logits.ndim > 2:
        logits = logits.movedim(1, -1).reshape(-1, n_classes)
        target = target.reshape(-1)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    target = target.long()
    if target.device.type == "cpu" and target.numel():
        labels = target.numpy()
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"target labels must lie in [0, {n_classes - 1}], got values in "
                             f"[{lo}, {hi}]")
    return logits, target


def check_gamma(gamma, name: str = "gamma", nonnegative: bool = True) -> float:
    """A finite real ``gamma`` (``>= 0`` unless ``nonnegative`` is False); numpy scalars too."""
    if isinstance(gamma, bool | np.bool_) or not isinstance(gamma, Real) or gamma != gamma \
            or abs(gamma) == float("inf"):
        raise ValueError(f"{name} must be a finite number, got {gamma!r}")
    if nonnegative and gamma < 0:
        raise ValueError(f"{name} must be >= 0, got {gamma!r}")
    return float(gamma)


class _FocalFamilyLoss(nn.Module):
    """Shared plumbing: reduction, input checks, ``log p_t``; subclasses set the term."""

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = check_option(reduction, "reduction", REDUCTIONS)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` (N, C) or (N, C, d1, ...) against integer ``target``."""
        return focal_loss(*check_inputs(logits, target), self._gamma, self.reduction)

    def _gamma(self, ce):
        """Each sample's gamma (a float, or an array like ``ce``) from its cross-entropy."""
        raise NotImplementedError  # pragma: no cover - abstract


class FocalLoss(_FocalFamilyLoss):
    """Focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017; Mukhoti et al. 2020).

    Parameters
    ----------
    gamma : float, default=3.0
        Focusing parameter ``>= 0``; 0 is the cross-entropy.
    reduction : {"mean", "sum", "none"}, default="mean"
        The focal-calibration and AdaFocal reference code sums over the batch.

    Examples
    --------
    >>> import torch
    >>> from calkit.training import FocalLoss
    >>> logits, target = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    >>> loss = FocalLoss(gamma=0.0)(logits, target)
    >>> bool(torch.isclose(loss, torch.nn.functional.cross_entropy(logits, target)))
    True
    >>> FocalLoss(gamma=3.0)(logits, target) < loss
    tensor(True)
    """

    def __init__(self, gamma: float = 3.0, reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.gamma = check_gamma(gamma)

    def _gamma(self, ce):
        return self.gamma

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


class InverseFocalLoss(_FocalFamilyLoss):
    """Inverse focal loss ``-(1 + p_t)^gamma log p_t`` (AdaFocal Eq. 1).

    It weights confident samples up and so pushes confidence up; AdaFocal uses
    it for under-confident bins.

    Parameters
    ----------
    gamma : float, default=1.0
        Exponent ``>= 0``; 0 is the cross-entropy.
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import math, torch
    >>> from calkit.training import InverseFocalLoss
    >>> logits, target = torch.tensor([[0.0, 0.0]]), torch.tensor([1])  # p_t = 0.5
    >>> round(InverseFocalLoss(gamma=2.0)(logits, target).item(), 5)  # 1.5**2 * log 2
    1.55958
    """

    def __init__(self, gamma: float = 1.0, reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.gamma = check_gamma(gamma)

    def _gamma(self, ce):
        return -self.gamma

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


class FLSD53(_FocalFamilyLoss):
    """Sample-dependent focal loss FLSD-53 (Mukhoti et al. 2020).

    ``gamma = gamma_low`` (5) when ``p_t < threshold`` (0.2), else ``gamma_high``
    (3), chosen per sample without gradient; the modulating factor itself keeps
    its gradient, as in the reference code.  (The reference's "FLSD-52" is a
    three-level 5/3/2 rule and is not this class with ``gamma_high=2``.)

    Parameters
    ----------
    gamma_low, gamma_high : float, default=5.0, 3.0
    threshold : float, default=0.2
        ``p_t`` exactly at the threshold gets ``gamma_high``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import math, torch
    >>> from calkit.training import FLSD53, FocalLoss
    >>> logits = torch.tensor([[0.0, math.log(9.0)], [0.0, 0.0]])  # p_t = 0.1 and 0.5
    >>> target = torch.tensor([0, 0])
    >>> per_sample = FLSD53(reduction="none")(logits, target)
    >>> bool(torch.isclose(per_sample[0], FocalLoss(5.0)(logits[:1], target[:1])))
    True
    >>> bool(torch.isclose(per_sample[1], FocalLoss(3.0)(logits[1:], target[1:])))
    True
    """

    def __init__(self, gamma_low: float = 5.0, gamma_high: float = 3.0, threshold: float = 0.2,
                 reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.gamma_low = check_gamma(gamma_low, "gamma_low")
        self.gamma_high = check_gamma(gamma_high, "gamma_high")
        if not 0.0 <= check_gamma(threshold, "threshold") <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)

    def _gamma(self, ce):
        xp = namespace(ce)
        return xp.where(xp.exp(-ce) < self.threshold, self.gamma_low, self.gamma_high)

    def extra_repr(self) -> str:
        return (f"gamma_low={self.gamma_low}, gamma_high={self.gamma_high}, "
                f"threshold={self.threshold}, reduction={self.reduction!r}")


class DualFocalLoss(_FocalFamilyLoss):
    """Dual focal loss ``-(1 - p_t + p_j)^gamma log p_t`` (Tao et al., ICML 2023).

    ``p_j`` is the largest class probability strictly below ``p_t`` (0 when
    there is none; classes tied with ``p_t`` are excluded), as in the authors'
    code.  Gradients flow through both ``p_t`` and ``p_j``.

    Parameters
    ----------
    gamma : float, default=5.0
        The authors use 5 for CIFAR-10 ResNet-50; 0 is the cross-entropy.
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import math, torch
    >>> from calkit.training import DualFocalLoss
    >>> p = torch.tensor([[0.6, 0.3, 0.1]], dtype=torch.float64)
    >>> loss = DualFocalLoss(gamma=2.0)(p.log(), torch.tensor([0]))
    >>> math.isclose(loss.item(), (1 - 0.6 + 0.3) ** 2 * -math.log(0.6))
    True
    """

    def __init__(self, gamma: float = 5.0, reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.gamma = check_gamma(gamma)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` (N, C) or (N, C, d1, ...) against integer ``target``."""
        logits, target = check_inputs(logits, target)
        log_pt = -F.cross_entropy(logits, target, reduction="none")
        p = torch.softmax(logits, dim=1)
        p_t = p.gather(1, target[:, None])
        p_j = torch.where(p < p_t, p, torch.zeros_like(p)).amax(1)
        base = -torch.expm1(log_pt) + p_j
        return reduce_loss(_focal_term(log_pt, self.gamma, base=base), self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
