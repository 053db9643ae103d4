"""Streaming, mergeable calibration statistics: :class:`CalibrationAccumulator`.

Binned metrics on *fixed* edges only need per-bin sums, so a stream of batches
can be reduced to a state of fixed size and states of different workers can be
added.  The accumulator keeps

* the top-label bin table of the binning engine (:func:`calkit.binning.bin_table`
  on uniform or explicit edges): count, score sum and target sum per bin;
* optionally the class-wise tables, one per class (``classwise=True``);
* the sums of the per-sample Brier score and negative log-likelihood.

Its memory is ``O(n_bins x n_classes)`` whatever the number of samples, and
:meth:`~CalibrationAccumulator.compute` reduces the tables with the very
functions the batch metrics use (:func:`calkit.metrics.error_from_table`,
:func:`calkit.metrics.debiased_error_from_table`), so the streamed values equal
the batch values on the concatenated data up to float64 rounding.

Equal-mass ECE, sweep ECE, smooth ECE and the AUROC of the confidence have no
fixed-size sufficient statistics.  With ``exact=True`` the accumulator also keeps
one (score, target) pair per sample, compactly: the top-label confidence as
float32 (``pair_dtype``) and correctness as bool, 5 bytes per sample instead of
the ``4 K`` bytes of a float32 ``(N, K)`` probability matrix (10^9 samples:
5 GB).  :meth:`~CalibrationAccumulator.compute` then concatenates the pairs
(transiently about 13 more bytes per sample while sorting).  For float32
probabilities the pairs are exact; float64 confidences are rounded to float32
(relative error below 6e-8) unless ``pair_dtype="float64"``.

Numpy and torch inputs share the code path: with torch tensors the state stays
on the tensors' device (all sums float64).  States are plain sums, so merging is
addition: :meth:`~CalibrationAccumulator.merge` here, an all-reduce in
:mod:`calkit.distributed`, a tree of merges on Dask in :mod:`calkit.chunked`.
"""

from __future__ import annotations

import numpy as np

from calkit import _array as xp
from calkit._array import Array
from calkit._stream_state import (
    CLASSWISE_KEYS,
    TABLE_KEYS,
    added,
    check_state,
    concatenate_pairs,
    copy_array,
    make_pair,
)
from calkit._validation import (
    Classification,
    check_classification,
    check_n_bins,
    check_option,
    check_positive,
)
from calkit.binning import CLOSED, BinTable, _bin_table, _bin_table_explicit, _check_edges
from calkit.metrics._views import resolve_view, score_target_pairs
from calkit.metrics.binned import debiased_error_from_table, error_from_table
from calkit.metrics.decompositions import murphy_from_table, signed_parts_from_table
from calkit.metrics.ood import _auc, _roc_points
from calkit.metrics.scores import _brier_per_sample, _true_class_prob
from calkit.metrics.smooth import smooth_ece_from_scores
from calkit.metrics.sweep import sweep_table

__all__ = ["CalibrationAccumulator"]

PAIR_DTYPES = ("float32", "float64")
#: views with one (score, target) pair per sample
STREAM_VIEWS = ("top_label", "positive", "confidence")


class CalibrationAccumulator:
    """Fixed-size, mergeable state of calibration metrics over a stream of batches.

    Parameters
    ----------
    n_bins : int, default=15
        Number of equal-width bins (edges ``k / n_bins``, as
        ``calibration_error(strategy="uniform")``); ignored when ``edges`` is given.
        A number: the bins are fixed before any data is seen, so a bin-count
        rule (``"cube_root"``...) is refused; resolve one for a known total with
        ``calkit.binning.resolve_n_bins(rule, n_samples)[0]``.
    closed : {"right", "left"}, default="right"
        Bin edge convention (:mod:`calkit.binning`).
    edges : array of shape (B + 1,), optional
        Explicit increasing bin edges instead of uniform ones.
    classwise : bool, default=False
        Also keep one table per class (memory ``3 x n_classes x n_bins``) and
        report ``classwise_ece`` (``calibration_error(view="classwise")``).
    exact : bool, default=False
        Also keep one (confidence, correct) pair per sample, for the metrics
        without fixed-size statistics: ``ece_quantile`` and
        ``debiased_ece_quantile`` (``n_bins`` equal-mass bins), ``sweep_ece``,
        ``smooth_ece`` and ``auroc`` (of the confidence separating right from
        wrong predictions).  Costs 5 bytes per sample (9 with float64 pairs).
    pair_dtype : {"float32", "float64"}, default="float32"
        Storage type of the confidences in exact mode.
    sum_tol : float, optional
        Tolerance on rows of ``y_prob`` summing to one.
    eps : float, optional
        NLL clipping of the true-class probability; default: the machine
        epsilon of the first batch's dtype (as :func:`calkit.nll`).
    view : {"top_label", "positive", "confidence"}, optional
        Which (score, target) pairs the binned metrics look at, as for
        :func:`calkit.calibration_error`: ``(N, K)`` batches default to the
        top-label view; 1-D batches need it said (``"positive"``: ``P(y = 1)``
        of a binary task; ``"confidence"``: the confidence of each answer with
        0/1 correctness as labels; ``"top_label"``: ``max(p, 1 - p)``), and a
        1-D batch without it is refused rather than guessed.

    Attributes
    ----------
    n_samples : int
        Samples seen so far.
    n_classes : int or None
        Classes of the inputs (fixed by the first batch).

    Notes
    -----
    :meth:`compute` returns a dict with ``n_samples``, ``ece``, ``rmsce``,
    ``mce`` (top-label, fixed bins), ``debiased_ece_uniform`` (Kumar et al.'s L2
    estimator on the same fixed bins), ``signed_ece``, ``ece_over`` and
    ``ece_under`` (:func:`calkit.metrics.signed_ece` on the same bins: mean
    score minus accuracy, and the ECE of the over- and under-confident bins),
    ``reliability``, ``resolution`` and ``uncertainty`` (Murphy's terms of
    :func:`calkit.metrics.brier_decomposition` for the view's pairs on the same
    bins; not of the ``brier`` key, which is the multiclass Brier score; the
    within-bin terms need two more sums and are not kept),
    ``accuracy``, ``brier``, ``nll``, plus ``classwise_ece`` and the exact-mode
    keys when enabled.  The Hosmer-Lemeshow test groups by equal mass, so it
    is exact only from the pairs of ``exact=True``.  Values are floats
    for numpy input and 0-d float64 tensors on the input's device for torch.

    Examples
    --------
    >>> import numpy as np
    >>> import calkit
    >>> from calkit.stream import CalibrationAccumulator
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=1000)
    >>> y = rng.integers(0, 3, size=1000)
    >>> acc = CalibrationAccumulator(n_bins=15)
    >>> for start in range(0, 1000, 300):
    ...     acc = acc.update(y[start:start + 300], p[start:start + 300])
    >>> out = acc.compute()
    >>> out["n_samples"], abs(out["ece"] - calkit.ece(y, p)) < 1e-12
    (1000, True)
    >>> left, right = CalibrationAccumulator(), CalibrationAccumulator()
    >>> left, right = left.update(y[:400], p[:400]), right.update(y[400:], p[400:])
    >>> abs(left.merge(right).compute()["brier"] - calkit.brier_score(y, p)) < 1e-12
    True
    """

    def __init__(self, n_bins: int = 15, *, closed: str = "right", edges=None,
                 classwise: bool = False, exact: bool = False, pair_dtype: str = "float32",
                 sum_tol: float | None = None, eps: float | None = None,
                 view: str | None = None) -> None:
        check_option(closed, "closed", CLOSED)
        if view is not None:
            check_option(view, "view", STREAM_VIEWS)
        self.view = view
        check_option(pair_dtype, "pair_dtype", PAIR_DTYPES)
        for flag, value in (("classwise", classwise), ("exact", exact)):
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        if edges is not None:
            try:
                edges = np.asarray(xp.to_numpy(edges), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"edges must be an array of numbers: {exc}") from None
            edges = np.asarray(xp.to_numpy(_check_edges(edges, np.zeros(1))))
            n_bins = len(edges) - 1
        self.n_bins = check_n_bins(n_bins)
        self.closed = closed
        self.edges = edges
        self.classwise = bool(classwise)
        self.exact = bool(exact)
        self.pair_dtype = pair_dtype
        self.sum_tol = None if sum_tol is None else check_positive(sum_tol, "sum_tol")
        self.eps = None if eps is None else check_positive(eps, "eps")
        for name, value, high in (("sum_tol", self.sum_tol, np.inf), ("eps", self.eps, 1.0)):
            if value is not None and not value < high:
                raise ValueError(f"{name} must be finite{' and below 1' if high == 1 else ''}, "
                                 f"got {value!r}")
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> CalibrationAccumulator:
        """Forget all samples (the settings stay)."""
        self._state: dict[str, Array] | None = None
        self._pairs: list[tuple[Array, Array]] = []
        self.n_classes: int | None = None
        self._binary: bool | None = None
        self._nll_eps: float | None = self.eps
        return self

    @property
    def n_samples(self) -> int:
        return 0 if self._state is None else int(self._state["count"].sum())

    def settings(self) -> dict:
        """The constructor settings (two accumulators merge only if these agree)."""
        edges = None if self.edges is None else self.edges.tolist()
        return dict(n_bins=self.n_bins, closed=self.closed, edges=edges,
                    classwise=self.classwise, exact=self.exact, pair_dtype=self.pair_dtype,
                    view=self.view)

    def copy(self) -> CalibrationAccumulator:
        """An independent accumulator with the same settings and state."""
        out = CalibrationAccumulator(**self._constructor_args())
        return out.merge(self)

    def _constructor_args(self) -> dict:
        return dict(n_bins=self.n_bins, closed=self.closed, edges=self.edges,
                    classwise=self.classwise, exact=self.exact, pair_dtype=self.pair_dtype,
                    sum_tol=self.sum_tol, eps=self.eps, view=self.view)

    def state_dict(self) -> dict:
        """The state: metadata and the arrays that add up (see :meth:`load_state_dict`).

        ``arrays`` maps names to numpy arrays or tensors (copies, so later
        updates change neither); ``pairs`` is the list of (confidence, correct)
        chunks of exact mode (the chunks themselves are shared: never modified
        in place by the accumulator).
        """
        arrays = None if self._state is None else {k: copy_array(v)
                                                   for k, v in self._state.items()}
        return dict(settings=self.settings(), n_classes=self.n_classes, binary=self._binary,
                    nll_eps=self._nll_eps, arrays=arrays, pairs=list(self._pairs))

    def load_state_dict(self, state: dict) -> CalibrationAccumulator:
        """Replace the state by a validated copy of ``state`` (from :meth:`state_dict`).

        Raises ``ValueError`` for a state of other settings or one that no
        stream of batches could have produced (shapes, negative or fractional
        counts, sums outside ``[0, count]``, NaN, pairs of the wrong length);
        this accumulator is then left unchanged.
        """
        self._set_state(check_state(state, self.settings(), self.sum_tol))
        return self

    def _set_state(self, state: dict) -> None:
        """Commit a checked state (the only place besides :meth:`reset` that assigns it)."""
        self._state, self._pairs = state["arrays"], list(state["pairs"])
        self.n_classes, self._binary = state["n_classes"], state["binary"]
        self._nll_eps = state["nll_eps"]

    # ------------------------------------------------------------------ update / merge
    def update(self, y_true, y_prob) -> CalibrationAccumulator:
        """Add a batch: labels ``(N,)`` (or one-hot) and probabilities ``(N, K)`` or ``(N,)``.

        Inputs are validated like the batch metrics' (:func:`calkit.calibration_error`).
        An empty batch (``N = 0``) is ignored.  All or nothing: a batch that
        raises leaves the state as it was.  Returns ``self``.
        """
        if _n_rows(y_prob) == 0 and _n_rows(y_true) == 0:
            return self
        y_true = _labels_like(y_true, y_prob)
        data = check_classification(y_true, y_prob, sum_tol=self.sum_tol)
        self._check_classes(data.n_classes, data.binary)
        ((scores, targets),) = score_target_pairs(
            data, resolve_view(self.view, data, STREAM_VIEWS))
        eps = _machine_eps(data.y_prob.dtype) if self._nll_eps is None else self._nll_eps
        arrays = added(self._state, self._batch_state(data, eps, scores, targets))
        pair = make_pair(scores, targets, self.pair_dtype) if self.exact else None
        self._state, self._nll_eps = arrays, eps  # commit: nothing below can fail
        self.n_classes, self._binary = data.n_classes, data.binary
        if pair is not None:
            self._pairs.append(pair)
        return self

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """Add the state of ``other`` (same settings) to this one; returns ``self``.

        All or nothing, like :meth:`update`.
        """
        if not isinstance(other, CalibrationAccumulator):
            raise TypeError(f"can only merge a CalibrationAccumulator, got {type(other).__name__}")
        if other.settings() != self.settings():
            raise ValueError(f"cannot merge accumulators with different settings: "
                             f"{self.settings()} and {other.settings()}")
        if other._state is None:
            return self
        self._check_classes(other.n_classes, other._binary)
        arrays = added(self._state, other._state)
        pairs = list(other._pairs)
        self._state = arrays
        self._nll_eps = other._nll_eps if self._nll_eps is None else self._nll_eps
        self.n_classes, self._binary = other.n_classes, other._binary
        self._pairs.extend(pairs)
        return self

    def _check_classes(self, n_classes: int, binary: bool) -> None:
        """Raise unless a batch of this form may join the state (nothing is changed)."""
        if self.n_classes is not None and (n_classes, binary) != (self.n_classes, self._binary):
            def form(k, b):
                return "1-D binary probabilities" if b else f"{k} classes"
            raise ValueError(f"this batch has {form(n_classes, binary)} but earlier ones had "
                             f"{form(self.n_classes, self._binary)}")

    def _table(self, scores: Array, targets: Array) -> BinTable:
        if self.edges is None:
            return _bin_table(scores, targets, self.n_bins, "uniform", self.closed)
        return _bin_table_explicit(scores, targets, xp.like(self.edges, scores), self.closed)

    def _batch_state(self, data: Classification, nll_eps: float, scores: Array,
                     targets: Array) -> dict:
        """The additive statistics of one validated batch (NLL clipped at ``nll_eps``);
        ``scores``, ``targets``: its pairs in the accumulator's view."""
        table = self._table(scores, targets)
        state = dict(zip(TABLE_KEYS, (table.count, table.sum_score, table.sum_target),
                         strict=True))
        if self.classwise:
            tables = [self._table(s, t) for s, t in score_target_pairs(data, "classwise")]
            stack = xp.torch_module().stack if xp.is_torch(table.count) else np.stack
            for key, name in zip(CLASSWISE_KEYS, TABLE_KEYS, strict=True):
                state[key] = stack([getattr(t, name) for t in tables])
        p_true = _true_class_prob(data)
        brier = _brier_per_sample(data, p_true)
        clipped = p_true.clamp(min=nll_eps) if xp.is_torch(p_true) else np.maximum(
            p_true, nll_eps)
        state["brier"] = brier.sum()
        state["nll"] = -(clipped.log() if xp.is_torch(clipped) else np.log(clipped)).sum()
        return state

    # ------------------------------------------------------------------ results
    @property
    def table(self) -> BinTable:
        """The accumulated top-label bin table (fixed edges)."""
        self._require_samples()
        return self._make_table(*(self._state[k] for k in TABLE_KEYS))

    def _make_table(self, count, sum_score, sum_target) -> BinTable:
        edges = self.edges if self.edges is not None else np.arange(
            self.n_bins + 1, dtype=np.float64) / self.n_bins
        edges = xp.like(edges, count) if xp.is_torch(count) else edges
        strategy = "uniform" if self.edges is None else "explicit"
        return BinTable(edges, count, sum_score, sum_target, strategy, self.closed,
                        n_samples=self.n_samples)

    def _require_samples(self) -> None:
        if self._state is None:
            raise ValueError("the accumulator holds no samples: call update() first")

    def compute(self) -> dict:
        """All metrics of the accumulated samples (see the class Notes for the keys)."""
        self._require_samples()
        table = self.table
        n = table.n_samples
        out = {"n_samples": n}
        for name, norm in (("ece", "l1"), ("rmsce", "l2"), ("mce", "max")):
            out[name] = error_from_table(table, norm)
        out["debiased_ece_uniform"] = debiased_error_from_table(table)
        out["signed_ece"], out["ece_over"], out["ece_under"] = signed_parts_from_table(table)
        out.update(murphy_from_table(table))
        out["accuracy"] = table.sum_target.sum() / n
        out["brier"] = self._state["brier"] / n
        out["nll"] = self._state["nll"] / n
        if self.classwise:
            per_class = self._make_table(*(self._state[k] for k in CLASSWISE_KEYS))
            out["classwise_ece"] = error_from_table(per_class, "l1").mean()
        if self.exact:
            out.update(self._exact_metrics())
        return {k: v if k == "n_samples" else xp.scalar(v) for k, v in out.items()}

    def pairs(self) -> tuple[Array, Array]:
        """Exact mode: all (confidence, correct) pairs, concatenated."""
        self._require_samples()
        if not self.exact:
            raise ValueError("pairs are kept only with exact=True")
        return concatenate_pairs(self._pairs)

    def _exact_metrics(self) -> dict:
        scores, targets = self.pairs()
        quantile = _bin_table(scores, targets, self.n_bins, "quantile", self.closed)
        out = {"ece_quantile": error_from_table(quantile, "l1"),
               "debiased_ece_quantile": debiased_error_from_table(quantile),
               "sweep_ece": error_from_table(sweep_table(scores, targets), "l1"),
               "smooth_ece": smooth_ece_from_scores(scores, targets).value}
        conf, correct = xp.to_numpy(scores).astype(np.float64), xp.to_numpy(targets)
        right, wrong = conf[correct], conf[~correct]
        auroc = _auc(*_roc_points(right, wrong)[1:]) if len(right) and len(wrong) else np.nan
        out["auroc"] = xp.like(auroc, scores) if xp.is_torch(scores) else auroc
        if xp.is_torch(scores):
            out["sweep_ece"] = xp.like(out["sweep_ece"], scores)
        return out

    def __repr__(self) -> str:
        return (f"CalibrationAccumulator(n_samples={self.n_samples}, n_bins={self.n_bins}, "
                f"closed={self.closed!r}, classwise={self.classwise}, exact={self.exact})")


def _n_rows(x) -> int | None:
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else None


def _labels_like(y_true, y_prob):
    """Torch labels with numpy probabilities as numpy (the state follows the probabilities)."""
    if xp.is_torch(y_true) and not xp.is_torch(y_prob):
        return y_true.detach().cpu().numpy()
    return y_true


def _machine_eps(dtype) -> float:
    """Machine epsilon of a numpy or torch floating dtype (bfloat16 included)."""
    torch = xp.torch_module()
    if torch is not None and isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)
