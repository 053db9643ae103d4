"""Bootstrap confidence intervals for any calkit metric.

Resampling
----------
Every resample draws ``N`` sample indices uniformly with replacement from a
seeded ``numpy.random.Generator`` (``rng.integers(0, N, (R, N))``, drawn in
blocks of rows), the ordinary non-parametric bootstrap of the pairs
``(y_true_i, y_prob_i)``.  The draws are those of ``scipy.stats.bootstrap`` with
``paired=True`` and the same generator and batch size, so the intervals can be
checked against scipy number for number.

Two routes compute the metric on the resamples; both give exactly the value the
metric would return on each resampled data set:

* **binned route** (:func:`calkit.ece`, :func:`calkit.calibration_error` and
  :func:`calkit.debiased_ece` with ``strategy="uniform"`` and the top-label or
  positive view): the bins do not depend on the data, so every sample's bin is
  found once; each block of resamples then becomes a batch of bin tables built
  by the engine (:func:`calkit.binning.resampled_tables`: ``bin_sum`` calls over
  the resampled (bin, target) ids, no per-resample pipeline, no Python loop over
  resamples or samples), reduced by :func:`~calkit.metrics.error_from_table` row
  by row in one call.  The leave-one-out tables BCa needs are the full table
  minus one sample each, in O(N B).
* **generic route** (any other callable, including quantile bins whose edges
  move with the data): the metric is called once per resample on the resampled
  arrays (and ``N`` more times for BCa's jackknife).

Intervals
---------
``alpha = (1 - confidence) / 2``; percentiles use linear interpolation.

* ``"percentile"``: ``[q(alpha), q(1 - alpha)]`` of the bootstrap replicates.
* ``"basic"`` (pivotal): ``[2 v - q(1 - alpha), 2 v - q(alpha)]`` with ``v`` the
  full-data value (the form relplot and ``uncertainty-calibration`` use, the
  latter with ``alpha`` wrongly read as a percentage).
* ``"bca"``: Efron's bias-corrected and accelerated percentiles; the bias
  correction uses the share of replicates below ``v`` (ties counted one half),
  the acceleration the jackknife skewness, as in ``scipy.stats.bootstrap``.

Which to use: the percentile interval is the default and covers about its
nominal level when the metric's estimator is nearly unbiased (Brier score, NLL,
accuracy, the ECE of a clearly miscalibrated model).  Plug-in ECEs of
well-calibrated models are biased upwards, and no bootstrap interval corrects
that bias: bootstrap the debiased or smooth ECE there.  BCa corrects skewness
but needs ``N`` extra metric evaluations (fast on the binned route).

Progress
--------
``progress=True`` reports the resamples done on stderr: with ``tqdm`` when it
is installed, else with a plain one-line counter (no extra dependency).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from calkit import _array as xp
from calkit._export import Exportable, json_ready
from calkit._progress import ProgressBar
from calkit._validation import check_classification, check_fraction, check_int, check_option
from calkit.binning import (
    BinTable,
    _table_from_index,
    assign_bins,
    resampled_tables,
    uniform_edges,
)
from calkit.metrics._views import resolve_view, score_target_pairs
from calkit.metrics.binned import (
    calibration_error,
    debiased_ece,
    debiased_error_from_table,
    ece,
    error_from_table,
)

__all__ = ["BootstrapResult", "ProgressBar", "bootstrap"]

METHODS = ("percentile", "basic", "bca")
_BLOCK_ELEMENTS = 1 << 22  # indices drawn per block (32 MiB of int64)


@dataclass(frozen=True)
class BootstrapResult(Exportable):
    """A metric value with its bootstrap confidence interval.

    Attributes
    ----------
    value : float
        The metric on the full data.
    low, high : float
        The confidence interval.
    confidence : float
        Nominal coverage, e.g. 0.95.
    method : str
        ``"percentile"``, ``"basic"`` or ``"bca"``.
    distribution : ndarray of shape (n_resamples,)
        The bootstrap replicates.
    settings : dict
        ``n_resamples``, ``random_state``, ``route`` ("binned" or "generic"),
        ``metric`` (its name) and the metric keyword arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.metrics.bootstrap import bootstrap
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1, 1000)
    >>> y = (rng.uniform(size=1000) < p - 0.1).astype(int)   # over-confident by 0.1
    >>> r = bootstrap(ece, y, p, view="positive", n_resamples=200, random_state=0)
    >>> r.method, r.confidence, r.distribution.shape, r.settings["metric"]
    ('percentile', 0.95, (200,), 'ece')
    >>> bool(float(r) == ece(y, p, view="positive")), round(r.low, 3), round(r.high, 3)
    (True, 0.059, 0.112)
    >>> bool(np.allclose([r.low, r.high], np.percentile(r.distribution, [2.5, 97.5])))
    True
    >>> d = r.to_dict()   # JSON-ready; r.to_frame() is the pandas form (one row)
    >>> d["metric"], round(d["low"], 3), len(d["distribution"])
    ('ece', 0.059, 200)
    """

    value: float
    low: float
    high: float
    confidence: float
    method: str
    distribution: np.ndarray
    settings: dict = field(default_factory=dict)

    @property
    def standard_error(self) -> float:
        """Standard deviation of the bootstrap replicates."""
        return float(self.distribution.std(ddof=1))

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        """JSON-ready dict: the interval, ``standard_error``, ``settings`` and ``distribution``."""
        return {"metric": self.settings.get("metric", "metric"), "value": json_ready(self.value),
                "low": json_ready(self.low), "high": json_ready(self.high),
                "confidence": self.confidence, "method": self.method,
                "standard_error": json_ready(self.standard_error),
                "settings": json_ready(self.settings),
                "distribution": json_ready(np.asarray(self.distribution))}

    def __repr__(self) -> str:
        return (f"BootstrapResult({self.settings.get('metric', 'metric')} = {self.value:.6f}, "
                f"{100 * self.confidence:g}% {self.method} CI [{self.low:.6f}, "
                f"{self.high:.6f}], {len(self.distribution)} resamples)")


class _BinnedStatistic:
    """A fixed-edge binned metric evaluated on batches of bin tables (the engine's)."""

    def __init__(self, scores, targets, n_bins: int, closed: str, reduce):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.targets = np.asarray(targets, dtype=bool)
        self.edges = uniform_edges(n_bins)
        self.index = assign_bins(self.scores, self.edges, closed)
        self.closed = closed
        self.reduce = reduce

    def on_indices(self, idx: np.ndarray) -> np.ndarray:
        table = resampled_tables(self.index, self.scores, self.targets, idx, self.edges,
                                 self.closed, "uniform")
        return np.asarray(self.reduce(table), dtype=np.float64)

    def jackknife(self) -> np.ndarray:
        """The metric on every leave-one-out sample: the full table minus one sample."""
        full = _table_from_index(self.index, self.scores, self.targets, self.edges, "uniform",
                                 self.closed)  # the bins found in __init__, not searched again
        n = len(self.scores)
        out = np.empty(n)
        block = max(1, _BLOCK_ELEMENTS // (4 * len(full.count)))
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            drop = np.arange(len(rows)), self.index[rows]
            count, sum_score, sum_target = (np.tile(a, (len(rows), 1)) for a in
                                            (full.count, full.sum_score, full.sum_target))
            count[drop] -= 1
            sum_score[drop] -= self.scores[rows]
            sum_target[drop] -= self.targets[rows]
            out[rows] = self.reduce(BinTable(self.edges, count, sum_score, sum_target,
                                             "uniform", self.closed, n_samples=n - 1))
        return out


def _metric_settings(metric, kwargs: dict) -> dict:
    params = {name: p.default for name, p in inspect.signature(metric).parameters.items()
              if p.default is not inspect.Parameter.empty}
    params.update(kwargs)
    return params


def _takes(metric, name: str) -> bool:
    try:
        return name in inspect.signature(metric).parameters
    except (TypeError, ValueError):
        return False


def _binned_statistic(metric, data, kwargs: dict) -> _BinnedStatistic | None:
    """The fast route for fixed-edge binned metrics, or None when it does not apply."""
    if metric not in (ece, calibration_error, debiased_ece):
        return None
    p = _metric_settings(metric, kwargs)
    if p["strategy"] != "uniform" or p["view"] == "classwise":
        return None
    debias = metric is debiased_ece or p.get("debias", False)
    norm = "l2" if metric is debiased_ece else p["norm"]
    ((scores, targets),) = score_target_pairs(data, resolve_view(p["view"], data))

    def reduce(table):
        return debiased_error_from_table(table) if debias else error_from_table(table, norm)

    return _BinnedStatistic(xp.to_numpy(scores), xp.to_numpy(targets), p["n_bins"],
                            p["closed"], reduce)


def _index_blocks(rng: np.random.Generator, n: int, n_resamples: int, batch: int):
    for start in range(0, n_resamples, batch):
        yield rng.integers(0, n, (min(batch, n_resamples - start), n))


def _interval(dist, value, alpha, method, jackknife):
    if method == "percentile":
        return tuple(np.percentile(dist, [100 * alpha, 100 * (1 - alpha)]))
    if method == "basic":
        lo, hi = np.percentile(dist, [100 * alpha, 100 * (1 - alpha)])
        return 2 * value - hi, 2 * value - lo
    share = (np.count_nonzero(dist < value) + np.count_nonzero(dist <= value)) / (2 * len(dist))
    z0 = ndtri(share)
    u = (len(jackknife) - 1) * (jackknife.mean() - jackknife)
    n = float(len(jackknife))
    spread = (u ** 2).sum() / n ** 2
    z = ndtri(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        accel = ((u ** 3).sum() / n ** 3) / (6 * spread ** 1.5) if spread > 0 else np.nan
        levels = [ndtr(z0 + (z0 + zz) / (1 - accel * (z0 + zz))) for zz in (z, -z)]
    if not np.isfinite(levels).all():
        raise ValueError("BCa interval is undefined here (all replicates on one side of the "
                         "estimate, or zero jackknife variance); use method='percentile'")
    return tuple(np.percentile(dist, [100 * lv for lv in levels]))


def bootstrap(metric, y_true, y_prob, *, n_resamples: int = 1000, confidence: float = 0.95,
              method: str = "percentile", random_state=None, batch: int | None = None,
              progress: bool = False, **metric_kwargs) -> BootstrapResult:
    """Bootstrap confidence interval of ``metric(y_true, y_prob, **metric_kwargs)``.

    Parameters
    ----------
    metric : callable
        Any function ``metric(y_true, y_prob, **kwargs)`` returning a number
        (or an object with ``__float__``, such as a ``CalibrationResult``):
        :func:`calkit.ece`, :func:`calkit.brier_score`, :func:`calkit.nll`,
        :func:`calkit.metrics.smooth.smooth_ece`, your own, ...
    y_true, y_prob : arrays
        As for the metric; validated once.  Torch tensors are resampled on the
        host as numpy arrays.  A 1-D ``y_prob`` needs the metric's ``view``
        (``view="confidence"`` for (correct, confidence) pairs,
        ``view="positive"`` for a binary classifier's P(y = 1)), passed in
        ``metric_kwargs``, exactly as the metric itself does.
    n_resamples : int, default=1000
    confidence : float, default=0.95
        Nominal coverage of the interval.
    method : {"percentile", "basic", "bca"}, default="percentile"
        Interval construction (module docstring).
    random_state : int, numpy Generator or None
        Seed for the resampling; an int makes the result reproducible.
    batch : int, optional
        Resamples drawn per block (default: about 4 million indices per
        block).  Only memory and the random stream's blocking depend on it.
    progress : bool, default=False
        Show a progress bar of the resamples on stderr (:class:`ProgressBar`).
    **metric_kwargs
        Passed to ``metric`` (e.g. ``n_bins=10, norm="l2"``).  ``classes`` (and
        ``sum_tol``) also apply to the one validation here; the resamples get
        the already mapped integer labels.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import ece
    >>> from calkit.metrics.bootstrap import bootstrap
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1, 2000)
    >>> y = (rng.uniform(size=2000) < p - 0.1).astype(int)   # over-confident by 0.1
    >>> r = bootstrap(ece, y, p, view="positive", n_resamples=500, random_state=0)
    >>> bool(r.low < r.value < r.high), r.settings["route"]
    (True, 'binned')
    """
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    confidence = check_fraction(confidence, "confidence")
    check_option(method, "method", METHODS)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    if not callable(metric):
        raise ValueError(f"metric must be a callable metric(y_true, y_prob), got {metric!r}")
    data = check_classification(y_true, y_prob, sum_tol=metric_kwargs.get("sum_tol"),
                                classes=metric_kwargs.get("classes"))
    y, p = xp.to_numpy(data.y_true), xp.to_numpy(data.y_prob)
    n = data.n_samples
    settings_kwargs = dict(metric_kwargs)
    if data.classes is not None:
        settings_kwargs["classes"] = list(data.classes)
    metric_kwargs = {k: v for k, v in metric_kwargs.items() if k != "classes"}  # y is mapped
    if data.y_prob.dtype.itemsize <= 2 and data.y_prob.ndim == 2 and _takes(metric, "sum_tol"):
        metric_kwargs.setdefault("sum_tol", 1e-2)  # 16-bit rows, now read as float32
    value = float(metric(y, p, **metric_kwargs))
    rng = np.random.default_rng(random_state)
    batch = batch or max(1, _BLOCK_ELEMENTS // n)
    binned = _binned_statistic(metric, data, metric_kwargs)
    name = getattr(metric, "__name__", repr(metric))
    bar = ProgressBar(n_resamples, f"bootstrap {name}", enable=progress)
    parts = []
    for block in _index_blocks(rng, n, n_resamples, batch):
        if binned is not None:
            parts.append(binned.on_indices(block))
            bar.update(len(block))
            continue
        values = np.empty(len(block))
        for j, i in enumerate(block):
            values[j] = float(metric(y[i], p[i], **metric_kwargs))
            bar.update()
        parts.append(values)
    bar.close()
    dist = np.concatenate(parts)
    if not np.isfinite(dist).all():
        raise ValueError(f"the metric returned NaN/inf on {int((~np.isfinite(dist)).sum())} "
                         "resamples; it is undefined on some resampled data sets")
    jack = None
    if method == "bca":
        jack = binned.jackknife() if binned is not None else _jackknife(metric, y, p,
                                                                         metric_kwargs)
    low, high = _interval(dist, value, (1 - confidence) / 2, method, jack)
    settings = dict(n_resamples=int(n_resamples), random_state=random_state,
                    route="binned" if binned is not None else "generic",
                    metric=name, **settings_kwargs)
    return BootstrapResult(value, float(low), float(high), float(confidence), method, dist,
                           settings)


def _jackknife(metric, y, p, kwargs) -> np.ndarray:
    n = len(y)
    keep = np.ones(n, dtype=bool)
    out = np.empty(n)
    for i in range(n):
        keep[i] = False
        out[i] = float(metric(y[keep], p[keep], **kwargs))
        keep[i] = True
    return out
