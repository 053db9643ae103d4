"""Input validation, in one place.

Every public metric, calibrator and loss helper checks its inputs here and gets
back plain, validated arrays.  Errors are ``ValueError`` (or ``TypeError``)
messages that name the argument and the problem.

The row checks on an ``(N, K)`` probability matrix (finite, non-negative, rows
summing to one) are fused with the top-label extraction (argmax and maximum) in
a single cache-blocked pass, so validation costs little beyond the work the
metrics need anyway.

Rules for the whole API
-----------------------
arrays
    numpy arrays, anything ``numpy.asarray`` turns into a numeric array (lists,
    pandas ``Series``/``DataFrame``, including nullable pandas dtypes, whose
    missing values become NaN and are then refused), and torch tensors (kept on
    their device; ``requires_grad`` tensors are detached, sparse, meta and
    complex tensors are refused).
masked arrays
    ``numpy.ma`` arrays with masked entries are refused (``TypeError``): calkit
    would otherwise read the values under the mask.  Drop the masked rows first
    (``x.compressed()`` for 1-D data, or index every argument with the same
    row mask).  A masked array without masked entries is read as its data.
labels
    integers, booleans and integral floats; with ``classes=`` (metrics) any
    hashable labels, strings included, mapped to the column of ``y_prob`` they
    name.  Without ``classes=``, non-numeric labels are mapped to the sorted
    distinct labels (scikit-learn's ``classes_`` order) when there are exactly
    as many distinct labels as columns; otherwise the column order cannot be
    inferred and ``classes=`` is required.  NaN, infinite, complex,
    non-integral and out-of-range labels are refused, with the offending value
    printed as given (never a wrapped int64).
mixed kinds
    labels follow the kind of the probabilities: torch labels with numpy
    probabilities are read on the host, numpy labels with torch probabilities
    are moved to the tensor's device.
settings
    Python and numpy scalars alike (``np.int64(10)`` bins, ``np.float64`` tolerances);
    booleans are refused where a number is expected; option names are exact
    and lower case (``norm="L1"`` is refused with a hint, never read as another norm).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from calkit._array import Array, is_torch, to_numpy, torch_module
from calkit._bin_rules import BIN_RULES
from calkit._threads import share_work, worker_count

_ROW_BLOCK_BYTES = 1 << 19  # rows are processed in blocks of about 512 KiB (well inside L2)
_THREADED_BYTES = 8 << 20  # matrices from 8 MiB on are summarised by several threads
#: hard upper bound on a number of bins (edges and tables are allocated per bin)
MAX_BINS = 1_000_000


def default_sum_tol(dtype) -> float:
    """Tolerance on ``|row sum - 1|``: 1e-4, or 1e-2 for 16-bit floats."""
    return 1e-2 if dtype.itemsize <= 2 else 1e-4


def _scalar(value):
    """A 0-d numpy array as its scalar (so ``np.array(10)`` counts like ``10``)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def check_int(value, name: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """A Python or numpy integer (not a bool) in ``[minimum, maximum]``, as ``int``."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_n_bins(n_bins, n_samples: int | None = None, name: str = "n_bins") -> int:
    """A positive integer number of bins, at most :data:`MAX_BINS` and ``n_samples``."""
    n_bins = _scalar(n_bins)
    if isinstance(n_bins, str):
        raise ValueError(_rule_refused(n_bins, name))
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_bins!r}")
    if n_bins > MAX_BINS:
        raise ValueError(f"{name}={n_bins} is too large: at most {MAX_BINS:,} bins")
    if n_samples is not None and n_samples < n_bins:
        raise ValueError(
            f"{name}={n_bins} is more than the number of samples ({n_samples}); "
            f"use fewer bins"
        )
    return int(n_bins)


def _rule_refused(rule: str, name: str) -> str:
    """Why a bin-count rule name is refused where the bins are fixed before the data."""
    if rule == "sweep":
        return (f"{name}='sweep' (the monotone sweep of Roelofs et al.) chooses the bins from "
                "the targets and is taken by calibration_error, ece, debiased_ece and "
                "calkit.sweep_ece; here give a positive integer")
    if rule in BIN_RULES:
        return (f"{name} must be a positive integer here, got {rule!r} (bin-count rules are "
                "taken by calibration_error, ece, debiased_ece, signed_ece, "
                "brier_decomposition, convention_error, sce/ace/tace, report.summarize and "
                "the diagrams, where the samples are known; here give a number, e.g. "
                f"calkit.binning.resolve_n_bins({rule!r}, n_samples)[0])")
    return (f"{name} must be a positive integer, got {rule!r} (rule names, where the "
            f"samples are known: {sorted(BIN_RULES)})")


def check_option(value, name: str, allowed) -> str:
    """``value`` if it is one of ``allowed`` (exact match), else a ValueError naming ``name``."""
    try:
        ok = value in allowed
    except TypeError:  # unhashable values and the like
        ok = False
    if not ok:
        hint = ""
        if isinstance(value, str) and value.lower() in allowed:
            hint = f" (names are lower case: {value.lower()!r})"
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}{hint}")
    return value


def check_positive(value, name: str) -> float:
    """A finite positive Python or numpy real (not a bool), as ``float``."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real) \
            or not (value > 0 and float(value) < float("inf")):
        raise ValueError(f"{name} must be a positive number (finite), got {value!r}")
    return float(value)


def check_fraction(value, name: str, *, closed_high: bool = False) -> float:
    """A real in ``(0, 1)`` (``(0, 1]`` with ``closed_high``), as ``float``."""
    value = _scalar(value)
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, Real) and (
        0 < value <= 1 if closed_high else 0 < value < 1)
    if not ok:
        interval = "(0, 1]" if closed_high else "strictly between 0 and 1"
        raise ValueError(f"{name} must lie {'in ' if closed_high else ''}{interval}, "
                         f"got {value!r}")
    return float(value)


def _is_pandas(x) -> bool:
    return type(x).__module__.split(".")[0] == "pandas"


def _torch_checked(x, name: str):
    if x.layout != torch_module().strided:
        raise TypeError(f"{name} is a {x.layout} tensor; pass a dense tensor (x.to_dense())")
    if x.device.type == "meta":
        raise TypeError(f"{name} is a meta tensor and holds no values")
    if x.is_complex():
        raise TypeError(f"{name} is complex ({x.dtype}); calkit needs real values")
    return x.detach()


def unmasked(x, name: str):
    """The data of a numpy masked array without masked entries; masked entries are refused.

    The one rule for masked arrays in calkit (metrics, calibrators, weights):
    a mask is never silently dropped.  Anything else is returned unchanged.
    """
    if isinstance(x, np.ma.MaskedArray):
        if np.ma.is_masked(x):
            raise TypeError(
                f"{name} is a masked array with {int(np.ma.count_masked(x))} masked entries; "
                "calkit does not read masks (the values under the mask would be used). "
                f"Drop the masked rows from every argument first, e.g. {name}.compressed() "
                "for 1-D data or the same boolean row index for all arrays")
        return x.data
    return x


def _as_array(x, name: str, *, labels: bool = False):
    """``x`` as a numpy array or a detached torch tensor, under the module's rules.

    Only the conversion and the kind of values are checked here; numeric
    arrays come back as they are (no copy).  With ``labels=True`` string and
    object arrays are allowed (labels to map through a class list).
    """
    if is_torch(x):
        return _torch_checked(x, name)
    x = unmasked(x, name)
    if _is_pandas(x) and hasattr(x, "to_numpy"):
        x = _pandas_values(x)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({arr.dtype}); calkit needs real values")
    if kind in "biuf":
        return arr
    if labels and kind in "USO":
        return arr
    if kind == "O":
        raise ValueError(f"{name} must be numeric, got an object array")
    raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")


def _pandas_values(x):
    """Values of a pandas Series/DataFrame; nullable numeric columns give NaN for missing."""
    dtypes = [x.dtype] if hasattr(x, "dtype") else list(getattr(x, "dtypes", []))
    numeric = bool(dtypes) and all(getattr(d, "kind", "O") in "biuf" for d in dtypes)
    nullable = any(not isinstance(d, np.dtype) for d in dtypes)
    if numeric and nullable:
        try:
            return x.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    return x.to_numpy()


def _is_float(x) -> bool:
    if is_torch(x):
        return x.is_floating_point()
    return np.issubdtype(x.dtype, np.floating)


def _all(x) -> bool:
    return bool(x.all())


def check_scores(scores, name: str = "scores") -> Array:
    """A 1-D finite float array of values in [0, 1]."""
    s = _as_array(scores, name)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(s.shape)}")
    if s.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not _is_float(s):
        s = s.double() if is_torch(s) else s.astype(np.float64)
    lo, hi = s.min(), s.max()
    if not (_finite(lo) and _finite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{float(lo)}, {float(hi)}]")
    return s


def _finite(v) -> bool:
    return bool(v == v) and abs(float(v)) != float("inf")


def _same_kind(x, like, name: str, like_name: str):
    """``x`` as the kind of ``like``: host numpy for numpy, a tensor on its device for torch."""
    if is_torch(like):
        if not is_torch(x):
            return torch_module().as_tensor(np.asarray(x), device=like.device)
        if x.device != like.device:
            raise ValueError(f"{name} is on {x.device} but {like_name} is on {like.device}")
        return x
    if is_torch(x):
        return to_numpy(x)
    return x


def check_binary_targets(targets, n: int, name: str = "targets", like=None) -> Array:
    """A 1-D 0/1 (or bool) array of length ``n`` (of the kind of ``like`` when given)."""
    t = _as_array(targets, name)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    if like is not None:
        t = _same_kind(t, like, name, "the scores")
    if str(t.dtype).endswith("bool"):  # numpy bool or torch.bool: 0/1 by construction
        return t
    if not _all((t == 0) | (t == 1)):
        raise ValueError(f"{name} must contain only 0/1 (or boolean) values")
    return t


def check_logits(logits, name: str = "logits") -> Array:
    """A 2-D finite float array of logits (N, K) with K >= 2."""
    z = _as_array(logits, name)
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {tuple(z.shape)}")
    if z.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if z.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 classes, got {z.shape[1]}")
    if not _is_float(z):
        raise ValueError(f"{name} must be a floating-point array, got {z.dtype}")
    if not _all(_isfinite(z)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return z


def _isfinite(x):
    return torch_module().isfinite(x) if is_torch(x) else np.isfinite(x)


@dataclass(frozen=True)
class Classification:
    """Validated classifier outputs.

    Attributes
    ----------
    y_true : array of shape (N,)
        Integer class labels in ``[0, n_classes)``.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; 1-D means the positive-class probability of a binary task.
    n_classes : int
        ``K`` (2 for 1-D binary input).
    predicted : array of shape (N,)
        Predicted label (argmax; for binary input, 1 where ``p > 0.5``).
    confidence : array of shape (N,)
        Probability of the predicted label (``max(p, 1 - p)`` for binary input).
    classes : tuple or None
        The original label of each column when labels were mapped through a
        class list (given or inferred), else None.
    """

    y_true: Array
    y_prob: Array
    n_classes: int
    predicted: Array
    confidence: Array
    classes: tuple | None = None

    @property
    def n_samples(self) -> int:
        return int(self.y_true.shape[0])

    @property
    def binary(self) -> bool:
        return self.y_prob.ndim == 1

    @property
    def correct(self) -> Array:
        return self.predicted == self.y_true


def check_classification(y_true, y_prob, *, sum_tol: float | None = None,
                         classes=None) -> Classification:
    """Validate ``(y_true, y_prob)`` and extract the top-label view in one pass.

    ``y_prob`` is ``(N, K)`` probabilities (rows sum to one within ``sum_tol``)
    or ``(N,)`` positive-class probabilities of a binary task.  ``y_true`` holds
    labels ``(N,)`` (see the module docstring; ``classes`` gives the label of
    each column) or a one-hot matrix ``(N, K)``.
    """
    p = _as_array(y_prob, "y_prob")
    if p.ndim not in (1, 2):
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {tuple(p.shape)}")
    if p.shape[0] == 0:
        raise ValueError("y_prob is empty")
    if not _is_float(p):
        raise ValueError(f"y_prob must be a floating-point array, got {p.dtype}")
    n_classes = 2 if p.ndim == 1 else int(p.shape[1])
    if p.ndim == 2 and n_classes < 2:
        raise ValueError("y_prob needs at least 2 columns (classes); for a binary task "
                         "pass the positive-class probabilities as a 1-D array")
    y, found = _labels_and_classes(y_true, p.shape[0], n_classes, p, classes)
    if p.ndim == 1:
        check_scores(p, "y_prob")
        predicted = (p > 0.5).long() if is_torch(p) else (p > 0.5).astype(np.int64)
        confidence = p.maximum(1 - p) if is_torch(p) else np.maximum(p, 1 - p)
        return Classification(y, p, 2, predicted, confidence, found)
    if not is_torch(p) and p.dtype.itemsize > 8:
        p = p.astype(np.float64)  # extended precision: checked and binned as float64
    tol = default_sum_tol(p.dtype) if sum_tol is None else check_positive(sum_tol, "sum_tol")
    predicted, confidence, row_sum = _row_summary(p)
    worst = _largest_sum_deviation(p, row_sum, tol)
    if worst > tol:
        raise ValueError(
            f"rows of y_prob must sum to 1 (largest deviation {worst:.3g} > sum_tol={tol:g}); "
            "if these are logits, apply calkit.softmax first")
    return Classification(y, p, n_classes, predicted, confidence, found)


def _largest_sum_deviation(p, row_sum, tol: float) -> float:
    """``max |row sum - 1|``; rows the fast sums flag are re-added in float64.

    The fast row sums accumulate in the input precision, so a row is only
    reported once its float64 sum is off as well (no false alarms from rounding).
    """
    if is_torch(row_sum):
        return float((row_sum - 1).abs().max())
    deviation = np.abs(row_sum - 1)
    worst = float(deviation.max())
    if worst > tol:
        flagged = np.flatnonzero(deviation > tol)
        worst = float(np.abs(p[flagged].sum(axis=1, dtype=np.float64) - 1).max())
    return worst


def _raise_for_invalid_entries(p) -> None:
    """Raise for a probability matrix with a NaN, infinite or negative entry (else pass)."""
    if not _all(_isfinite(p)):
        raise ValueError("y_prob contains NaN or infinite values")
    minimum = float(p.min())
    if minimum < 0:
        raise ValueError(f"y_prob contains negative values (minimum {minimum:.3g}); "
                         "pass probabilities, or logits through calkit.softmax")


def _row_summary(p):
    """argmax, max and sum of each row; raises if an entry is NaN, infinite or negative.

    numpy: one cache-blocked pass; each block of about 512 KiB is read from
    memory once and reduced twice while it sits in the cache:

    * the argmax runs on the entries' bit patterns (``p.view(uint)``).  For
      non-negative finite floats the unsigned bit patterns are ordered like the
      values, and every NaN, infinity or negative number (sign bit set) has a
      larger pattern than ``+inf``'s.  So the argmax is the float argmax, and one
      comparison of the row maxima's patterns with ``+inf``'s validates every
      entry, with no separate minimum pass.  When that comparison fails (a bad
      entry, or a harmless ``-0.0``) the float checks decide.
    * the row sums use ``einsum`` (vectorised, several accumulators; 3-5x faster
      than ``sum(axis=1)`` on rows).

    numpy releases the GIL in these reductions, so large matrices are split
    into row ranges summarised by a small thread pool (one thread per core, at
    most 4).
    """
    if is_torch(p):
        confidence, predicted = p.max(dim=1)
        row_sum = p.sum(dim=1)
        if not (_all(_isfinite(row_sum)) and float(p.min()) >= 0):
            _raise_for_invalid_entries(p)
        return predicted, confidence, row_sum
    n, k = p.shape
    bits = p.view(f"u{p.itemsize}")
    predicted = np.empty(n, dtype=np.int64)
    row_sum = np.empty(n, dtype=p.dtype)
    block = max(1, _ROW_BLOCK_BYTES // max(1, k * p.itemsize))
    # several parts per worker, so that a thread the OS pauses does not hold up the rest
    n_parts = 4 * worker_count() if p.nbytes >= _THREADED_BYTES else 1
    bounds = np.linspace(0, n, n_parts + 1).astype(int) // block * block
    bounds[-1] = n
    ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    def summarise(start: int, stop: int) -> None:
        for lo in range(start, stop, block):
            hi = min(lo + block, stop)
            bits[lo:hi].argmax(axis=1, out=predicted[lo:hi])
            np.einsum("ij->i", p[lo:hi], out=row_sum[lo:hi])

    if len(ranges) == 1:
        summarise(*ranges[0])
    else:
        share_work(summarise, ranges)
    # gathered once afterwards: fancy indexing inside the threads would hold the GIL
    confidence = _take_per_row(p, predicted)
    inf_bits = np.array(np.inf, dtype=p.dtype).view(bits.dtype)[()]
    if confidence.view(bits.dtype).max() >= inf_bits:  # the rows' largest patterns
        _raise_for_invalid_entries(p)
        # no error: the only sign bits were those of -0.0, which misled the argmax
        predicted = p.argmax(axis=1)
        confidence = _take_per_row(p, predicted)
    return predicted, confidence, row_sum


def _take_per_row(p: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``p[i, index[i]]`` for every row ``i`` (a flat ``take`` when ``p`` is C-contiguous)."""
    if p.flags.c_contiguous:
        flat = np.arange(0, p.size, p.shape[1])
        flat += index
        return p.reshape(-1).take(flat)
    return np.take_along_axis(p, index[:, None], axis=1)[:, 0]


def check_labels(y_true, n: int, n_classes: int, like=None, *, classes=None,
                 name: str = "y_true") -> Array:
    """Integer labels of length ``n`` in ``[0, n_classes)``; one-hot is converted.

    ``classes`` (the label of each of the ``n_classes`` columns) maps any
    hashable labels to column indices.  Labels come back as int64 of the kind of
    ``like`` (numpy, or a tensor on ``like``'s device).
    """
    return _labels_and_classes(y_true, n, n_classes, like, classes, name, hint=False)[0]


def _labels_and_classes(y_true, n: int, n_classes: int, like, classes, name: str = "y_true",
                        hint: bool = True):
    """:func:`check_labels`, also returning the class list used (or None)."""
    y = _as_array(y_true, name, labels=True)
    found = None
    if not is_torch(y) and y.dtype.kind == "O" and y.size:
        numeric = np.array(y.tolist())  # e.g. a pandas object column of Python ints
        if numeric.dtype.kind in "biufc" and numeric.shape == y.shape:
            y = _as_array(numeric, name)
    if classes is not None or (not is_torch(y) and y.dtype.kind in "USO"):
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D when labels are mapped through classes, "
                             f"got shape {tuple(y.shape)}")
        if y.shape[0] != n:
            raise ValueError(f"{name} has {y.shape[0]} samples but y_prob has {n}")
        y, found = _encode_labels(to_numpy(y), n_classes, classes, name)
    if like is not None:
        y = _same_kind(y, like, name, "y_prob")
    if y.ndim == 2:
        if tuple(y.shape) != (n, n_classes):
            raise ValueError(f"one-hot {name} must have shape ({n}, {n_classes}), "
                             f"got {tuple(y.shape)}")
        row_sum = y.sum(1)
        if not (_all((y == 0) | (y == 1)) and _all(row_sum == 1)):
            raise ValueError(f"a 2-D {name} must be one-hot: 0/1 with exactly one 1 per row")
        y = y.argmax(1)
    elif y.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels or 2-D one-hot, got shape "
                         f"{tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} samples but y_prob has {n}")
    if n == 0:
        return (y.long() if is_torch(y) else y.astype(np.int64)), found
    if _is_float(y):
        if not _all(_isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinite labels")
        if not _all(y == y.round() if is_torch(y) else y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer floats")
    lo, hi = y.min(), y.max()  # checked in the input's own dtype: nothing wraps
    lo, hi = (float(lo), float(hi)) if _is_float(y) else (int(lo), int(hi))
    if lo < 0 or hi >= n_classes:
        extra = (" (if the labels are not 0..K-1, pass classes=[...], the label of each "
                 "column of y_prob)") if hint else ""
        raise ValueError(f"{name} labels must lie in [0, {n_classes - 1}], got values in "
                         f"[{_show(lo)}, {_show(hi)}]{extra}")
    if is_torch(y):
        y = y.long()
    else:
        y = y.astype(np.int64, copy=False)
    return y, found


def _show(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e16 else str(v)


def _encode_labels(y: np.ndarray, n_classes: int, classes, name: str):
    """Column index of every label, and the class list (tuple) that maps them."""
    if classes is None:
        try:
            uniq, codes = np.unique(y, return_inverse=True)
        except TypeError as exc:
            kinds = sorted({type(v).__name__ for v in y.tolist()})
            raise ValueError(f"{name} mixes label types ({', '.join(kinds)}); pass "
                             "classes=[...], the label of each column of y_prob") from exc
        if uniq.shape[0] != n_classes:
            raise ValueError(
                f"{name} holds {uniq.shape[0]} distinct labels but y_prob has {n_classes} "
                "columns, so the column of each label cannot be inferred; pass "
                "classes=[...], the label of each column of y_prob in order")
        return codes.reshape(-1).astype(np.int64), tuple(v.item() if isinstance(
            v, np.generic) else v for v in uniq)
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise ValueError(f"classes must be a sequence of labels, got {classes!r}")
    values = [v.item() if isinstance(v, np.generic) else v for v in
              (classes.tolist() if hasattr(classes, "tolist") else list(classes))]
    if len(values) != n_classes:
        raise ValueError(f"classes has {len(values)} labels but y_prob has {n_classes} "
                         "columns")
    try:
        index = {v: i for i, v in enumerate(values)}
    except TypeError as exc:
        raise ValueError(f"classes must hold hashable labels, got {values!r}") from exc
    if len(index) != len(values):
        raise ValueError(f"classes holds duplicate labels: {values!r}")
    try:
        uniq, inverse = np.unique(y, return_inverse=True)
        items = [v.item() if isinstance(v, np.generic) else v for v in uniq]
    except TypeError:  # labels of several types: one dict look-up per label
        uniq, inverse = None, None
        items = y.tolist()
    missing = [v for v in dict.fromkeys(items) if v not in index]
    if missing:
        raise ValueError(f"{name} holds labels that are not in classes: {missing[:5]!r}"
                         f"{' ...' if len(missing) > 5 else ''}")
    codes = np.array([index[v] for v in items], dtype=np.int64)
    if inverse is not None:
        codes = codes[inverse.reshape(-1)]
    return codes, tuple(values)


def check_sample_weight(sample_weight, n: int, like=None):
    """Validated per-sample weights ``(n,)`` as float64 (None stays None).

    Weights are frequency weights: finite, non-negative, not all zero.  They
    come back as numpy, or as a torch tensor on ``like``'s device when ``like``
    is a tensor.
    """
    if sample_weight is None:
        return None
    sample_weight = unmasked(sample_weight, "sample_weight")
    if is_torch(sample_weight):
        w = sample_weight.detach()
        if w.is_complex() or str(w.dtype) == "torch.bool":
            raise ValueError(f"sample_weight must hold real numbers, got {w.dtype}")
        w = w.double()
    else:
        try:
            w = np.asarray(sample_weight)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"sample_weight could not be converted to an array: {exc}") \
                from exc
        if w.dtype.kind not in "iuf":
            raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
        w = w.astype(np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per sample), "
                         f"got {tuple(w.shape)}")
    if not _all(_isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinite values")
    if n and float(w.min()) < 0:
        raise ValueError(f"sample_weight must be non-negative, got minimum {float(w.min())}")
    if not float(w.sum()) > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive "
                         "weight")
    if like is not None and is_torch(like):
        torch = torch_module()
        return torch.as_tensor(w, dtype=torch.float64, device=like.device)
    if is_torch(w):
        return w.cpu().numpy()
    return w


def check_multilabel(y_true, y_prob, *, logits: bool = False,
                     prob_name: str = "y_prob", true_name: str = "y_true"):
    """Validated multilabel outputs: ``(targets (N, L), scores (N, L))``.

    ``y_prob`` is a 2-D float array of ``L`` independent per-label
    probabilities in ``[0, 1]`` (or of finite logits with ``logits=True``);
    ``y_true`` is a 0/1 (or boolean) matrix of the same shape, returned of the
    kind of ``y_prob`` (numpy, or a tensor on its device).  1-D labels with an
    ``(N, K)`` matrix are multiclass, not multilabel, and are refused with a
    pointer to the class-wise view.
    """
    if not isinstance(logits, (bool, np.bool_)):
        raise ValueError(f"logits must be True or False, got {logits!r}")
    p = _as_array(y_prob, prob_name)
    if p.ndim != 2:
        raise ValueError(
            f"{prob_name} must be 2-D (n_samples, n_labels) for multilabel outputs, got shape "
            f"{tuple(p.shape)}; for one binary output use calkit.ece(y, p, view='positive') "
            "or pass p.reshape(-1, 1)")
    n, n_labels = (int(s) for s in p.shape)
    if n == 0 or n_labels == 0:
        raise ValueError(f"{prob_name} is empty (shape {tuple(p.shape)})")
    if not _is_float(p):
        raise ValueError(f"{prob_name} must be a floating-point array, got {p.dtype}")
    if not is_torch(p) and p.dtype.itemsize > 8:
        p = p.astype(np.float64)
    if not _all(_isfinite(p)):
        raise ValueError(f"{prob_name} contains NaN or infinite values")
    if not logits:
        lo, hi = float(p.min()), float(p.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"{prob_name} must hold probabilities in [0, 1], got values in "
                             f"[{lo:.4g}, {hi:.4g}]; if these are logits, pass logits=True")
    t = _as_array(y_true, true_name)
    if t.ndim == 1 and t.shape[0] == n:
        raise ValueError(
            f"{true_name} is 1-D (one label per sample): that is a multiclass task, not a "
            f"multilabel one. Multilabel metrics need an (N, L) 0/1 matrix with one column "
            f"per label of {prob_name}; for the class-wise calibration of multiclass "
            "probabilities use calkit.ece(y, p, view='classwise')")
    if tuple(t.shape) != (n, n_labels):
        raise ValueError(f"{true_name} must have the shape of {prob_name} {(n, n_labels)} (one "
                         f"0/1 column per label), got {tuple(t.shape)}")
    t = _same_kind(t, p, true_name, prob_name)
    if not str(t.dtype).endswith("bool") and not _all((t == 0) | (t == 1)):
        raise ValueError(f"{true_name} must contain only 0/1 (or boolean) values")
    return t, p
