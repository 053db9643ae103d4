"""The binning engine: one place that turns scores and 0/1 targets into a bin table.

Every binned quantity in calkit (ECE and its variants, reliability diagrams,
histogram binning, the AdaFocal loss, the streaming accumulator) is computed from
the :class:`BinTable` built here.  Numpy arrays and torch tensors (CPU or CUDA)
take the same path; torch inputs stay on their device and all sums are float64.

Conventions
-----------
strategy
    ``"uniform"``: ``n_bins`` equal-width bins with edges ``k / n_bins`` (each
    edge is the correctly rounded float64 value of the fraction, so a score
    exactly equal to ``0.3`` sits *on* the edge ``3/10``, not beside it).
    ``"quantile"``: equal-mass bins, see :func:`quantile_edges`.
    ``"explicit"``: the caller's edges (recorded when ``edges=`` is given).
closed
    ``"right"`` (default): bins are ``(a, b]`` and the first bin is closed,
    ``[0, b]``.  This is the convention of scikit-learn's ``calibration_curve``,
    Kumar et al.'s ``uncertainty-calibration``, the temperature-scaling and
    focal-loss reference code and AdaFocal.  ``"left"``: bins are ``[a, b)`` and
    the last bin is closed, ``[a, 1]``, so a confidence of exactly 1.0 lands in
    the last bin (netcal, Roelofs et al.'s ``caltrain``).  Scores below the first
    edge or above the last one are counted in the first or last bin.
empty bins
    Uniform and explicit bins keep their empty bins (count 0; their means and gap
    are NaN).  Quantile bins never are empty: see :func:`quantile_edges`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from calkit import _array as xp
from calkit._array import Array
from calkit._bin_rules import BIN_RULES, rule_n_bins
from calkit._export import Exportable, json_ready
from calkit._validation import (
    _as_array,
    _finite,
    _is_float,
    check_binary_targets,
    check_n_bins,
    check_option,
    check_sample_weight,
    check_scores,
)

Strategy = Literal["uniform", "quantile"]
Closed = Literal["right", "left"]
STRATEGIES = ("uniform", "quantile")
CLOSED = ("right", "left")
MAX_EDGES = 1_000_001  # check_n_bins's cap on bins, plus one


@dataclass(frozen=True)
class BinTable(Exportable):
    """Per-bin statistics of scores against 0/1 targets.

    Attributes
    ----------
    edges : array of shape (n_bins + 1,)
        Bin edges, increasing, float64.
    count : array of shape (n_bins,)
        Samples per bin (int64), or the float64 sum of their weights for a
        table built with ``sample_weight`` (then ``n_samples`` is the total
        weight, and every derived quantity is the weighted one).
    sum_score, sum_target : array of shape (n_bins,)
        float64 sums of the (weighted) scores and targets in each bin.
    strategy, closed : str
        How the edges were made and which side of a bin is closed.

    Derived per-bin quantities (``mean_score``, ``mean_target``, ``gap``,
    ``weight``) are NaN for empty bins.  Arrays are numpy arrays, or torch
    tensors on the input's device when the input was a tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> t = bin_table(np.array([0.2, 0.3, 0.8, 0.9]), np.array([0, 1, 1, 1]), n_bins=2)
    >>> t.count.tolist(), t.gap.round(6).tolist()  # gap = mean score - accuracy
    ([2, 2], [-0.25, -0.15])
    >>> float(np.sum(t.weight * np.abs(t.gap)))  # the L1 ECE of this table
    0.2
    >>> d = t.to_dict()   # JSON-ready; t.to_frame() is the pandas form, one row per bin
    >>> d["edges"], d["count"], [round(v, 6) for v in d["mean_score"]]
    ([0.0, 0.5, 1.0], [2, 2], [0.25, 0.85])
    """

    edges: Array
    count: Array
    sum_score: Array
    sum_target: Array
    strategy: str = "uniform"
    closed: str = "right"
    n_samples: int = field(default=-1)

    def __post_init__(self):
        if self.n_samples < 0:
            object.__setattr__(self, "n_samples", int(self.count.sum()))

    @property
    def n_bins(self) -> int:
        return int(self.count.shape[0])

    @property
    def nonempty(self) -> Array:
        return self.count > 0

    def _per_bin_mean(self, total: Array) -> Array:
        count = xp.as_float64(self.count)
        return total / xp.where(self.nonempty, count, float("nan"))

    @property
    def mean_score(self) -> Array:
        """Mean score (confidence) per bin."""
        return self._per_bin_mean(self.sum_score)

    @property
    def mean_target(self) -> Array:
        """Mean target (accuracy) per bin."""
        return self._per_bin_mean(self.sum_target)

    @property
    def gap(self) -> Array:
        """``mean_score - mean_target``: positive means over-confident."""
        return self.mean_score - self.mean_target

    @property
    def weight(self) -> Array:
        """Share of the samples in each bin."""
        return self.count / self.n_samples

    def to_numpy(self) -> BinTable:
        """The same table with numpy arrays (copies device tensors to the host)."""
        return BinTable(*(xp.to_numpy(a) for a in
                          (self.edges, self.count, self.sum_score, self.sum_target)),
                        strategy=self.strategy, closed=self.closed, n_samples=self.n_samples)

    def to_dict(self) -> dict:
        """JSON-ready dict of the table: lists (``edges`` has B + 1 entries, the others B).

        The means and gap of empty bins are ``None`` (NaN in the arrays), so
        ``json.loads(json.dumps(t.to_dict()))`` returns the same dict.
        """
        t = self.to_numpy()
        out = {"strategy": t.strategy, "closed": t.closed, "n_samples": t.n_samples}
        for name in ("edges", "count", "sum_score", "sum_target", "mean_score",
                     "mean_target", "gap"):
            out[name] = json_ready(np.asarray(getattr(t, name)))
        return out

    def _frame_columns(self) -> dict:
        """One row per bin: ``lower``/``upper`` edges, counts, sums, means, gap, weight."""
        t = self.to_numpy()
        edges = np.asarray(t.edges)
        if np.ndim(t.count) != 1:
            raise ValueError("to_frame() needs a single table (this one holds a batch of "
                             f"tables, count shape {tuple(np.shape(t.count))})")
        return {"lower": edges[:-1], "upper": edges[1:], "count": t.count,
                "sum_score": t.sum_score, "sum_target": t.sum_target,
                "mean_score": t.mean_score, "mean_target": t.mean_target, "gap": t.gap,
                "weight": t.weight}

    def __repr__(self) -> str:
        return (f"BinTable({self.n_bins} {self.strategy} bins, closed={self.closed!r}, "
                f"n_samples={self.n_samples})")


def resolve_n_bins(n_bins: int | str, n_samples: int,
                   sample_weight=None) -> tuple[int, str | None]:
    """The number of bins and the rule that gave it: ``n_bins`` or a named rule of ``n``.

    Parameters
    ----------
    n_bins : int or {"sqrt", "cube_root", "rice", "sturges"}
        A positive integer (checked to be at most ``n_samples``, as everywhere),
        or a rule resolved from the number ``n`` of samples that are binned:

        * ``"sqrt"``: ``ceil(sqrt(n))``, numpy's ``"sqrt"`` histogram rule;
        * ``"cube_root"``: ``ceil(n ** (1/3))``, scikit-learn's
          ``calibration_curve(n_bins="cube_root")`` (PR #33856);
        * ``"rice"``: ``ceil(2 n ** (1/3))``, the Rice rule;
        * ``"sturges"``: ``ceil(log2 n) + 1`` (Sturges 1926).

        Every rule is computed in integer arithmetic (a perfect square or cube
        gives its exact root) and capped at ``n``.
    n_samples : int
        Rows binned: for the top-label, positive and confidence views the
        number of rows; for the class-wise view too (each class bins all rows).
    sample_weight : array of shape (n_samples,), optional
        With weights, ``n`` is the number of samples with a positive weight
        (zero-weight rows are not binned); an integer ``n_bins`` is still
        checked against ``n_samples``.

    Returns
    -------
    (int, str or None)
        The number of bins, and the rule name (None for an integer ``n_bins``).

    Examples
    --------
    >>> from calkit.binning import resolve_n_bins
    >>> resolve_n_bins("cube_root", 27), resolve_n_bins("sqrt", 10_000)
    ((3, 'cube_root'), (100, 'sqrt'))
    >>> resolve_n_bins("rice", 1000), resolve_n_bins("sturges", 1000), resolve_n_bins(15, 1000)
    ((20, 'rice'), (11, 'sturges'), (15, None))
    >>> resolve_n_bins("cube_root", 4, sample_weight=[1.0, 0.0, 2.0, 0.0])  # 2 samples count
    (2, 'cube_root')
    """
    if isinstance(n_bins, str):
        if n_bins not in BIN_RULES:
            check_n_bins(n_bins)  # raises, naming the rules (and 'sweep' where it belongs)
        n = int(n_samples)
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, n)
            n = int(xp.to_numpy(w > 0).sum())
        return check_n_bins(rule_n_bins(n_bins, n)), n_bins
    return check_n_bins(n_bins, n_samples), None


def uniform_edges(n_bins: int) -> np.ndarray:
    """Equal-width edges ``k / n_bins``, each correctly rounded (no linspace drift).

    Examples
    --------
    >>> from calkit.binning import uniform_edges
    >>> float(uniform_edges(10)[3])
    0.3
    """
    n_bins = check_n_bins(n_bins)
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def quantile_edges(scores: Array, n_bins: int) -> Array:
    """Equal-mass edges: midpoints between the sorted scores at the split ranks.

    The sorted scores are split like ``np.array_split`` (the first ``N % B``
    parts get one extra sample) and each interior edge is the midpoint between
    the last score of a part and the first of the next, so with distinct scores
    every bin gets ``N // B`` or ``N // B + 1`` samples whichever side is closed.
    The outer edges are 0 and 1, so the edges apply to new data as well.

    Ties make this deterministic rather than exact: a run of equal scores is
    never split (the bins are defined by value, so the result does not depend on
    sample order), duplicate edges are dropped and :func:`bin_table` removes the
    bins left empty, so fewer than ``n_bins`` bins may come back.  With fewer
    samples than bins, ``min(N, n_bins)`` parts are used.  For distinct scores
    the edges equal those of ``uncertainty-calibration``'s ``get_equal_bins``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import quantile_edges
    >>> quantile_edges(np.array([0.1, 0.2, 0.6, 0.9]), 2)
    array([0. , 0.4, 1. ])
    """
    n_bins = check_n_bins(n_bins)
    s = _sort(check_scores(scores))
    return _quantile_edges_sorted(s, n_bins)


def _sort(scores: Array) -> Array:
    if xp.is_torch(scores):
        return scores.sort().values
    return np.sort(scores)


def _quantile_edges_sorted(sorted_scores: Array, n_bins: int) -> Array:
    n = int(sorted_scores.shape[0])
    parts = min(n_bins, n)
    k = np.arange(1, parts)
    ranks = k * (n // parts) + np.minimum(k, n % parts)
    ranks = xp.like(ranks, sorted_scores, dtype="int64")
    below = xp.as_float64(sorted_scores[ranks - 1])
    above = xp.as_float64(sorted_scores[ranks])
    inner = (below + above) / 2
    if xp.is_torch(inner):
        torch = xp.torch_module()
        edges = torch.cat([inner.new_zeros(1), inner, inner.new_ones(1)])
        return torch.unique(edges.clamp(0, 1))
    return np.unique(np.concatenate([[0.0], np.clip(inner, 0, 1), [1.0]]))


def weighted_quantile_edges(scores, sample_weight, n_bins: int) -> Array:
    """Equal-mass edges of weighted scores: :func:`quantile_edges` of the repeated samples.

    With the scores sorted and ``c`` their cumulative weights (total ``W``), the
    weight is split like ``np.array_split`` splits ``W`` repeated samples into
    ``P = min(n_bins, W)`` parts (``P = min(n_bins, #positive weights)`` when
    ``W`` is not a whole number): split rank ``r_k = k (W // P) + min(k, W mod
    P)``, and the edge is the midpoint between the score covering cumulative
    weight ``r_k`` and the next one.  For integer weights these are exactly the
    edges of the samples repeated by their weights; zero weights are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import quantile_edges, weighted_quantile_edges
    >>> s = np.array([0.1, 0.2, 0.6, 0.9])
    >>> weighted_quantile_edges(s, [1, 3, 1, 1], 2).tolist()
    [0.0, 0.2, 1.0]
    >>> quantile_edges(np.repeat(s, [1, 3, 1, 1]), 2).tolist()
    [0.0, 0.2, 1.0]
    """
    n_bins = check_n_bins(n_bins)
    s = check_scores(scores)
    w = check_sample_weight(sample_weight, int(s.shape[0]), like=s)
    order = xp.argsort_(s)
    return _weighted_quantile_edges_sorted(s[order], w[order], n_bins)


def _weighted_quantile_edges_sorted(sorted_scores: Array, sorted_weights: Array,
                                    n_bins: int) -> Array:
    c = xp.to_numpy(xp.cumsum0(sorted_weights))[1:]
    total = float(c[-1])
    whole = total == np.floor(total)
    positive = int(np.count_nonzero(xp.to_numpy(sorted_weights) > 0))
    parts = max(1, min(n_bins, int(total) if whole else positive))
    k = np.arange(1, parts, dtype=np.float64)
    q = np.floor(total / parts)
    ranks = k * q + np.minimum(k, total - q * parts)
    last = len(c) - 1
    below = np.minimum(np.searchsorted(c, ranks, side="left"), last)
    above = np.minimum(np.searchsorted(c, ranks, side="right"), last)
    s = xp.to_numpy(xp.as_float64(sorted_scores))
    inner = (s[below] + s[above]) / 2
    edges = np.unique(np.concatenate([[0.0], np.clip(inner, 0, 1), [1.0]]))
    return xp.like(edges, sorted_scores) if xp.is_torch(sorted_scores) else edges


def assign_bins(scores: Array, edges: Array, closed: Closed = "right") -> Array:
    """Bin index of every score for increasing ``edges`` (int64, in [0, len(edges) - 2]).

    ``scores`` are 1-D and finite (NaN is refused: it has no bin); ``edges``
    non-decreasing (equal edges make an empty bin, as collapsed AdaFocal bins),
    finite and within [0, 1].  Scores outside
    ``[edges[0], edges[-1]]`` go to the first or last bin.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import assign_bins, uniform_edges
    >>> assign_bins(np.array([0.0, 0.3, 0.31, 1.0]), uniform_edges(10), closed="right")
    array([0, 2, 3, 9])
    >>> assign_bins(np.array([0.0, 0.3, 0.31, 1.0]), uniform_edges(10), closed="left")
    array([0, 3, 3, 9])
    """
    check_option(closed, "closed", CLOSED)
    scores = _check_finite_scores(scores)
    return _assign(scores, _check_edges(edges, scores, strict=False), closed)


def _assign(scores: Array, edges: Array, closed: str) -> Array:
    """:func:`assign_bins` on validated scores and edges of the same kind."""
    # Counting the inner edges below the score (or at most the score, closed="left") gives
    # the bin directly: scores beyond the outer edges land in the first or last bin.
    return xp.searchsorted(edges[1:-1], scores, right=(closed == "left"))


def _check_finite_scores(scores, name: str = "scores") -> Array:
    s = _as_array(scores, name)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(s.shape)}")
    if not _is_float(s):
        s = s.double() if xp.is_torch(s) else s.astype(np.float64)
    if s.shape[0] and not (_finite(s.min()) and _finite(s.max())):
        raise ValueError(f"{name} contains NaN or infinite values")
    return s


def _uniform_index(scores: Array, n_bins: int, closed: Closed) -> Array:
    """:func:`assign_bins` for ``uniform_edges(n_bins)`` in O(N) without a search.

    ``floor``/``ceil`` of ``score * n_bins`` is off by at most one next to an
    edge; one exact comparison with the edges ``k / n_bins`` corrects it.
    """
    c = xp.as_float64(scores)
    torch = xp.torch_module() if xp.is_torch(c) else None
    lib = torch if torch is not None else np
    if closed == "right":
        k = lib.ceil(c * n_bins) - 1
    else:
        k = lib.floor(c * n_bins)
    k = k.clamp(0, n_bins - 1) if torch is not None else np.clip(k, 0, n_bins - 1)
    if closed == "right":
        down = (c <= k / n_bins) & (k > 0)
        k = k - down * 1.0
        up = (c > (k + 1) / n_bins) & (k < n_bins - 1)
    else:
        down = (c < k / n_bins) & (k > 0)
        k = k - down * 1.0
        up = (c >= (k + 1) / n_bins) & (k < n_bins - 1)
    k = k + up * 1.0
    return k.long() if torch is not None else k.astype(np.int64)


def bin_table(scores, targets, n_bins: int | str = 15, strategy: Strategy = "uniform",
              closed: Closed = "right", edges=None, sample_weight=None) -> BinTable:
    """Bin ``scores`` and sum ``targets`` per bin: the engine behind every binned metric.

    Parameters
    ----------
    scores : array of shape (N,)
        Scores (confidences) in [0, 1]; numpy array or torch tensor.
    targets : array of shape (N,)
        0/1 (or boolean) outcomes, e.g. whether the top-label prediction was right.
    n_bins : int or str, default=15
        Number of bins (ignored when ``edges`` is given), or a bin-count rule
        of the number of samples (``"sqrt"``, ``"cube_root"``, ``"rice"``,
        ``"sturges"``: :func:`resolve_n_bins`).
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (see the module docstring).
    closed : {"right", "left"}, default="right"
        ``"right"``: bins ``(a, b]``, first bin closed.  ``"left"``: bins
        ``[a, b)``, last bin closed.
    edges : array of shape (B + 1,), optional
        Explicit increasing edges; overrides ``n_bins`` and ``strategy``.
    sample_weight : array of shape (N,), optional
        Non-negative frequency weights: the table equals that of the samples
        repeated by their (integer) weights, including the equal-mass edges,
        which split the cumulative weight like ``np.array_split`` splits the
        repeated samples (see :func:`weighted_quantile_edges`).  Counts become
        float64 weight sums.

    Returns
    -------
    BinTable

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table
    >>> t = bin_table(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 1, 1]), n_bins=2)
    >>> t.count.tolist(), t.mean_score.tolist(), t.mean_target.tolist()
    ([2, 2], [0.25, 0.75], [0.5, 1.0])
    >>> w = bin_table(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 1, 1]), n_bins=2,
    ...               sample_weight=[3, 1, 1, 1])
    >>> w.count.tolist(), w.mean_target.tolist()
    ([4.0, 2.0], [0.25, 1.0])
    """
    s = check_scores(scores)
    t = check_binary_targets(targets, s.shape[0], like=s)
    w = check_sample_weight(sample_weight, int(s.shape[0]), like=s)
    check_option(closed, "closed", CLOSED)
    if edges is not None:
        e = _check_edges(edges, s)
        return _bin_table_explicit(s, t, e, closed, w)
    check_option(strategy, "strategy", STRATEGIES)
    if isinstance(n_bins, str):  # a rule of the number of (positively weighted) samples
        n_bins = resolve_n_bins(n_bins, int(s.shape[0]), w)[0]
    n_bins = check_n_bins(n_bins)
    return _bin_table(s, t, n_bins, strategy, closed, w)


def _check_edges(edges, like_scores, strict: bool = True) -> Array:
    """Explicit edges: 1-D, at least 2, finite, increasing (``strict``: no ties), in [0, 1]."""
    e = _as_array(edges, "edges")
    if xp.is_torch(e) and not xp.is_torch(like_scores):
        e = xp.to_numpy(e)
    e = xp.like(e, like_scores) if xp.is_torch(like_scores) else np.asarray(e, np.float64)
    if e.ndim != 1 or e.shape[0] < 2:
        raise ValueError("edges must be a 1-D array of at least 2 increasing values, got "
                         f"shape {tuple(e.shape)}")
    if e.shape[0] > MAX_EDGES:
        raise ValueError(f"edges has {e.shape[0]} values: at most {MAX_EDGES:,} (bins + 1)")
    if not (_finite(e.min()) and _finite(e.max())):
        raise ValueError("edges contains NaN or infinite values")
    if strict and not bool((e[1:] > e[:-1]).all()):
        raise ValueError("edges must be strictly increasing (sort them and drop duplicates)")
    if not strict and not bool((e[1:] >= e[:-1]).all()):
        raise ValueError("edges must be increasing (sorted)")
    if float(e[0]) < 0 or float(e[-1]) > 1:
        raise ValueError(f"edges must lie in [0, 1] (scores are probabilities), got "
                         f"[{float(e[0])}, {float(e[-1])}]")
    return e


def _bin_table(scores: Array, targets: Array, n_bins: int, strategy: str,
               closed: str, weights: Array | None = None) -> BinTable:
    """:func:`bin_table` on validated inputs (the metrics call this directly).

    ``weights``: validated float64 sample weights (same backend as ``scores``) or None.
    """
    if strategy == "quantile":
        return _bin_table_quantile(scores, targets, n_bins, closed, weights)
    idx = _uniform_index(scores, n_bins, closed)
    edges = xp.like(uniform_edges(n_bins), scores)
    return _table_from_index(idx, scores, targets, edges, "uniform", closed, weights)


def _bin_table_explicit(scores, targets, edges, closed, weights=None) -> BinTable:
    """Table on validated scores and edges (any increasing finite edges, e.g. a top edge
    above 1 that gives a score of exactly 1.0 its own bin, as peer conventions need)."""
    idx = _assign(scores, edges, closed)
    return _table_from_index(idx, scores, targets, edges, "explicit", closed, weights)


def _table_from_index(idx, scores, targets, edges, strategy, closed,
                      weights=None) -> BinTable:
    n_bins = int(edges.shape[0]) - 1
    if weights is not None:  # weighted sums: counts become float64 weight sums
        return BinTable(edges, xp.bin_sum(idx, n_bins, weights),
                        xp.bin_sum(idx, n_bins, weights * scores),
                        xp.bin_sum(idx, n_bins, weights * targets), strategy, closed,
                        n_samples=float(weights.sum()))
    count = xp.bin_sum(idx, n_bins)
    sum_score = xp.bin_sum(idx, n_bins, scores)
    sum_target = xp.bin_sum(idx, n_bins, targets)
    return BinTable(edges, count, sum_score, sum_target, strategy, closed,
                    n_samples=int(scores.shape[0]))


def resampled_tables(index, scores, targets, resamples, edges, closed: Closed = "right",
                     strategy: str = "explicit") -> BinTable:
    """Bin tables of many resamples at once, for bins fixed before resampling (numpy).

    Parameters
    ----------
    index : int array of shape (N,)
        Each sample's bin, from :func:`assign_bins` with ``edges``.
    scores, targets : arrays of shape (N,)
        Scores and their 0/1 targets.
    resamples : int array of shape (R, M)
        Sample indices of each resample (e.g. bootstrap draws), one row each.
    edges : array of shape (B + 1,)
    closed, strategy : str
        Recorded in the table.

    Returns
    -------
    BinTable
        Arrays of shape ``(R, B)``: row ``r`` is the table of
        ``scores[resamples[r]]``; :func:`calkit.metrics.error_from_table` reduces
        such a batch row by row.  Built with one ``bin_sum`` over (bin, target)
        pairs offset by row and one over bins (no loop over resamples).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import assign_bins, bin_table, resampled_tables, uniform_edges
    >>> rng = np.random.default_rng(0)
    >>> s, t = rng.random(50), rng.random(50) < 0.5
    >>> edges = uniform_edges(5)
    >>> draws = rng.integers(0, 50, (3, 50))
    >>> batch = resampled_tables(assign_bins(s, edges), s, t, draws, edges)
    >>> batch.count.shape
    (3, 5)
    >>> bool(np.allclose(batch.sum_target[1], bin_table(s[draws[1]], t[draws[1]], 5).sum_target))
    True
    """
    n_bins = int(edges.shape[0]) - 1
    rows, size = resamples.shape
    pair = 2 * np.asarray(index) + np.asarray(targets, dtype=bool)  # (bin, 0/1 target) in one id
    offset = (np.arange(rows) * (2 * n_bins))[:, None]
    keys = (pair[resamples] + offset).ravel()
    pairs = xp.bin_sum(keys, rows * 2 * n_bins).reshape(rows, n_bins, 2)
    sum_score = xp.bin_sum(keys >> 1, rows * n_bins, np.asarray(scores)[resamples].ravel())
    return BinTable(edges, pairs.sum(-1), sum_score.reshape(rows, n_bins),
                    pairs[..., 1].astype(np.float64), strategy, closed, n_samples=size)


def _bin_table_quantile(scores, targets, n_bins, closed, weights=None) -> BinTable:
    """Equal-mass table: one sort of the (score, target) pairs, then segment sums."""
    if weights is None:
        s, t = sorted_pairs(scores, targets)
        table = table_from_sorted(s, t, _quantile_edges_sorted(s, n_bins), closed,
                                  "quantile")
    else:  # an argsort carries the weights along (sorted_pairs packs score and target only)
        order = xp.argsort_(scores)
        s, t, w = scores[order], targets[order], weights[order]
        table = table_from_sorted(s, t, _weighted_quantile_edges_sorted(s, w, n_bins),
                                  closed, "quantile", sorted_weights=w)
    keep = _edges_of_nonempty_bins(table.count, closed)
    if bool(keep.all()):
        return table
    nonempty = table.count > 0  # tied scores left bins empty: merge them away
    return BinTable(table.edges[keep], table.count[nonempty], table.sum_score[nonempty],
                    table.sum_target[nonempty], "quantile", closed, table.n_samples)


def _segment_sums(values, pos, count):
    """float64 sums of ``values[pos[j]:pos[j + 1]]`` in one pass (zero for empty segments)."""
    if xp.is_torch(values):
        cs = xp.cumsum0(values)
        return cs[pos[1:]] - cs[pos[:-1]]
    out = np.zeros(len(count), dtype=np.float64)
    nonempty = count > 0
    # consecutive non-empty starts delimit the segments: empty ones have no length
    out[nonempty] = np.add.reduceat(values, pos[:-1][nonempty], dtype=np.float64)
    return out


def _edge_positions(sorted_values, edges, right: bool, n: int):
    """How many sorted values lie at or below (``right``) / below each edge; ends 0 and n."""
    pos = xp.searchsorted(sorted_values, _edges_in_dtype(edges, sorted_values, right),
                          right=right)
    pos[0] = 0
    pos[-1] = n
    return pos


def _edges_in_dtype(edges, values, right: bool):
    """float64 ``edges`` rounded into the float dtype of ``values``, comparisons unchanged.

    Searching float32 values for float64 edges would make a float64 copy of all the
    values.  Instead each edge is rounded down (``right``: ``v <= e`` iff
    ``v <= down(e)``) or up (``v < e`` iff ``v < up(e)``) to the nearest value of the
    values' dtype, which gives the same counts for every value of that dtype.
    """
    if values.dtype == edges.dtype:
        return edges
    lib = xp.torch_module() if xp.is_torch(edges) else np
    rounded = edges.to(values.dtype) if lib is not np else edges.astype(values.dtype)
    away = rounded > edges if right else rounded < edges  # compared exactly, in float64
    toward = lib.full_like(rounded, -lib.inf if right else lib.inf)
    return lib.where(away, lib.nextafter(rounded, toward), rounded)


def _edges_of_nonempty_bins(count, closed):
    """Mask of the edges that stay when empty bins are merged away.

    An empty bin is removed by dropping its open-side edge, which merges it
    into its neighbour without moving any sample.
    """
    nonempty = count > 0
    true = nonempty[:1] | True
    if closed == "right":  # (a, b]: drop a; the first bin [0, b] is never empty
        parts = (true, nonempty[1:], true)
    else:  # [a, b): drop b; the last bin [a, 1] is never empty
        parts = (true, nonempty[:-1], true)
    if xp.is_torch(count):
        return xp.torch_module().cat(parts)
    return np.concatenate(parts)


def sorted_pairs(scores: Array, targets: Array) -> tuple[Array, Array]:
    """Scores sorted increasingly, with their 0/1 targets (as booleans) in the same order.

    Ties are ordered by target (0 before 1), so the result depends only on the
    multiset of (score, target) pairs, never on the input order.  Each pair is
    packed into one integer key, the score's bit pattern shifted left with the
    target in the lowest bit, and the keys are sorted once: for non-negative
    floats the bit patterns are ordered like the values.  On numpy the keys are
    unsigned integers as wide as the scores (a float32 sort costs about one
    ``np.sort`` of the scores, several times less than ``argsort``); on torch they
    are int64.  ``scores`` must be non-negative (validated scores lie in [0, 1]);
    ``-0.0`` comes back as ``0.0``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import sorted_pairs
    >>> s, t = sorted_pairs(np.array([0.7, 0.2, 0.7, 0.5]), np.array([1, 0, 0, 1]))
    >>> s.tolist(), t.tolist()  # the tie at 0.7 is ordered by target
    ([0.2, 0.5, 0.7, 0.7], [False, True, False, True])
    """
    if xp.is_torch(scores):
        torch = xp.torch_module()
        width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[scores.element_size()]
        key = (scores.view(width).to(torch.int64) << 1) | targets.to(torch.int64)
        key = key.sort().values
        return (key >> 1).to(width).view(scores.dtype), (key & 1).bool()
    s = np.asarray(scores)
    if not np.issubdtype(s.dtype, np.floating) or s.dtype.itemsize > 8:
        s = s.astype(np.float64)
    unsigned = np.dtype(f"u{s.itemsize}")
    key = s.view(unsigned) << unsigned.type(1)
    key |= np.asarray(targets, dtype=bool)
    key.sort()
    t = (key & unsigned.type(1)).astype(bool)
    key >>= unsigned.type(1)
    return key.view(s.dtype), t


def table_from_sorted(sorted_scores: Array, sorted_targets: Array, edges: Array,
                      closed: Closed = "right", strategy: str = "explicit",
                      sorted_weights: Array | None = None) -> BinTable:
    """Bin table of already-sorted pairs: O(B log N) edge search, then O(N) segment sums.

    ``sorted_weights`` (float64, in the same order) makes a weighted table.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import bin_table, sorted_pairs, table_from_sorted, uniform_edges
    >>> rng = np.random.default_rng(0)
    >>> scores, targets = rng.random(1000), rng.random(1000) < 0.5
    >>> t = table_from_sorted(*sorted_pairs(scores, targets), uniform_edges(10))
    >>> bool(np.array_equal(t.count, bin_table(scores, targets, n_bins=10).count))
    True
    """
    n = int(sorted_scores.shape[0])
    pos = _edge_positions(sorted_scores, edges, closed == "right", n)
    count = pos[1:] - pos[:-1]
    if sorted_weights is not None:
        w = sorted_weights
        return BinTable(edges, _segment_sums(w, pos, count),
                        _segment_sums(w * sorted_scores, pos, count),
                        _segment_sums(w * sorted_targets, pos, count), strategy, closed,
                        n_samples=float(w.sum()))
    return BinTable(edges, count, _segment_sums(sorted_scores, pos, count),
                    _segment_sums(sorted_targets, pos, count), strategy, closed, n_samples=n)


def table_from_ranks(sorted_scores: Array, sorted_targets: Array, boundaries: Array,
                     edges: Array | None = None, closed: Closed = "right",
                     strategy: str = "rank", prefix: tuple | None = None) -> BinTable:
    """Bin table of sorted pairs split at rank ``boundaries`` (``0 = b_0 <= ... <= b_B = N``).

    Bin ``j`` holds the sorted samples ``boundaries[j]:boundaries[j+1]``.  When
    ``edges`` is None they are the midpoints between neighbouring bins' scores.
    ``prefix`` may pass precomputed ``(cumsum0(scores), cumsum0(targets))``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.binning import table_from_ranks
    >>> s, t = np.array([0.1, 0.2, 0.6, 0.7, 0.9]), np.array([0, 0, 1, 0, 1])
    >>> table = table_from_ranks(s, t, np.array([0, 2, 5]))  # bins: 2 and 3 samples
    >>> table.count.tolist(), table.mean_target.tolist(), table.edges.tolist()
    ([2, 3], [0.0, 0.6666666666666666], [0.0, 0.4, 1.0])
    """
    cs, ct = prefix if prefix is not None else (xp.cumsum0(sorted_scores),
                                                 xp.cumsum0(sorted_targets))
    lo, hi = boundaries[:-1], boundaries[1:]
    if edges is None:
        s = xp.as_float64(sorted_scores)
        inner = (s[hi[:-1] - 1] + s[hi[:-1]]) / 2
        edges = xp.like(np.concatenate([[0.0], xp.to_numpy(inner), [1.0]]), sorted_scores)
    return BinTable(edges, hi - lo, cs[hi] - cs[lo], ct[hi] - ct[lo], strategy, closed,
                    n_samples=int(sorted_scores.shape[0]))
