"""Peer-library conventions: reproduce the "ECE" that another library reports.

The same predictions give different binned ECEs in different libraries because
of which side of a bin is closed, where a confidence of exactly 1.0 goes, how
the edges are computed in floating point, how equal-mass bins are built, which
scores a binary task is judged on, and float32 versus float64 arithmetic.
:func:`convention_error` reproduces each library's number on calkit's own
binning engine; every quirk lives in this module and nowhere else.

Presets (``convention=``; default bins in brackets)
---------------------------------------------------
``"calkit"`` [15]
    calkit's defaults: exact edges ``k/B``, bins ``(a, b]`` (first closed),
    top-label; quantile = ``np.array_split`` ranks with midpoint edges.
``"netcal"`` [10] (netcal 1.4 ``ECE``/``MCE``)
    probabilities clipped to ``[eps, 1 - eps]`` (``eps`` of the input dtype);
    edges ``np.linspace(0, 1, B + 1)``, bins ``[a, b)`` with the last closed;
    quantile: ``np.quantile`` edges with the ends set to 0 and 1.  A task counts
    as binary when ``y_true`` holds at most two distinct labels, and is then
    judged on ``P(y = 1)``; more than two columns then raise, as netcal does.
``"torchmetrics"`` [15] (torchmetrics 1.9 ``*CalibrationError``)
    edges ``torch.linspace(0, 1, B + 1)`` in the confidences' dtype (CPU values), bins
    ``[a, b)``, and a confidence of exactly 1.0 in an extra (B+1)-th bin;
    multiclass confidences are cast to float32; 1-D input is the binary metric
    on ``P(y = 1)``.  Sums are float64 here (torchmetrics sums in float32, so
    its value differs in about the 7th digit).
``"sklearn"`` [5] (scikit-learn 1.9 ``calibration_curve`` bins, weighted by counts)
    binary only, ``P(y = 1)``; edges ``np.linspace`` or ``np.percentile``
    (quantile), inner bins ``(a, b]``.
``"uncertainty_calibration"`` [15] (Kumar et al.'s ``get_ece`` / ``get_ece_em``)
    top-label (1-D input: ``P(y = 1)``), exact edges ``k/B``, bins ``(a, b]``;
    equal-mass = ``np.array_split`` midpoints, which is calkit's quantile rule.
    (``get_calibration_error``'s switch to per-value bins is not an ECE preset.)
``"relplot"`` [10] (relplot 1.0.3 ``binnedECE``)
    bin ``int(f / (1 / B))`` in floating point, with an extra slot for 1.0;
    1-D input as given, 2-D top-label.
``"caltrain"`` [15] (Roelofs et al.'s ``ew_ece_bin`` / ``em_ece_bin``)
    top-label; ``np.digitize`` on ``np.linspace`` edges (``[a, b)``, 1.0 in the
    last bin); equal-mass: sample ``r`` of the sorted scores in bin
    ``min(B - 1, floor((r / N) * B))`` in float64.  caltrain sorts with an
    unstable ``argsort``, so on tied scores its bins depend on the tie order;
    calkit orders ties by target (0 first), a deterministic choice.
``"adafocal"`` [15] (AdaFocal / focal-calibration ``expected_calibration_error``, ``adaECE``)
    top-label; bin ``ceil(B c - 1)`` in floating point (``(a, b]``, 0 in the
    first bin); equal-mass edges ``np.interp(linspace(0, N, B + 1), arange(N),
    sort(c))`` with membership ``lower < c <= upper``, so the sample(s) with the
    minimum confidence fall in no bin while the weights still divide by ``N``.

Floating-point bin rules such as ``int(f / (1 / B))`` are turned into exact bin
edges once (the smallest double the rule sends to each bin, found by bisection
on the bit pattern), so the engine bins by comparison and agrees with the rule
on every double.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calkit import _array as xp
from calkit._validation import check_classification, check_option
from calkit.binning import (
    BinTable,
    _bin_table_explicit,
    bin_table,
    resolve_n_bins,
    sorted_pairs,
    table_from_ranks,
)
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import NORMS, CalibrationResult, error_from_table
from calkit.metrics.sweep import _rank_boundaries


@dataclass(frozen=True)
class _Preset:
    n_bins: int
    strategies: tuple
    norms: tuple
    binning: object  # (scores, targets, n_bins, strategy) -> BinTable
    view: object  # (Classification) -> view name


def _explicit(scores, targets, edges, closed: str) -> BinTable:
    """Table of validated scores on a library's own edges (which may end above 1)."""
    return _bin_table_explicit(scores, np.asarray(targets, dtype=bool),
                               np.asarray(edges, dtype=np.float64), closed)


def _top_or_positive(data) -> str:
    return "positive" if data.binary else "top_label"


def _rule_edges(rule, n_bins: int) -> np.ndarray:
    """Smallest double ``f`` in [0, 1] with ``rule(f) >= k`` for ``k = 1 .. n_bins``.

    ``rule`` maps float64 scores to integer bins and must be non-decreasing;
    the bisection runs on the bit patterns of non-negative doubles (which are
    ordered like the values).
    """
    k = np.arange(1, n_bins + 1)
    lo = np.zeros(n_bins, dtype=np.int64)
    hi = np.full(n_bins, np.float64(1.0).view(np.int64))
    while bool((lo < hi).any()):
        mid = (lo + hi) // 2
        ok = rule(mid.view(np.float64)) >= k
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return hi.view(np.float64)


def _rule_table(scores, targets, rule, n_slots: int) -> BinTable:
    """Table of a monotone index rule with slots ``0 .. n_slots - 1`` on [0, 1]."""
    inner = _rule_edges(rule, n_slots - 1)
    top = 1.0 if inner[-1] < 1.0 else 2.0  # a slot holding only 1.0 needs room above it
    edges = np.concatenate([[0.0], inner, [top]])
    return _explicit(scores, targets, edges, "left")


def _torch_linspace(n_bins: int, dtype) -> np.ndarray:
    """The values of ``torch.linspace(0, 1, n_bins + 1, dtype=dtype)`` on the CPU.

    torch's CPU kernel fills SIMD lanes from a per-vector base, so the last bit
    of some edges depends on the vector width of the machine; with torch
    installed its own values are used.  Without torch the scalar formula of the
    kernel (``i * step`` below the middle, ``1 - (n - i) * step`` above) is the
    fallback, which can differ from torch by one unit in the last place.
    """
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        t_dtype = torch.float32 if dtype == np.float32 else torch.float64
        return torch.linspace(0, 1, n_bins + 1, dtype=t_dtype).double().numpy()
    steps = n_bins + 1
    step = dtype.type(1) / dtype.type(steps - 1)
    i = np.arange(steps)
    low = step * i.astype(dtype)
    high = dtype.type(1) - step * (steps - 1 - i).astype(dtype)
    return np.where(i < steps // 2, low, high).astype(np.float64)


def _netcal(scores, targets, n_bins, strategy):
    eps = np.finfo(scores.dtype).eps
    s = np.clip(scores, eps, 1 - eps)
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.quantile(s, np.linspace(0, 1, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        edges = np.unique(edges)  # [a, b) bins between equal edges are empty anyway
    return _explicit(s, targets, edges, "left")


def _netcal_view(data) -> str:
    n_labels = len(np.unique(xp.to_numpy(data.y_true)))
    if n_labels > 2:
        return "top_label"
    if data.n_classes > 2:
        raise ValueError("netcal treats y_true with at most two distinct labels as a binary "
                         f"task and rejects {data.n_classes} probability columns "
                         "(RuntimeError in netcal)")
    return "positive"


def _torchmetrics(scores, targets, n_bins, strategy):
    edges = _torch_linspace(n_bins, scores.dtype)
    edges = np.concatenate([edges[:-1], [1.0, 2.0]])  # conf == 1.0 -> its own bin
    return _explicit(scores, targets, edges, "left")


def _torchmetrics_scores(data, scores):
    return scores if data.binary else scores.astype(np.float32)


def _sklearn(scores, targets, n_bins, strategy):
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.unique(np.percentile(scores, np.linspace(0, 1, n_bins + 1) * 100))
        if len(edges) < 2:  # constant scores: one bin
            edges = np.array([0.0, 1.0])
    return _explicit(scores, targets, edges, "right")


def _sklearn_view(data) -> str:
    if data.n_classes != 2:
        raise ValueError("the sklearn convention (calibration_curve) is binary only, "
                         f"got {data.n_classes} classes")
    return "positive"


def _kumar(scores, targets, n_bins, strategy):
    return bin_table(scores, targets, n_bins=n_bins, strategy=strategy, closed="right")


def _relplot(scores, targets, n_bins, strategy):
    size = 1.0 / n_bins
    n_slots = int(1.0 / size) + 1
    return _rule_table(scores, targets, lambda f: (f / size).astype(np.int64), n_slots)


def _caltrain(scores, targets, n_bins, strategy):
    if strategy == "uniform":
        return bin_table(scores, targets, edges=np.linspace(0, 1, n_bins + 1), closed="left")
    s, t = sorted_pairs(scores, targets)
    bounds = _rank_boundaries(len(s), n_bins)
    return table_from_ranks(s, t, bounds, closed="left", strategy="caltrain_rank")


def _adafocal(scores, targets, n_bins, strategy):
    if strategy == "uniform":
        def rule(f):
            return np.maximum(np.ceil(n_bins * f - 1), 0).astype(np.int64)
        return _rule_table(scores, targets, rule, n_bins)
    n = len(scores)
    edges = np.interp(np.linspace(0, n, n_bins + 1), np.arange(n), np.sort(scores))
    inside = scores > edges[0]  # membership lower < c <= upper leaves out the minimum
    edges = np.unique(edges)
    if len(edges) < 2 or not inside.any():
        return BinTable(np.array([0.0, 1.0]), np.zeros(1, np.int64), np.zeros(1), np.zeros(1),
                        "explicit", "right", n_samples=n)
    t = _explicit(scores[inside], targets[inside], edges, "right")
    return BinTable(t.edges, t.count, t.sum_score, t.sum_target, t.strategy, t.closed,
                    n_samples=n)


def _adafocal_view(data) -> str:
    return "top_label"


_UNIFORM = ("uniform",)
_BOTH = ("uniform", "quantile")
PRESETS = {
    "calkit": _Preset(15, _BOTH, NORMS, _kumar, lambda d: "top_label"),
    "netcal": _Preset(10, _BOTH, ("l1", "max"), _netcal, _netcal_view),
    "torchmetrics": _Preset(15, _UNIFORM, NORMS, _torchmetrics, _top_or_positive),
    "sklearn": _Preset(5, _BOTH, NORMS, _sklearn, _sklearn_view),
    "uncertainty_calibration": _Preset(15, _BOTH, ("l1", "l2"), _kumar, _top_or_positive),
    "relplot": _Preset(10, _UNIFORM, ("l1",), _relplot, _top_or_positive),
    "caltrain": _Preset(15, _BOTH, ("l1", "l2"), _caltrain, _top_or_positive),
    "adafocal": _Preset(15, _BOTH, ("l1", "max"), _adafocal, _adafocal_view),
}
CONVENTIONS = tuple(PRESETS)


def convention_error(y_true, y_prob, convention: str = "calkit", *,
                     n_bins: int | str | None = None,
                     strategy: str = "uniform", norm: str = "l1") -> CalibrationResult:
    """Binned calibration error computed the way a peer library computes it.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Integer labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Class probabilities, or the positive-class probability of a binary task.
        Torch tensors are read on the host.  A 1-D ``y_prob`` is read the way the
        library reads it (``P(y = 1)`` for most, see the module docstring), so no
        ``view`` is asked for here; for (correct, confidence) pairs use
        :func:`calkit.ece` with ``view="confidence"``.
    convention : str, default="calkit"
        One of :data:`CONVENTIONS` (see the module docstring for each rule).
    n_bins : int or str, optional
        Number of bins; default: the library's own default.  A bin-count rule
        (``"sqrt"``, ``"cube_root"``, ``"rice"``, ``"sturges"``) is resolved from
        the number of rows (:func:`calkit.binning.resolve_n_bins`) and recorded
        in ``settings["n_bins_rule"]``.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or the library's own equal-mass construction.
    norm : {"l1", "l2", "max"}, default="l1"
        Where the library offers it (ECE, RMS calibration error, MCE).

    Returns
    -------
    CalibrationResult
        With ``settings["convention"]`` and the library's bin table.

    Examples
    --------
    The edge probe: 8 points, 5 bins, three libraries, three "ECE" values.

    >>> import numpy as np
    >>> from calkit.metrics.conventions import convention_error
    >>> p = np.array([0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0, 1.0])
    >>> y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    >>> [round(float(convention_error(y, p, c, n_bins=5)), 4)
    ...  for c in ("netcal", "sklearn", "torchmetrics")]
    [0.1875, 0.2625, 0.2375]
    """
    check_option(convention, "convention", CONVENTIONS)
    preset = PRESETS[convention]
    check_option(strategy, "strategy", preset.strategies)
    check_option(norm, "norm", preset.norms)
    data = check_classification(y_true, y_prob)
    n_bins, rule = resolve_n_bins(preset.n_bins if n_bins is None else n_bins, data.n_samples)
    view = preset.view(data)
    ((scores, targets),) = score_target_pairs(data, view)
    scores, targets = xp.to_numpy(scores), xp.to_numpy(targets).astype(bool)
    if convention == "torchmetrics":
        scores = _torchmetrics_scores(data, scores)
    table = preset.binning(scores, targets, n_bins, strategy)
    settings = dict(convention=convention, norm=norm, n_bins=n_bins, strategy=strategy,
                    closed=table.closed, view=view, debiased=False, n_samples=data.n_samples)
    if rule is not None:
        settings["n_bins_rule"] = rule
    return CalibrationResult(float(error_from_table(table, norm)), (table,), settings)
