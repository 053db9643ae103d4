"""Per-bin focal ``gamma`` driven by validation calibration gaps (AdaFocal, CalFocal).

The state is ``n_bins`` *slots*: bin edges ``edges`` (``n_bins + 1``, non-decreasing)
and one ``gamma`` per slot.  A training sample uses the gamma of the slot its
true-class probability ``p_t`` falls in, with the engine's ``closed="right"``
convention (bins ``(a, b]``, first bin ``[0, b]``; :func:`calkit.binning.assign_bins`).

:meth:`BinnedGammaLoss.update` bins the validation set's top-label confidences
into equal-mass bins with :func:`calkit.binning.bin_table` (on the tensors' device)
and gives each slot the gap ``E_b = C_val,b - A_val,b`` of its bin.  Equal-mass
bins never split a run of tied confidences, so when many confidences are exactly
1.0 (float32 saturation), or there are fewer validation samples than bins, fewer
than ``n_bins`` bins come back.  Slot ``k`` is the ``k``-th part of the
``np.array_split`` of the sorted confidences, and each bin goes to the slot of the
part holding its lowest-ranked sample; slots that get no bin are *empty*: their
edges collapse (zero width, so no training sample lands in them), ``E_b`` is NaN
and their gamma is left unchanged.  Validation and training samples thus follow
the same edges and the same convention (the reference code does not: it sends
training ``p_t = 1.0`` to the last, empty, bin).

Under ``torch.distributed`` the confidences of all ranks are gathered first, so
every rank computes the same bins and gammas from the global validation set.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from calkit._gather import all_gather_ragged, comm_device
from calkit._validation import check_labels, check_logits, check_n_bins, check_option
from calkit.binning import assign_bins, bin_table, uniform_edges
from calkit.training._focal_core import focal_loss, like_values, namespace
from calkit.training.focal import REDUCTIONS, Reduction, check_inputs


def top_label(val_logits: Tensor, val_labels: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence and 0/1 correctness (both float, on the logits' device).

    Half-precision logits are upcast to float32; float32 stays float32 (so a
    saturated softmax gives exactly 1.0, as the model reports it).
    """
    if not isinstance(val_logits, Tensor):
        raise TypeError("val_logits must be a torch tensor")
    z = check_logits(val_logits, "val_logits")
    y = check_labels(val_labels, z.shape[0], z.shape[1], like=z)
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    conf, pred = torch.softmax(z, dim=1).max(1)
    return conf, (pred == y).to(conf.dtype)


def gather_validation(conf: Tensor, correct: Tensor, group=None) -> tuple[Tensor, Tensor]:
    """All ranks' ``(conf, correct)`` concatenated in rank order (sizes may differ).

    The collective runs where the backend needs the tensors (CUDA for NCCL, else
    the CPU) and the result comes back to ``conf``'s device.
    """
    local = torch.stack([conf, correct]).to(comm_device(group))  # (2, n): one collective
    (both,) = all_gather_ragged([local], group)
    both = both.to(conf.device)
    return both[0], both[1]


def _use_distributed(distributed: bool | None, group) -> bool:
    if distributed is False:
        return False
    import torch.distributed as dist

    active = dist.is_available() and dist.is_initialized()
    if distributed and not active:
        raise ValueError("distributed=True but torch.distributed is not initialised")
    return active and dist.get_world_size(group) > 1


def bin_slots(count: Tensor, n_samples: int, n_bins: int) -> Tensor:
    """Slot of each equal-mass bin: the array_split part holding its lowest-ranked sample."""
    parts = min(n_bins, n_samples)
    k = torch.arange(parts, device=count.device)
    part_start = k * (n_samples // parts) + torch.clamp(k, max=n_samples % parts)
    bin_start = torch.cumsum(count, 0) - count
    return torch.searchsorted(part_start, bin_start, right=True) - 1


def slot_edges(edges: Tensor, slots: Tensor, n_bins: int) -> Tensor:
    """``n_bins + 1`` edges: bin ``j``'s edges at slot ``slots[j]``, empty slots collapsed."""
    k = torch.arange(n_bins + 1, device=slots.device)
    return edges[torch.searchsorted(slots, k, right=False)]


class BinnedGammaLoss(nn.Module):
    """Focal loss whose gamma is looked up per sample in validation bins (base class).

    Subclasses define :meth:`_new_gammas`, the update of the non-empty slots'
    gammas from their gaps.  Buffers ``edges`` (float64), ``gammas`` (float64)
    and ``num_updates`` (int64) are the state; ``history`` travels in the
    state dict as extra state.
    """

    def __init__(self, n_bins: int = 15, gamma_init: float = 1.0,
                 reduction: Reduction = "mean"):
        super().__init__()
        self.n_bins = check_n_bins(n_bins)
        self.gamma_init = float(gamma_init)
        self.reduction = check_option(reduction, "reduction", REDUCTIONS)
        self.register_buffer("edges", torch.as_tensor(uniform_edges(self.n_bins)))
        self.register_buffer("gammas", torch.full((self.n_bins,), self.gamma_init,
                                                  dtype=torch.float64))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))
        #: one mapping per update: ``epoch``, ``edges``, ``E_b``, ``gamma_b``, ``count``
        self.history: list[dict] = []

    # ------------------------------------------------------------------ training
    def bin_index(self, p_t):
        """Slot of each true-class probability (a tensor, or a numpy array on the CPU).

        No gradient and no host synchronisation.
        """
        if not isinstance(p_t, np.ndarray):
            p_t = p_t.detach()
        return assign_bins(p_t, like_values(self.edges, p_t), closed="right")

    def sample_gamma(self, p_t):
        """The gamma of each sample, from its slot (same kind of array as ``p_t``)."""
        return like_values(self.gammas, p_t)[self.bin_index(p_t)]

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` (N, C) or (N, C, d1, ...) against integer ``target``."""
        return focal_loss(*check_inputs(logits, target), self._gamma, self.reduction)

    def _gamma(self, ce):
        """Each sample's gamma: that of the slot its ``p_t = exp(-ce)`` falls in."""
        return self.sample_gamma(namespace(ce).exp(-ce))

    # ------------------------------------------------------------------ update
    @torch.no_grad()
    def update(self, val_logits: Tensor, val_labels: Tensor, *, epoch: float | None = None,
               distributed: bool | None = None, group=None) -> dict:
        """Re-bin the validation set and update the gammas (call once per epoch).

        Parameters
        ----------
        val_logits : Tensor of shape (N, C)
            Validation logits of the current model (eval mode, no grad).
        val_labels : Tensor of shape (N,)
            Integer validation labels.
        epoch : float, optional
            x position recorded in :attr:`history` (default: the update count).
        distributed : bool, optional
            Gather the validation outputs of all ranks first.  Default: when
            ``torch.distributed`` is initialised with more than one process.
        group : ProcessGroup, optional
            The process group for the gather.

        Returns
        -------
        dict
            The new history record (``epoch``, ``edges``, ``E_b``, ``gamma_b``,
            ``count``; ``E_b`` is NaN for empty slots).
        """
        conf, correct = top_label(val_logits, val_labels)
        if _use_distributed(distributed, group):
            conf, correct = gather_validation(conf, correct, group)
        table = bin_table(conf, correct, n_bins=self.n_bins, strategy="quantile",
                          closed="right")
        device = self.gammas.device
        slots = bin_slots(table.count, table.n_samples, self.n_bins).to(device)
        gaps = table.gap.to(device=device, dtype=torch.float64)
        gammas = self.gammas.clone()
        gammas[slots] = self._new_gammas(gammas[slots], gaps)
        full_gaps = torch.full_like(gammas, math.nan)
        full_gaps[slots] = gaps
        counts = torch.zeros(self.n_bins, dtype=torch.int64, device=device)
        counts[slots] = table.count.to(device)
        self.edges.copy_(slot_edges(table.edges.to(device, torch.float64), slots, self.n_bins))
        self.gammas.copy_(gammas)
        self.num_updates += 1
        record = {"epoch": int(self.num_updates) if epoch is None else epoch,
                  "edges": self.edges.tolist(), "E_b": full_gaps.tolist(),
                  "gamma_b": self.gammas.tolist(), "count": counts.tolist()}
        self.history.append(record)
        return record

    def _new_gammas(self, gammas: Tensor, gaps: Tensor) -> Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    # ------------------------------------------------------------------ state
    def gamma_bounds(self) -> tuple[float, float]:
        """The interval every gamma of this loss lies in (override)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def get_extra_state(self) -> dict:
        return {"history": [dict(r) for r in self.history]}

    def set_extra_state(self, state: dict) -> None:
        self.history = [dict(r) for r in _checked_history(state)]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Check the buffers (all of them, before any is copied), then load as usual."""
        self._check_state({key[len(prefix):]: value for key, value in state_dict.items()
                          if key.startswith(prefix) and key[len(prefix):] in self._buffers})
        extra = prefix + "_extra_state"  # torch sets it after copying the buffers: check first
        if extra in state_dict:
            _checked_history(state_dict[extra])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _check_state(self, buffers: dict) -> None:
        """Raise ``ValueError`` unless ``buffers`` (some of ``edges``, ``gammas``,
        ``num_updates``) could be this loss's state.

        ``edges``: ``n_bins + 1`` finite values from 0 to 1, never decreasing
        (empty slots have equal edges); ``gammas``: ``n_bins`` finite values in
        :meth:`gamma_bounds`; ``num_updates``: a non-negative integer.
        :meth:`load_state_dict` runs it first, so a bad state changes nothing.
        """
        shapes = {"edges": (self.n_bins + 1,), "gammas": (self.n_bins,), "num_updates": ()}
        values = {}
        for name, value in buffers.items():
            if not isinstance(value, Tensor):
                raise ValueError(f"state {name!r} must be a tensor, got {type(value).__name__}")
            if tuple(value.shape) != shapes[name]:
                raise ValueError(f"state {name!r} must have shape {shapes[name]} (n_bins="
                                 f"{self.n_bins}), got {tuple(value.shape)}")
            floating = name != "num_updates"
            if value.is_complex() or value.dtype == torch.bool or (
                    value.is_floating_point() != floating):
                kind = "floating-point" if floating else "integer"
                raise ValueError(f"state {name!r} must be a {kind} tensor, got {value.dtype}")
            values[name] = value.detach().cpu().double()
        if "edges" in values:
            e = values["edges"]
            if not (bool(torch.isfinite(e).all()) and float(e[0]) == 0.0
                    and float(e[-1]) == 1.0 and bool((e[1:] >= e[:-1]).all())):
                raise ValueError(f"state 'edges' must rise from 0 to 1 and never decrease, got "
                                 f"{e.tolist()}")
        if "gammas" in values:
            g, (lo, hi) = values["gammas"], self.gamma_bounds()
            slack = 1e-12 * max(1.0, abs(lo), abs(hi))
            if not (bool(torch.isfinite(g).all()) and float(g.min()) >= lo - slack
                    and float(g.max()) <= hi + slack):
                raise ValueError(f"state 'gammas' must be finite and lie in [{lo:.6g}, "
                                 f"{hi:.6g}] for this loss, got {g.tolist()}")
        if "num_updates" in values and float(values["num_updates"]) < 0:
            raise ValueError(f"state 'num_updates' must be >= 0, got "
                             f"{int(values['num_updates'])}")


def _checked_history(state) -> list:
    """The ``history`` of an extra state ``{"history": [record dicts]}`` (ValueError if not)."""
    history = state.get("history", []) if isinstance(state, dict) else None
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ValueError("the extra state of a binned-gamma loss must be "
                         "{'history': [record dicts]}")
    return history
