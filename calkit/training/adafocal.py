"""AdaFocal (Ghosh, Schaaf & Gormley, NeurIPS 2022) and its non-adaptive ablation CalFocal.

Both losses give each training sample the gamma of the validation bin its
true-class probability ``p_t`` falls in (bins, slots and the distributed gather:
:mod:`calkit.training._binned_gamma`) and update the per-bin gammas from the
validation calibration gap ``E_b = C_val,b - A_val,b`` (positive: over-confident):

* :class:`AdaFocalLoss` (Algorithm 1, Eq. 5): ``gamma_b <- gamma_b * exp(lam * E_b)``
  in focal bins (capped at ``gamma_max``), ``gamma_b <- gamma_b * exp(-lam * E_b)`` in
  inverse-focal bins (``gamma_b < 0``, floored at ``gamma_min``), and a bin whose
  ``|gamma_b|`` falls below ``switch_threshold`` switches to ``-/+switch_threshold``.
* :class:`CalFocalLoss` (Eq. 3): ``gamma_b = exp(lam * E_b)``, no memory.

Training loop::

    loss_fn = AdaFocalLoss().to(device)
    for epoch in range(n_epochs):
        for x, y in train_loader:
            loss_fn(model(x), y).backward(); ...
        model.eval()
        with torch.no_grad():
            loss_fn.update(model(x_val), y_val)   # new bins and gammas for the next epoch
        model.train()
"""

from __future__ import annotations

import math

from torch import Tensor

from calkit.training._binned_gamma import BinnedGammaLoss
from calkit.training.focal import Reduction, check_gamma

__all__ = ["AdaFocalLoss", "CalFocalLoss"]


class AdaFocalLoss(BinnedGammaLoss):
    """Calibration-aware adaptive focal loss (AdaFocal).

    Before the first :meth:`update` the bins are ``n_bins`` equal-width bins,
    all with ``gamma_init``.  Each :meth:`update` recomputes ``n_bins``
    equal-mass bins on the validation top-label confidences and applies
    Algorithm 1 of the paper to every non-empty bin; empty bins (collapsed by
    ties, or more bins than validation samples) keep their gamma.

    Parameters
    ----------
    n_bins : int, default=15
    lam : float, default=1.0
        Update rate lambda (``>= 0``).
    gamma_init : float, default=1.0
        Initial gamma of every bin, in ``[gamma_min, gamma_max]``.
    gamma_max : float, default=20.0
        Cap of focal gammas (``>= switch_threshold``).
    gamma_min : float, default=-2.0
        Floor of inverse-focal gammas (``<= -switch_threshold``).
    switch_threshold : float, default=0.2
        ``S_th``: a focal bin whose gamma falls below it becomes inverse focal
        with ``-S_th``, and back.
    reduction : {"mean", "sum", "none"}, default="mean"
        The reference code sums over the batch.

    Attributes
    ----------
    edges : Tensor (n_bins + 1,), gammas : Tensor (n_bins,), num_updates : Tensor
        The state (buffers, saved by ``state_dict``).
    history : list of dict
        One record per update (``epoch``, ``edges``, ``E_b``, ``gamma_b``,
        ``count``), for :class:`calkit.plotting.gamma.GammaDynamicsDisplay`.

    Examples
    --------
    >>> import torch
    >>> from calkit.training import AdaFocalLoss
    >>> loss_fn = AdaFocalLoss(n_bins=3)
    >>> logits, target = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    >>> loss_fn(logits, target).shape
    torch.Size([])
    >>> val_logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.5, 0.0],
    ...                            [4.0, 0.0], [0.0, 0.2]])
    >>> record = loss_fn.update(val_logits, torch.tensor([0, 1, 1, 0, 0, 0]))
    >>> len(record["gamma_b"]), int(loss_fn.num_updates)
    (3, 1)
    """

    def __init__(self, n_bins: int = 15, lam: float = 1.0, gamma_init: float = 1.0,
                 gamma_max: float = 20.0, gamma_min: float = -2.0,
                 switch_threshold: float = 0.2, reduction: Reduction = "mean"):
        lam = check_gamma(lam, "lam")
        switch_threshold = check_gamma(switch_threshold, "switch_threshold")
        gamma_max = check_gamma(gamma_max, "gamma_max")
        gamma_min = check_gamma(gamma_min, "gamma_min", nonnegative=False)
        gamma_init = check_gamma(gamma_init, "gamma_init", nonnegative=False)
        if gamma_max < switch_threshold:
            raise ValueError(f"gamma_max ({gamma_max}) must be >= switch_threshold "
                             f"({switch_threshold})")
        if gamma_min > -switch_threshold:
            raise ValueError(f"gamma_min ({gamma_min}) must be <= -switch_threshold "
                             f"({-switch_threshold})")
        if not gamma_min <= gamma_init <= gamma_max:
            raise ValueError(f"gamma_init ({gamma_init}) must lie in [gamma_min, gamma_max] = "
                             f"[{gamma_min}, {gamma_max}]")
        super().__init__(n_bins, gamma_init, reduction)
        self.lam, self.switch_threshold = lam, switch_threshold
        self.gamma_max, self.gamma_min = gamma_max, gamma_min

    def _new_gammas(self, gammas: Tensor, gaps: Tensor) -> Tensor:
        focal = gammas >= 0
        s = self.switch_threshold
        up = (gammas * (self.lam * gaps).exp()).clamp(max=self.gamma_max)
        down = (gammas * (-self.lam * gaps).exp()).clamp(min=self.gamma_min)
        new = up.where(focal, down)
        switched = new.new_full(new.shape, -s).where(focal, new.new_full(new.shape, s))
        return switched.where(new.abs() < s, new)

    def gamma_bounds(self) -> tuple[float, float]:
        """``[gamma_min, gamma_max]``: updates clamp the gammas to it."""
        return self.gamma_min, self.gamma_max

    def extra_repr(self) -> str:
        return (f"n_bins={self.n_bins}, lam={self.lam}, gamma_init={self.gamma_init}, "
                f"gamma_max={self.gamma_max}, gamma_min={self.gamma_min}, "
                f"switch_threshold={self.switch_threshold}, reduction={self.reduction!r}")


class CalFocalLoss(BinnedGammaLoss):
    """CalFocal (AdaFocal paper Eq. 3): ``gamma_b = exp(lam * E_b)``, the non-adaptive ablation.

    Same bins as :class:`AdaFocalLoss`, but each update sets a bin's gamma
    from its current gap only (``gamma_b -> 1`` as ``E_b -> 0``); empty bins keep
    their gamma.  Starts from equal-width bins with gamma 1 (``exp(0)``).

    Parameters
    ----------
    n_bins : int, default=15
    lam : float, default=10.0
        Scale of the gap (the paper shows 10 and 100).
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import math, torch
    >>> from calkit.training import CalFocalLoss
    >>> loss_fn = CalFocalLoss(n_bins=1, lam=10.0)
    >>> val_logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    >>> record = loss_fn.update(val_logits, torch.tensor([0, 1]))  # half right
    >>> confidence = 1 / (1 + math.exp(-2.0))
    >>> math.isclose(record["gamma_b"][0], math.exp(10 * (confidence - 0.5)))
    True
    """

    def __init__(self, n_bins: int = 15, lam: float = 10.0, reduction: Reduction = "mean"):
        lam = check_gamma(lam, "lam")
        super().__init__(n_bins, 1.0, reduction)
        self.lam = lam

    def _new_gammas(self, gammas: Tensor, gaps: Tensor) -> Tensor:
        return (self.lam * gaps).exp()

    def gamma_bounds(self) -> tuple[float, float]:
        """``[exp(-lam), exp(lam)]``: the gap ``E_b`` lies in ``[-1, 1]`` (and the start is 1)."""
        return math.exp(-self.lam), math.exp(self.lam) if self.lam < 709 else math.inf

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, lam={self.lam}, reduction={self.reduction!r}"
