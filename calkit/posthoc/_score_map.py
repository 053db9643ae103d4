"""Calibrators that recalibrate one probability at a time, and their multiclass reductions.

Histogram binning, isotonic regression and spline calibration each learn a
map ``[0, 1] -> [0, 1]`` from scores and 0/1 outcomes.  On ``(N, K)`` logits
they are applied to ``p = softmax(z)`` in one of two ways (``multiclass=``):

``"top_label"`` (default)
    One map, fitted on the top-label confidence ``max_k p_k`` against whether
    the prediction is right (Guo et al. 2017; Gupta & Ramdas 2022).  At predict
    time the top class gets the calibrated confidence ``c`` and the other
    classes share ``1 - c`` in proportion to ``p`` (:func:`rescale_top_label`),
    each capped just below ``c`` and floored at ``floor``, so **the predicted
    class never changes** (accuracy is that of the model, as for temperature
    scaling): a runner-up that proportional rescaling would lift above ``c`` is
    capped and its excess goes to the other classes.  ``c`` is clipped to
    ``[1/K, 1 - (K - 1) floor]`` first (a top class below ``1/K`` cannot be the
    largest).  The top-label confidence is thus the map's (before the mixture
    with temperature scaling below).
``"one_vs_rest"``
    One map per class, fitted on ``p_k`` against ``y == k`` (Zadrozny & Elkan
    2002); the mapped values are renormalised to sum to one (a row mapped to all
    zeros becomes uniform), then floored (:func:`floor_probabilities`).  A class
    absent from the calibration set gets a map that is 0 everywhere.  This **can
    change the predicted class**; ``accuracy_change_`` records the change of
    accuracy on the fitting data (0 for ``"top_label"``).

``floor`` (default ``1e-12``) is the least probability any class gets, so a
class the map sends to 0 (a bin whose samples were all right, a spline clipped
at 1) never makes the log-loss infinite.

**Mixing with temperature scaling** (``ts_weight``, default ``"auto"``).  A
floor keeps the log-loss finite, not small, and a top-label map leaves two
sources of log-loss alone (``benchmarks/top_label_nll_split.py`` splits the NLL
into the binary log-loss of the top-class confidence and the log-loss of how
the rest is shared): (a) the map's confidence is an estimate, a step or bin
value from a few hundred samples, noisier than a one-parameter fit, and its top
step sits at (or near) 1 when that step's samples were all right, so every new
wrong prediction there costs about ``-log(floor)``; (b) the other classes share
``1 - c`` in proportion to the input, so an over-confident model's tiny
probabilities for its runners-up are kept (on the CIFAR-100 DenseNet this
"rest" part is 0.61-0.64 nats for every top-label map against 0.50 for
temperature scaling).  The output is therefore the mixture ``(1 - a) q + a r`` of the map's
output ``q`` and temperature scaling ``r = softmax(X / T)`` (``T`` fitted by
NLL on the same data, :class:`~calkit.posthoc.TemperatureScaling`; floored
alike), as :class:`~calkit.posthoc.ConsistencyCalibration` mixes its votes.
With ``"auto"`` the weight ``a`` minimises the **out-of-fold** log-loss of
5-fold cross-validation on the fitting data: the map is refitted on four folds
and predicts the fifth (folds dealt round in score order,
:func:`calkit.posthoc._mixture.score_folds`), then ``a`` minimises the convex
mean log-loss of the out-of-fold mixtures
(:func:`calkit.posthoc._mixture.cross_val_weight`; a cross-validated linear
pool, the stacking of Breiman 1996 with a log-loss).  ``a = 1`` is a candidate,
so the mixture's out-of-fold NLL is at most temperature scaling's NLL on the
fitting data, which is at most the input's (``T = 1`` is a candidate of that
fit); ``cv_nll_`` records the three.  The final map is the one fitted on all
the data.  For ``"top_label"`` both ``q`` and ``r`` rank the input's top class
strictly first, so the mixture never changes the predicted class either.
``ts_weight=0`` gives the map alone (the published estimators, with the rest
shared as above); a number in ``[0, 1]`` fixes ``a``.  For 1-D scores the map
is used alone (``ts_weight_ = 0``: isotonic scores need not be probabilities).

A 1-D ``X`` is one binary score per sample (the probability of the positive
class, or a confidence with 0/1 correctness as ``y``): one map is fitted on it
against ``y == classes_[1]``, and ``predict_proba`` of 1-D scores returns the
1-D calibrated probabilities (``multiclass`` plays no part).

``sample_weight`` in ``fit`` weights each sample in the map's fit, in the
temperature and in the mixture weight (integer weights give the calibrator of
the samples repeated by their weights).

The fitted maps are stored as flat node arrays (``nodes_x_``, ``nodes_y_``,
with ``offsets_`` marking where each map starts), so ``save`` writes them as
plain numbers.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_option, check_scores
from calkit.logits import softmax
from calkit.posthoc._accuracy import accuracy_change
from calkit.posthoc._base import (
    BaseCalibrator,
    check_fit_binary_targets,
    check_fit_logits,
    check_predict_logits,
)
from calkit.posthoc._mixture import (
    MIXTURE_FITTED_SPEC,
    check_mixture_attributes,
    check_ts_weight,
    check_ts_weight_for_1d,
    fit_mixture,
)
from calkit.posthoc._persistence import ValueSpec

MULTICLASS = ("top_label", "one_vs_rest")


#: relative gap between the top class and any other class in a top-label output row
TIE_MARGIN = 1e-9


def rescale_top_label(p: np.ndarray, c: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Rows of ``p`` with the top class set to ``c`` and the others sharing ``1 - c``.

    The others keep their proportions, ``o_k = clip(lam * p_k, floor, cap)`` with
    one ``lam`` per row chosen so the row sums to one: ``cap = c / (1 + TIE_MARGIN)``
    keeps the top class strictly the largest entry (the argmax never moves) and
    ``floor`` is the least probability of any class.  For this to be possible ``c``
    is first clipped to ``[(1 + TIE_MARGIN) / K, 1 - (K - 1) floor]`` (no row
    whose largest entry is below ``1 / K`` exists).  Rows whose proportional
    rescaling already meets both bounds are exactly proportional.

    Parameters
    ----------
    p : ndarray of shape (N, K)
        Probabilities (rows sum to one).
    c : ndarray of shape (N,)
        Calibrated confidence of each row's top class.
    floor : float, default=0
        Least probability given to any class, in ``[0, 1 / K)``.

    Returns
    -------
    ndarray of shape (N, K)

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._score_map import rescale_top_label
    >>> rescale_top_label(np.array([[0.6, 0.3, 0.1]]), np.array([0.8])).round(6).tolist()
    [[0.8, 0.15, 0.05]]
    >>> out = rescale_top_label(np.array([[0.4, 0.35, 0.15, 0.1]]), np.array([0.3]))
    >>> out.round(6).tolist(), int(out.argmax())   # runner-up capped just below 0.3
    ([[0.3, 0.3, 0.24, 0.16]], 0)
    """
    n, k = p.shape
    _check_floor(floor, k)
    rows = np.arange(n)
    top = np.argmax(p, axis=1)
    c = np.clip(np.asarray(c, dtype=np.float64), (1 + TIE_MARGIN) / k, 1.0 - (k - 1) * floor)
    cap = c / (1 + TIE_MARGIN)
    others = np.array(p, dtype=np.float64)
    others[rows, top] = 0.0
    rest = others.sum(axis=1)  # summed directly: 1 - p_top loses digits when p_top ~ 1
    # a rest of subnormal size would overflow the proportional scale: shared by clipping
    shared = rest >= np.finfo(np.float64).tiny
    scale = (1.0 - c) / np.where(shared, rest, 1.0)
    out = others * scale[:, None]
    out[rows, top] = np.inf  # excluded from the bound checks below
    bad = ~shared | (out.min(axis=1) < floor) | \
        (np.where(np.isinf(out), -np.inf, out).max(axis=1) > cap)
    if bad.any():
        out[bad] = _clipped_share(others[bad], top[bad], 1.0 - c[bad], floor, cap[bad])
    out[rows, top] = c
    return out


def _clipped_share(q, top, total, lo, hi):
    """Rows ``clip(lam * q, lo, hi)`` (top column excluded) summing to ``total``.

    The sum is continuous and non-decreasing in ``lam``: bisection in ``log lam``
    (64 halvings of a bracket of width < 1500), then the unclipped entries are
    rescaled so the row sums to ``total`` exactly.
    """
    m, k = q.shape
    rows = np.arange(m)
    tiny = np.finfo(np.float64).tiny
    q = np.maximum(q, tiny)  # exact zeros share like the smallest positive number
    q[rows, top] = 0.0
    hi = hi[:, None]
    log_lo = np.full(m, np.log(tiny))
    log_hi = np.log(hi[:, 0]) - np.log(tiny) + 1.0
    for _ in range(64):
        mid = 0.5 * (log_lo + log_hi)
        s = np.clip(np.exp(mid)[:, None] * q, lo, hi)
        s[rows, top] = 0.0
        low = s.sum(axis=1) < total
        log_lo = np.where(low, mid, log_lo)
        log_hi = np.where(low, log_hi, mid)
    out = np.clip(np.exp(log_hi)[:, None] * q, lo, hi)
    out[rows, top] = 0.0
    free = (out > lo) & (out < hi)
    free[rows, top] = False
    clamped = np.where(free, 0.0, out).sum(axis=1)
    free_sum = np.where(free, out, 0.0).sum(axis=1)
    fix = np.where(free_sum > 0, (total - clamped) / np.where(free_sum > 0, free_sum, 1.0), 1.0)
    return np.where(free, out * fix[:, None], out)


def _check_floor(floor, k: int) -> None:
    if isinstance(floor, bool) or not isinstance(floor, Real) or not 0 <= floor < 1 / k:
        raise ValueError(f"floor must be a number in [0, 1/K) = [0, {1 / k:.3g}), "
                         f"got {floor!r}")


def floor_probabilities(q: np.ndarray, floor: float) -> np.ndarray:
    """Rows of ``q`` with every entry at least ``floor``, mass taken proportionally.

    ``(1 - K floor) q + floor``: the order of the entries within a row is kept.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._score_map import floor_probabilities
    >>> floor_probabilities(np.array([[1.0, 0.0]]), 0.01).tolist()
    [[0.99, 0.01]]
    """
    _check_floor(floor, q.shape[1])
    k = q.shape[1]
    return q * (1.0 - k * floor) + floor if floor > 0 else q


class _ScoreMapCalibrator(BaseCalibrator):
    """Top-label / one-vs-rest machinery; subclasses define ``_fit_map`` and ``_apply_map``."""

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "nodes_x_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "nodes_y_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "offsets_": ValueSpec("array", shape=("*", 2), dtype="int64", ge=0),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        **MIXTURE_FITTED_SPEC,
        "accuracy_change_": ValueSpec("unsaved")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "multiclass": ValueSpec("str", choices=MULTICLASS),
        "floor": ValueSpec("float", ge=0, lt=0.5)}
    #: nodes_x_ has this many more entries than nodes_y_ per map (bin edges vs values: 1)
    _extra_x_nodes: ClassVar[int] = 0
    _native_1d = True
    #: "probability": 1-D scores must lie in [0, 1]; "real": any finite score
    _score_range: ClassVar[str] = "probability"

    @property
    def _keeps_argmax(self) -> bool:
        """Top-label maps keep the argmax by construction; one-vs-rest maps may move it."""
        return self.multiclass == "top_label"

    def _check_params(self) -> None:
        """Validate constructor parameters (subclasses extend it, calling this one)."""
        check_ts_weight(self.ts_weight)

    def _check_fitted_values(self) -> None:
        """Loaded maps: ``offsets_`` cut the nodes into one map per class (one for top-label)."""
        o, x = np.asarray(self.offsets_), np.asarray(self.nodes_x_)
        n_maps = 1 if self.multiclass == "top_label" else self.n_classes_
        if o.shape[0] != n_maps + 1:
            raise ValueError(f"offsets_ must have {n_maps + 1} rows (multiclass="
                             f"{self.multiclass!r}, {self.n_classes_} classes), got {o.shape[0]}")
        lengths = np.diff(o, axis=0)
        if (o[0] != 0).any() or (lengths < 0).any() \
                or o[-1].tolist() != [len(x), len(self.nodes_y_)]:
            raise ValueError("offsets_ must start at 0, never decrease and end at the lengths "
                             "of nodes_x_ and nodes_y_")
        extra = self._extra_x_nodes
        if (lengths[:, 1] < 1).any() or (lengths[:, 0] != lengths[:, 1] + extra).any():
            raise ValueError(f"every map needs at least one value and {extra} more x node(s) "
                             "than values")
        unsorted = np.diff(x) < 0
        unsorted[o[1:-1, 0] - 1] = False  # where one map ends and the next begins
        if unsorted.any():
            raise ValueError("nodes_x_ must be sorted within every map")
        check_mixture_attributes(self)

    def _fit_map(self, scores: np.ndarray, targets: np.ndarray,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        raise NotImplementedError  # pragma: no cover

    def _apply_map(self, x: np.ndarray, y: np.ndarray, scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def fit(self, X, y, sample_weight=None):
        """Fit the map(s) on validation logits ``X`` (N, K) and labels ``y`` (N,).

        ``X`` may instead be 1-D binary scores (module docstring); ``sample_weight``
        (N,) weights the samples.  With ``ts_weight="auto"`` the weight of
        temperature scaling in the output is then chosen by cross-validated NLL.
        """
        check_option(self.multiclass, "multiclass", MULTICLASS)
        self._check_params()
        if getattr(X, "ndim", np.ndim(X)) == 1:
            scores = _check_1d_scores(X, self._score_range)
            targets = check_fit_binary_targets(y, len(scores))
            _check_floor(self.floor, 2)
            check_ts_weight_for_1d(self.ts_weight)
            self._set_nodes(self._fit_nodes([(scores, targets)], sample_weight))
            self.n_classes_ = 2
            self.ts_weight_, self.temperature_, self.cv_nll_ = 0.0, 1.0, {}
            if self._score_range == "probability":  # 1-D: the class is p > 0.5, before and after
                after = self.calibrate_scores(scores) > 0.5
                self.accuracy_change_ = float(np.mean(after == (targets > 0.5))
                                              - np.mean((scores > 0.5) == (targets > 0.5)))
            return self
        z, labels = check_fit_logits(X, y)
        p = softmax(z)
        self.n_classes_ = int(z.shape[1])
        _check_floor(self.floor, self.n_classes_)
        self._set_nodes(self._fit_nodes(self._pairs(p, labels), sample_weight))

        def fit_predict(train, test):  # the maps refitted on 4/5 of the rows predict the rest
            w = None if sample_weight is None else sample_weight[train]
            return self._mapped(p[test], self._fit_nodes(self._pairs(p[train], labels[train]), w))

        fit_mixture(self, z, labels, sample_weight, fit_predict, lambda: self._reference(z))
        self.accuracy_change_ = (0.0 if self.multiclass == "top_label"
                                 else accuracy_change(z, self._predict_proba(z), labels))
        return self

    def _pairs(self, p: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (scores, 0/1 targets) each map is fitted on."""
        if self.multiclass == "top_label":
            return [(p.max(axis=1), (np.argmax(p, axis=1) == labels).astype(np.float64))]
        return [(p[:, k], (labels == k).astype(np.float64)) for k in range(p.shape[1])]

    def _fit_nodes(self, pairs, sample_weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(nodes_x, nodes_y, offsets)`` of the maps fitted on ``pairs``."""
        maps = [self._fit_map(s, t, sample_weight) for s, t in pairs]
        lengths = np.array([[0, 0]] + [[len(x), len(v)] for x, v in maps], dtype=np.int64)
        return (np.concatenate([x for x, _ in maps]).astype(np.float64),
                np.concatenate([v for _, v in maps]).astype(np.float64),
                np.cumsum(lengths, axis=0))

    def _set_nodes(self, nodes) -> None:
        self.nodes_x_, self.nodes_y_, self.offsets_ = nodes

    def _reference(self, z: np.ndarray) -> np.ndarray:
        """``softmax(z / temperature_)`` floored like the map's output (the mixture's other end)."""
        q = softmax(z / float(self.temperature_))
        if self.multiclass == "top_label":
            return rescale_top_label(q, q.max(axis=1), self.floor)
        return floor_probabilities(q, self.floor)

    def calibrate_scores(self, scores, index: int = 0) -> np.ndarray:
        """Apply fitted map ``index`` (0 for top-label; the class for one-vs-rest) to scores.

        The map alone: ``ts_weight_`` plays no part.

        Parameters
        ----------
        scores : array of shape (N,)
            Probabilities in [0, 1].
        index : int, default=0
            Which map.

        Returns
        -------
        ndarray of shape (N,)
            Calibrated scores in [0, 1].
        """
        self._check_fitted()
        o = np.asarray(self.offsets_)
        if not 0 <= index < len(o) - 1:
            raise ValueError(f"index must lie in [0, {len(o) - 2}], got {index}")
        return self._apply_nodes((self.nodes_x_, self.nodes_y_, o), index, scores)

    def _apply_nodes(self, nodes, index: int, scores) -> np.ndarray:
        x, v, o = (np.asarray(a) for a in nodes)
        return np.clip(self._apply_map(x[o[index, 0]:o[index + 1, 0]],
                                       v[o[index, 1]:o[index + 1, 1]],
                                       np.asarray(scores, dtype=np.float64)), 0.0, 1.0)

    def _mapped(self, p: np.ndarray, nodes) -> np.ndarray:
        """Rows of probabilities ``p`` through the maps ``nodes`` alone, floored."""
        if self.multiclass == "top_label":
            return rescale_top_label(p, self._apply_nodes(nodes, 0, p.max(axis=1)), self.floor)
        q = np.stack([self._apply_nodes(nodes, k, p[:, k]) for k in range(p.shape[1])], axis=1)
        total = q.sum(axis=1, keepdims=True)
        q = np.where(total > 0, q / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
        return floor_probabilities(q, self.floor)

    def _predict_proba(self, X):
        if X.ndim == 1:
            floor = self.floor
            return np.clip(self.calibrate_scores(_check_1d_scores(X, self._score_range)),
                           floor, 1.0 - floor)
        z = np.asarray(check_predict_logits(X, self.n_classes_, type(self).__name__),
                       dtype=np.float64)
        q = self._mapped(softmax(z), (self.nodes_x_, self.nodes_y_, self.offsets_))
        a = float(getattr(self, "ts_weight_", 0.0))  # files saved before it: the map
        return q if a == 0 else (1 - a) * q + a * self._reference(z)


def _check_1d_scores(X, score_range: str) -> np.ndarray:
    """1-D scores as float64: in [0, 1] (``"probability"``) or any finite value (``"real"``)."""
    if score_range == "probability":
        return np.asarray(to_numpy(check_scores(X, "X")), dtype=np.float64)
    s = np.asarray(to_numpy(X))
    if s.shape[0] == 0:
        raise ValueError("X is empty")
    if s.dtype.kind not in "iubf":
        raise ValueError(f"X must hold real-valued scores, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        raise ValueError("X contains NaN or infinite values")
    return s
