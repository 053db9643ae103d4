"""The state of a :class:`~calkit.stream.CalibrationAccumulator`, and its validation.

A state is plain data (so it can be saved, sent between processes and added):

``arrays``
    ``count``, ``sum_score``, ``sum_target`` (the top-label bin table, one entry
    per bin), ``cw_count``, ``cw_sum_score``, ``cw_sum_target`` (one table per
    class, shape ``(n_classes, n_bins)``, with ``classwise=True``), ``brier`` and
    ``nll`` (0-d sums over the samples); counts int64, sums float64; numpy
    arrays, or tensors on one device.
``pairs``
    Exact mode: the list of ``(confidence, correct)`` chunks, one per batch
    (confidences float32 or float64 by ``pair_dtype``, ``correct`` bool).

:func:`check_state` turns a state from anywhere (a file, another process, a
user) into an independent, validated copy, or raises a ``ValueError`` that names
the entry and the problem: shapes that do not match the settings, negative or
fractional counts, sums that are not finite or not within ``[0, count]``, bins
and classes that disagree about the number of samples, pairs of the wrong
length or dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np

from calkit import _array as xp
from calkit._array import Array

#: state arrays: top-label table, class-wise tables, proper-score sums
TABLE_KEYS = ("count", "sum_score", "sum_target")
CLASSWISE_KEYS = ("cw_count", "cw_sum_score", "cw_sum_target")
SCORE_KEYS = ("brier", "nll")
STATE_KEYS = ("settings", "n_classes", "binary", "nll_eps", "arrays", "pairs")
_COUNT_KEYS = ("count", "cw_count")
#: slack on sums of scores: probabilities pass validation up to 1 + sum_tol
_DEFAULT_SLACK = 1e-2


def array_shapes(n_bins: int, n_classes: int, classwise: bool) -> dict[str, tuple[int, ...]]:
    """The shape of every state array for these settings."""
    shapes = {key: (n_bins,) for key in TABLE_KEYS}
    if classwise:
        shapes.update({key: (n_classes, n_bins) for key in CLASSWISE_KEYS})
    shapes.update({key: () for key in SCORE_KEYS})
    return shapes


def zero_arrays(n_bins: int, n_classes: int, classwise: bool) -> dict[str, np.ndarray]:
    """The state arrays of no samples (numpy)."""
    return {key: np.zeros(shape, np.int64 if key in _COUNT_KEYS else np.float64)
            for key, shape in array_shapes(n_bins, n_classes, classwise).items()}


def copy_array(a: Array) -> Array:
    """An independent copy (same kind, device and dtype)."""
    return a.detach().clone() if xp.is_torch(a) else np.array(a, copy=True)


def as_kind(value: Array, ref: Array) -> Array:
    """``value`` as the kind (numpy, or torch on ``ref``'s device) of ``ref``, dtype kept."""
    if xp.is_torch(ref):
        torch = xp.torch_module()
        return torch.as_tensor(value if xp.is_torch(value) else np.asarray(value),
                               device=ref.device)
    return xp.to_numpy(value)


def added(total: dict | None, batch: dict) -> dict:
    """A new dict of the sums ``total + batch`` (``total`` untouched; None: a copy of ``batch``)."""
    if total is None:
        return {key: copy_array(value) for key, value in batch.items()}
    return {key: value + as_kind(batch[key], value) for key, value in total.items()}


def make_pair(confidence: Array, correct: Array, pair_dtype: str) -> tuple[Array, Array]:
    """One batch's exact-mode chunk: confidences as ``pair_dtype``, ``correct`` as given (bool)."""
    if xp.is_torch(confidence):
        return confidence.to(getattr(xp.torch_module(), pair_dtype)), correct
    return confidence.astype(pair_dtype), correct


def concatenate_pairs(chunks: list) -> tuple[Array, Array]:
    """All ``(confidence, correct)`` chunks joined, as the kind of the first chunk."""
    scores, targets = zip(*chunks, strict=True)
    scores = [as_kind(s, scores[0]) for s in scores]
    targets = [as_kind(t, targets[0]) for t in targets]
    if xp.is_torch(scores[0]):
        torch = xp.torch_module()
        return torch.cat(scores), torch.cat(targets)
    return np.concatenate(scores), np.concatenate(targets)


# ---------------------------------------------------------------------- validation
def check_state(state, settings: dict, sum_tol: float | None = None) -> dict:
    """A validated, independent copy of ``state`` (from ``CalibrationAccumulator.state_dict``).

    ``settings`` are the accumulator's (they must equal the state's);
    ``sum_tol`` its tolerance on row sums, which bounds how far above ``count``
    a sum of confidences may lie.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict from CalibrationAccumulator.state_dict(), got "
                        f"{type(state).__name__}")
    missing = [k for k in STATE_KEYS if k not in state]
    unknown = sorted(str(k) for k in state if k not in STATE_KEYS)
    if missing or unknown:
        raise ValueError(f"state must have exactly the keys {list(STATE_KEYS)}; missing "
                         f"{missing}, unknown {unknown}")
    if state["settings"] != settings:
        raise ValueError(f"state was made with settings {state['settings']}, this "
                         f"accumulator has {settings}")
    nll_eps = state["nll_eps"]
    if nll_eps is not None:
        if isinstance(nll_eps, bool) or not isinstance(nll_eps, Real) \
                or not 0 < float(nll_eps) < 1:
            raise ValueError(f"state['nll_eps'] must be None or a number in (0, 1), got "
                             f"{nll_eps!r}")
        nll_eps = float(nll_eps)
    arrays, pairs = state["arrays"], state["pairs"]
    if not isinstance(pairs, list | tuple):
        raise ValueError(f"state['pairs'] must be a list of (confidence, correct) pairs, got "
                         f"{type(pairs).__name__}")
    if arrays is None:
        if state["n_classes"] is not None or state["binary"] is not None or len(pairs):
            raise ValueError("a state without arrays (no samples) must have n_classes=None, "
                             "binary=None and no pairs")
        return dict(settings=dict(settings), n_classes=None, binary=None, nll_eps=nll_eps,
                    arrays=None, pairs=[])
    n_classes, binary = _check_classes(state["n_classes"], state["binary"])
    if nll_eps is None:
        raise ValueError("state['nll_eps'] must be a number when the state holds samples")
    out_arrays, n = _check_arrays(arrays, settings, n_classes, binary, nll_eps, sum_tol)
    out_pairs = _check_pairs(pairs, settings, n)
    return dict(settings=dict(settings), n_classes=n_classes, binary=binary,
                nll_eps=nll_eps, arrays=out_arrays, pairs=out_pairs)


def _check_classes(n_classes, binary) -> tuple[int, bool]:
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(f"state['n_classes'] must be an integer >= 2, got {n_classes!r}")
    if not isinstance(binary, bool | np.bool_):
        raise ValueError(f"state['binary'] must be True or False, got {binary!r}")
    if binary and n_classes != 2:
        raise ValueError(f"state['binary'] is True (1-D binary probabilities) but "
                         f"state['n_classes'] is {n_classes}, not 2")
    return int(n_classes), bool(binary)


def _check_arrays(arrays, settings: dict, n_classes: int, binary: bool, nll_eps: float,
                  sum_tol: float | None) -> tuple[dict, int]:
    """Validated copies of the state arrays, and the number of samples they hold."""
    if not isinstance(arrays, Mapping):
        raise ValueError(f"state['arrays'] must be a dict of arrays or None, got "
                         f"{type(arrays).__name__}")
    shapes = array_shapes(settings["n_bins"], n_classes, settings["classwise"])
    if set(arrays) != set(shapes):
        raise ValueError(f"state['arrays'] must have the keys {sorted(shapes)} for these "
                         f"settings, got {sorted(map(str, arrays))}")
    torch_arrays = [xp.is_torch(v) for v in arrays.values()]
    if any(torch_arrays) and not all(torch_arrays):
        raise ValueError("state['arrays'] mixes numpy arrays and torch tensors")
    devices = {str(v.device) for v in arrays.values() if xp.is_torch(v)}
    if len(devices) > 1:
        raise ValueError(f"state['arrays'] are on several devices: {sorted(devices)}")
    host = {key: _host_array(arrays[key], key, shape) for key, shape in shapes.items()}
    count = host["count"]
    n = int(count.sum())
    if n == 0:
        raise ValueError("state['arrays'] hold no samples (all counts are 0); an empty state "
                         "has arrays=None")
    slack = 1 + (_DEFAULT_SLACK if sum_tol is None else max(float(sum_tol), _DEFAULT_SLACK))
    _check_table(host, "", count, slack)
    if settings["classwise"]:
        _check_table(host, "cw_", host["cw_count"], slack)
        per_class = host["cw_count"].sum(axis=1)
        if (per_class != n).any():
            raise ValueError(f"state['arrays']['cw_count'] must count all {n} samples in every "
                             f"class's table, got {sorted(set(per_class.tolist()))}")
        positives = float(host["cw_sum_target"].sum())
        if positives != n:
            raise ValueError(f"state['arrays']['cw_sum_target'] must add up to one true class "
                             f"per sample ({n}), got {positives:g}")
    brier, nll = float(host["brier"]), float(host["nll"])
    if not 0 <= brier <= 2 * slack * slack * n:
        raise ValueError(f"state['arrays']['brier'] must lie in [0, {2 * n}] (a sum of {n} "
                         f"Brier scores), got {brier!r}")
    worst = -math.log(nll_eps)
    if not -n * math.log(slack) <= nll <= n * worst * (1 + 1e-9):
        raise ValueError(f"state['arrays']['nll'] must lie in [0, {n} * {worst:.4g}] (a sum "
                         f"of {n} clipped log-losses), got {nll!r}")
    out = {}
    for key, value in host.items():
        dtype = np.int64 if key in _COUNT_KEYS else np.float64
        converted = value.astype(dtype)
        out[key] = xp.torch_module().as_tensor(converted, device=next(iter(devices))) \
            if devices else converted
    return out, n


def _host_array(value, key: str, shape: tuple) -> np.ndarray:
    """A host copy of one state array, its shape and dtype checked."""
    name = f"state['arrays'][{key!r}]"
    if xp.is_torch(value):
        if value.is_complex() or value.dtype == xp.torch_module().bool:
            raise ValueError(f"{name} must hold real numbers, got {value.dtype}")
        arr = value.detach().cpu().double().numpy() if value.is_floating_point() \
            else value.detach().cpu().numpy()
    elif isinstance(value, np.ndarray | np.generic | Real) and not isinstance(value, bool):
        arr = np.asarray(value)
    else:
        raise ValueError(f"{name} must be a numpy array or a torch tensor, got "
                         f"{type(value).__name__}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} for these settings, got "
                         f"{arr.shape}")
    arr = np.array(arr, dtype=np.float64 if arr.dtype.kind == "f" else np.int64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if key in _COUNT_KEYS:
        if (arr < 0).any() or (arr != np.round(arr)).any():
            raise ValueError(f"{name} must hold non-negative integer counts")
        if arr.dtype.kind == "f" and np.abs(arr).max() > 2.0 ** 53:
            raise ValueError(f"{name} holds counts too large to be exact")
        arr = arr.astype(np.int64)
    return arr


def _check_table(host: dict, prefix: str, count: np.ndarray, slack: float) -> None:
    """Per bin: ``0 <= sum_target <= count`` (an integer) and ``0 <= sum_score <= count``."""
    for key, limit in (("sum_score", slack), ("sum_target", 1.0)):
        name = f"state['arrays'][{prefix + key!r}]"
        value = host[prefix + key]
        if (value < 0).any() or (value > count * limit).any():
            raise ValueError(f"{name} must lie in [0, count] in every bin (a sum of values in "
                             "[0, 1] over the bin's samples)")
    if (host[prefix + "sum_target"] != np.round(host[prefix + "sum_target"])).any():
        raise ValueError(f"state['arrays'][{prefix + 'sum_target'!r}] must hold whole numbers "
                         "(counts of correct predictions)")


def _check_pairs(pairs, settings: dict, n: int) -> list:
    """Validated copies of the exact-mode pairs (``n`` samples in all)."""
    if not settings["exact"]:
        if len(pairs):
            raise ValueError("state['pairs'] must be empty without exact=True")
        return []
    torch = xp.torch_module()
    out, total = [], 0
    for i, pair in enumerate(pairs):
        name = f"state['pairs'][{i}]"
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{name} must be a (confidence, correct) pair")
        conf, correct = pair
        kinds = {xp.is_torch(conf), xp.is_torch(correct)}
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes a numpy array and a torch tensor")
        if not all(xp.is_torch(a) or isinstance(a, np.ndarray) for a in pair):
            raise ValueError(f"{name} must hold numpy arrays or torch tensors")
        if conf.ndim != 1 or tuple(correct.shape) != tuple(conf.shape):
            raise ValueError(f"{name} must be two 1-D arrays of one length, got shapes "
                             f"{tuple(conf.shape)} and {tuple(correct.shape)}")
        if str(conf.dtype).replace("torch.", "") != settings["pair_dtype"]:
            raise ValueError(f"{name}: confidences must be {settings['pair_dtype']} "
                             f"(pair_dtype), got {conf.dtype}")
        if str(correct.dtype).replace("torch.", "") != "bool":
            raise ValueError(f"{name}: correct must be bool, got {correct.dtype}")
        if conf.shape[0]:
            finite = bool(torch.isfinite(conf).all()) if xp.is_torch(conf) \
                else bool(np.isfinite(conf).all())
            if not finite or float(conf.min()) < 0 or float(conf.max()) > 1 + _DEFAULT_SLACK:
                raise ValueError(f"{name}: confidences must be finite and in [0, 1]")
        total += int(conf.shape[0])
        out.append((copy_array(conf), copy_array(correct)))
    if total != n:
        raise ValueError(f"state['pairs'] hold {total} samples but the bin counts hold {n}")
    return out
