"""Padded all-gather on ``torch.distributed`` (imports torch: only torch modules import it).

Shared by :mod:`calkit.distributed` (exact-mode pairs) and the training losses
(validation confidences), which both gather per-rank tensors whose lengths
differ between ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def comm_device(group=None) -> torch.device:
    """Where tensors must be for the group's backend (CUDA for NCCL, else CPU)."""
    if torch.distributed.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_ragged(tensors: Sequence[Tensor], group=None) -> list[Tensor]:
    """All ranks' ``tensors`` concatenated in rank order along their last dimension.

    Collective: every rank of ``group`` must call it with the same number of
    tensors, of the same dtypes and leading shapes, all on :func:`comm_device`.
    The last dimension (the same for all of one rank's tensors) may differ
    between ranks: the lengths are gathered first, every tensor is zero-padded
    to the longest, gathered, and trimmed back.
    """
    dist = torch.distributed
    world = dist.get_world_size(group)
    n = tensors[0].shape[-1]
    device = tensors[0].device
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([n], device=device), group=group)
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)
    gathered = []
    for local in tensors:
        padded = local.new_zeros((*local.shape[:-1], longest))
        padded[..., :n] = local
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded, group=group)
        gathered.append(torch.cat([p[..., :m] for p, m in zip(parts, sizes, strict=True)],
                                  dim=-1))
    return gathered
