"""The few array operations calkit needs, on numpy arrays and on torch tensors.

Everything numerical goes through these functions so that numpy and torch inputs
follow one code path.  torch is never imported here: a tensor can only reach
calkit if the caller has already imported torch, so we look it up in
``sys.modules``.  Torch inputs stay on their device; accumulation is float64.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor


def torch_module():
    """Return the already-imported torch module, or None."""
    return sys.modules.get("torch")


def is_torch(x: object) -> bool:
    """True if ``x`` is a torch tensor (without importing torch)."""
    torch = torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def import_torch():
    """Import torch, with a clear error when the optional extra is missing."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - only without torch
        raise ImportError(
            "this calkit feature needs PyTorch: pip install 'calkit[torch]'"
        ) from exc
    return torch


def as_float64(x: Array) -> Array:
    """``x`` as float64, on its own device for torch."""
    if is_torch(x):
        return x.to(torch_module().float64)
    return np.asarray(x, dtype=np.float64)


def like(values: Array, ref: Array, dtype: str = "float64") -> Array:
    """``values`` as an array of the kind (numpy or torch, same device) of ``ref``."""
    if is_torch(ref):
        torch = torch_module()
        if not is_torch(values):
            values = np.asarray(values)
        return torch.as_tensor(values, dtype=getattr(torch, dtype), device=ref.device)
    return np.asarray(values, dtype=dtype)


def to_numpy(x: Array) -> np.ndarray:
    """A host numpy array holding ``x`` (bfloat16 tensors, which numpy lacks, as float32)."""
    if is_torch(x):
        x = x.detach().cpu()
        if x.dtype == torch_module().bfloat16:
            x = x.float()  # exact: every bfloat16 is a float32
        return x.numpy()
    return np.asarray(x)


def searchsorted(sorted_seq: Array, values: Array, right: bool) -> Array:
    """Insertion indices, ``side="right"`` when ``right`` else ``"left"``."""
    if is_torch(values) or is_torch(sorted_seq):
        return torch_module().searchsorted(sorted_seq, values, right=right)
    return np.searchsorted(sorted_seq, values, side="right" if right else "left")


def bin_sum(index: Array, n_bins: int, weights: Array | None = None) -> Array:
    """Per-bin sum of ``weights`` (int64 counts when ``weights`` is None).

    Weighted sums are float64.  On torch this uses ``index_add_``, which, unlike
    ``torch.bincount`` on CUDA, needs no host synchronisation.
    """
    if is_torch(index):
        torch = torch_module()
        if weights is None:
            out = torch.zeros(n_bins, dtype=torch.int64, device=index.device)
            return out.index_add_(0, index, torch.ones_like(index))
        out = torch.zeros(n_bins, dtype=torch.float64, device=index.device)
        return out.index_add_(0, index, weights.to(torch.float64))
    if weights is None:
        return np.bincount(index, minlength=n_bins)
    return np.bincount(index, weights=weights, minlength=n_bins)


def cumsum0(x: Array) -> Array:
    """float64 cumulative sum with a leading zero: ``out[i] = sum(x[:i])``."""
    if is_torch(x):
        torch = torch_module()
        c = torch.cumsum(x, 0, dtype=torch.float64)
        return torch.cat([c.new_zeros(1), c])
    out = np.empty(len(x) + 1, dtype=np.float64)
    out[0] = 0.0
    np.cumsum(x, dtype=np.float64, out=out[1:])
    return out


def abs_(x: Array) -> Array:
    return x.abs() if is_torch(x) else np.abs(x)


def sqrt(x: Array) -> Array:
    return x.sqrt() if is_torch(x) else np.sqrt(x)


def where(cond: Array, a: Array, b: float) -> Array:
    """``a`` where ``cond`` holds, else the scalar ``b``."""
    if is_torch(cond):
        return torch_module().where(cond, a, b)
    return np.where(cond, a, b)


def scalar(x: Array) -> Any:
    """A Python float for numpy; a 0-d tensor on the same device for torch."""
    if is_torch(x):
        return x.reshape(())
    return float(x)


def argsort_(x: Array) -> Array:
    """Stable argsort of a 1-D array (numpy or torch, on its device)."""
    if is_torch(x):
        return x.argsort(stable=True)
    return np.argsort(x, kind="stable")
