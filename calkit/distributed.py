"""Distributed evaluation on ``torch.distributed``: all-reduce of the accumulator state.

Every rank feeds its shard of the predictions to a
:class:`~calkit.stream.CalibrationAccumulator`; :func:`all_reduce_accumulator`
then sums the fixed-size bin tables and score sums over the ranks (one
``all_reduce`` per state array: ``O(n_bins x n_classes)`` bytes on the wire,
however many samples there are).  Only exact mode moves per-sample data: the
compact (float32 confidence, bool correct) pairs are all-gathered, 5 bytes per
sample instead of the ``(N, K)`` probability matrices that list-state metrics
gather.

:class:`CalibrationMetric` is the thin ``torch.nn.Module`` around it, in the
style of torchmetrics: ``update`` per batch, ``compute`` (synchronised when the
process group is initialised), ``reset``.

Samples duplicated by a ``DistributedSampler`` that pads the last shard are
counted twice, as in every gather-based metric: evaluate with shards that
partition the data.
"""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._array import import_torch
from calkit._gather import all_gather_ragged, comm_device
from calkit._stream_state import zero_arrays
from calkit.logits import softmax
from calkit.stream import CalibrationAccumulator

torch = import_torch()

__all__ = ["CalibrationMetric", "all_reduce_accumulator"]


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def all_reduce_accumulator(acc: CalibrationAccumulator, group=None) -> CalibrationAccumulator:
    """An accumulator holding the samples of all ranks of ``group``.

    Collective: every rank of the group must call it.  Returns a new
    accumulator (``acc`` is left unchanged); without an initialised process
    group it returns a copy of ``acc``.  Ranks that saw no samples take part
    with an empty state.  The state arrays come back on the device (or as the
    numpy arrays) of this rank's state.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.stream import CalibrationAccumulator
    >>> from calkit.distributed import all_reduce_accumulator
    >>> acc = CalibrationAccumulator().update([0, 1], np.array([[0.8, 0.2], [0.3, 0.7]]))
    >>> all_reduce_accumulator(acc).n_samples     # no process group: a copy
    2
    """
    if not isinstance(acc, CalibrationAccumulator):
        raise TypeError(f"expected a CalibrationAccumulator, got {type(acc).__name__}")
    if not _dist_ready():
        return acc.copy()
    dist = torch.distributed
    world = dist.get_world_size(group)
    state = acc.state_dict()
    metas = [None] * world
    dist.all_gather_object(metas, (state["settings"], state["n_classes"], state["binary"],
                                   state["nll_eps"]), group=group)
    n_classes, binary, nll_eps = _agreed_meta(metas, state["settings"])
    out = CalibrationAccumulator(**acc._constructor_args())
    if n_classes is None:  # no rank saw a sample
        return out
    device = comm_device(group)
    local = state["arrays"]
    if local is None:  # this rank saw no samples: it adds zeros
        local = zero_arrays(acc.n_bins, n_classes, acc.classwise)
    ref = next(iter(state["arrays"].values())) if state["arrays"] is not None else None
    arrays = {}
    for key in sorted(local):
        t = torch.as_tensor(xp.to_numpy(local[key]) if not xp.is_torch(local[key])
                            else local[key]).to(device).contiguous().clone()
        dist.all_reduce(t, group=group)
        arrays[key] = _back(t, ref)
    pairs = _gather_pairs(acc, group, device, ref) if acc.exact else []
    return out.load_state_dict(dict(settings=state["settings"], n_classes=n_classes,
                                    binary=binary, nll_eps=nll_eps, arrays=arrays,
                                    pairs=pairs))


def _agreed_meta(metas: list, settings: dict):
    seen = [(k, b, e) for s, k, b, e in metas if k is not None]
    for s, *_ in metas:
        if s != settings:
            raise ValueError(f"ranks hold accumulators with different settings: {s} and "
                             f"{settings}")
    if not seen:
        return None, None, None
    if len({(k, b) for k, b, _ in seen}) > 1:
        raise ValueError(f"ranks saw different numbers of classes: "
                         f"{sorted({k for k, _, _ in seen})}")
    return seen[0]


def _back(t, ref):
    """A reduced tensor back to the kind and device of this rank's state."""
    if ref is None or not xp.is_torch(ref):
        return t.cpu().numpy()
    return t.to(ref.device)


def _gather_pairs(acc: CalibrationAccumulator, group, device, ref) -> list:
    """All ranks' (confidence, correct) pairs, in rank order (padded all_gather)."""
    dtype = getattr(torch, acc.pair_dtype)
    if acc.n_samples:
        scores, targets = acc.pairs()
        scores = torch.as_tensor(scores).to(device, dtype)
        targets = torch.as_tensor(targets).to(device, torch.uint8)
    else:
        scores = torch.zeros(0, dtype=dtype, device=device)
        targets = torch.zeros(0, dtype=torch.uint8, device=device)
    s, t = all_gather_ragged([scores, targets], group)
    t = t.bool()
    return [(_back(s, ref), _back(t, ref))]


class CalibrationMetric(torch.nn.Module):
    """torchmetrics-style module: ``update`` per batch, ``compute`` synchronised over ranks.

    Parameters
    ----------
    n_bins : int, default=15
        Passed to :class:`~calkit.stream.CalibrationAccumulator`, as are the
        other keyword arguments (``closed``, ``edges``, ``classwise``, ``exact``...).
    from_logits : bool, default=False
        Whether ``update`` receives logits (softmax is applied per batch).
    sync : bool, default=True
        All-reduce the state in :meth:`compute` when ``torch.distributed`` is
        initialised.
    process_group : optional
        The group to reduce over (default: the world).

    Examples
    --------
    >>> import torch
    >>> from calkit.distributed import CalibrationMetric
    >>> metric = CalibrationMetric(n_bins=10, from_logits=True)
    >>> metric.update(torch.tensor([0, 1, 1]), torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    >>> out = metric.compute()
    >>> out["n_samples"], round(float(out["accuracy"]), 4)
    (3, 0.6667)
    """

    def __init__(self, n_bins: int = 15, *, from_logits: bool = False, sync: bool = True,
                 process_group=None, **accumulator_kwargs) -> None:
        super().__init__()
        for flag, value in (("from_logits", from_logits), ("sync", sync)):
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        self.accumulator = CalibrationAccumulator(n_bins, **accumulator_kwargs)
        self.from_logits = bool(from_logits)
        self.sync = bool(sync)
        self.process_group = process_group

    @torch.no_grad()
    def update(self, y_true, y_pred) -> None:
        """Add a batch of labels and probabilities (or logits with ``from_logits=True``)."""
        y_pred = y_pred.detach() if xp.is_torch(y_pred) else y_pred
        if self.from_logits:
            y_pred = softmax(y_pred)
        self.accumulator.update(y_true, y_pred)

    def forward(self, y_true, y_pred) -> None:
        """Same as :meth:`update`."""
        self.update(y_true, y_pred)

    def compute(self) -> dict:
        """Metrics of all samples seen (on all ranks when synchronised)."""
        acc = self.accumulator
        if self.sync and _dist_ready():
            acc = all_reduce_accumulator(acc, self.process_group)
        return acc.compute()

    def reset(self) -> None:
        """Forget all samples."""
        self.accumulator.reset()
