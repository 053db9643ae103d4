"""The scaling-binning calibrator (Kumar, Liang & Ma 2019, "Verified uncertainty calibration").

Scaling methods (Platt, temperature) output a continuum of values whose
calibration error cannot be estimated reliably; histogram binning outputs few
values but each bin's value is a mean of 0/1 labels, with variance
``acc (1 - acc) / n_b``.  Scaling-binning does both, in three steps:

1. **function fitting**: a scaling map ``g`` is fitted by maximum likelihood,
   ``g(x) = sigmoid(a * logit(s) + b)`` (Platt scaling on the logit of the
   score ``s``; ``scaling="platt"``) or ``g(x) = softmax(z / T)`` (temperature
   scaling; ``scaling="temperature"``);
2. **binning scheme**: equal-mass bins of the scaled values ``g(x)``;
3. **discretisation**: every score in a bin is mapped to the *mean of the scaled
   values* ``g(x)`` in that bin (not the mean label).

Step 3 averages smooth values instead of labels, so the output has much lower
variance than histogram binning with the same number of bins (the paper's
Theorem 4.1 needs ``O(B log B + 1 / eps^2)`` samples for calibration error
``eps`` where histogram binning needs ``O(B / eps^2)``), while it takes only
``B`` values, so its calibration error can be measured with the binned
estimators of :mod:`calkit.metrics`.  Steps 2 and 3 use no labels.

The paper's algorithm draws the three steps from three disjoint parts of the
calibration set (``split="paper"``: thirds, by a seeded permutation; the
analysis needs the independence).  The authors' code
(``calibration.PlattBinnerTopCalibrator`` / ``PlattBinnerMarginalCalibrator``
in ``p-lambda/verified_calibration``) runs all three steps on the same data,
and so does the default ``split="none"``: only step 1 sees the labels, and a
three-way split would fit the scaling on a third of them.  On the 14 CIFAR fits
of ``benchmarks/auto_calibration_table.py`` (5,000 rows to fit, 5,000 to
evaluate) ``split="none"`` gave the lower test ECE on 11 (median 0.0118 against
0.0124 for ``"paper"``), and beat 15-bin histogram binning on 11 (median 0.0135).

Bins come from the binning engine (:func:`calkit.binning.bin_table`, equal-mass
edges with midpoints between the split ranks, ``(a, b]``, as the authors'
``get_equal_bins``); new scaled values are binned by
:func:`calkit.binning.assign_bins`.  The Platt fit is unregularised maximum
likelihood with 0/1 targets, like the authors' ``LogisticRegression(C=1e10)``
(their logit clips the scores at ``1e-12``; here the logit is computed from the
logits, without clipping).

On ``(N, K)`` logits (``multiclass=``):

``"top_label"`` (default)
    One map on the top-label confidence ``max_k softmax(z)_k`` against whether
    the prediction is right (``PlattBinnerTopCalibrator``).  The other classes
    are rescaled proportionally to fill ``1 - c``, and ``c`` is raised where
    needed so the top class stays the largest entry: the predicted class is
    never changed (``predict`` returns the argmax of the logits).
``"one_vs_rest"``
    One map per class on ``softmax(z)_k`` against ``y == k`` (the marginal
    calibrator of the paper's experiments), rows renormalised to one.  This can
    change the argmax.

No output probability is below ``prob_floor``: the rows are mixed with the
uniform distribution, ``(1 - K * prob_floor) * q + prob_floor``, which keeps
their order and their sum.

By default (``ts_weight="auto"``) the output is then mixed with temperature
scaling (floored alike), ``(1 - a) q + a softmax(z / T)``, ``T`` fitted by NLL
on all the fitting data and the weight ``a`` chosen by 5-fold out-of-fold NLL
(:func:`calkit.posthoc._mixture.cross_val_weight`; the reasons are in
:mod:`calkit.posthoc._score_map`).  Both ends rank the input's top class first
for top-label, so the predicted class is still never changed.  ``ts_weight=0``
gives the published method.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from calkit._validation import check_n_bins, check_option
from calkit.binning import assign_bins, bin_table, quantile_edges
from calkit.logits import softmax
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._mixture import check_mixture_attributes, check_ts_weight, fit_mixture
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._score_map import MULTICLASS, rescale_top_label
from calkit.posthoc.binary import fit_platt
from calkit.posthoc.temperature import TemperatureScaling

SCALINGS = ("platt", "temperature")
SPLITS = ("none", "paper")


def _logit_columns(z: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
    """``log(p / (1 - p))`` of ``p = softmax(z)``, for one column per row or for all.

    ``columns`` gives one class per row (the top label), or None for every
    class.  Computed as ``z_k - logsumexp_{j != k} z_j`` from the logits, so
    confidences within float rounding of 1 keep their full range.
    """
    n, k = z.shape
    rows = np.arange(n)
    if columns is not None:
        others = z.copy()
        others[rows, columns] = -np.inf
        m = others.max(axis=1)
        lse = m + np.log(np.exp(others - m[:, None]).sum(axis=1))
        return z[rows, columns] - lse
    # every class at once: with e = exp(z - max), R = sum of the non-top e, the others of a
    # non-top class k sum to 1 + R - e_k >= 1 (no cancellation); the top class keeps the
    # precise form above, shifted by the runner-up
    top = np.argmax(z, axis=1)
    m = z[rows, top]
    e = np.exp(z - m[:, None])
    e[rows, top] = 0.0
    rest = e.sum(axis=1)
    out = z - m[:, None] - np.log1p(rest[:, None] - e)
    out[rows, top] = _logit_columns(z, top)
    return out


def _keep_top(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c`` raised to the least value at which the rescaled top class stays the largest.

    With the others rescaled by ``(1 - c) / r`` (``r`` = sum of the others), the
    runner-up ``p2`` becomes ``p2 (1 - c) / r``, which exceeds ``c`` exactly when
    ``c < p2 / (r + p2)``; with ``r = 0`` the others share ``1 - c`` equally and
    the bound is ``1 / K``.
    """
    k = p.shape[1]
    part = np.partition(p, k - 2, axis=1)
    p2 = part[:, k - 2]
    rest = part[:, :k - 1].sum(axis=1)  # summed directly: 1 - p_top loses digits
    denom = rest + p2
    bound = np.where(denom > 0, p2 / np.where(denom > 0, denom, 1.0), 1.0 / k)
    # a relative margin of 1e-9 keeps the top strictly largest through float rounding
    return np.maximum(c, bound * (1.0 + 1e-9))


class ScalingBinning(BaseCalibrator):
    """Scaling-binning calibrator: scaling, then equal-mass bins of the scaled scores.

    Parameters
    ----------
    n_bins : int, default=15
        Number of equal-mass bins of the scaled scores (fewer when tied values
        merge bins).
    scaling : {"platt", "temperature"}, default="platt"
        Step 1: Platt scaling of the score's logit (the paper) or temperature
        scaling of the logits (fitted by NLL, :class:`TemperatureScaling`).
    multiclass : {"top_label", "one_vs_rest"}, default="top_label"
        One map on the top-label confidence (keeps the predicted class) or one
        map per class (renormalised; may change it).  See the module docstring.
    split : {"none", "paper"}, default="none"
        ``"none"``: all three steps on all the data (the authors' code).
        ``"paper"``: step 1 on one third, the bin edges on another, the bin
        means on the last (the paper's algorithm).
    prob_floor : float, default=1e-12
        Smallest output probability (rows are mixed with uniform by ``K *
        prob_floor``); must satisfy ``0 <= K * prob_floor < 1``.
    random_state : int, default=0
        Seed of the permutation behind ``split="paper"``.
    ts_weight : float or "auto", default="auto"
        Weight ``a`` of temperature scaling in the output, ``(1 - a) q + a r``
        (``q`` the scaling-binning output, ``r = softmax(X / T)``, both
        floored); ``"auto"`` chooses it by 5-fold out-of-fold NLL, as the
        top-label maps (:mod:`calkit.posthoc._score_map`,
        :func:`calkit.posthoc._mixture.cross_val_weight`); ``0`` is the method
        as published.

    Attributes
    ----------
    temperature_ : float
        Temperature of step 1 (1.0 with ``scaling="platt"``).
    coef_ : ndarray of shape (M, 2)
        Platt slope and intercept per map (``(1, 0)`` with temperature scaling);
        ``M`` is 1 for top-label, ``K`` for one-vs-rest.
    edges_, values_, offsets_ : ndarray
        Bin edges and bin values (mean scaled score) of each map, concatenated;
        map ``m`` spans ``edges_[offsets_[m, 0]:offsets_[m + 1, 0]]`` and
        ``values_[offsets_[m, 1]:offsets_[m + 1, 1]]``.
    n_classes_ : int
    ts_weight_ : float
        The weight ``a`` used.
    ts_temperature_ : float
        Temperature ``T`` of the mixed-in softmax (1.0 when ``ts_weight=0``;
        not ``temperature_``, which belongs to step 1).
    cv_nll_ : dict
        Out-of-fold NLL of the ``"map"``, of temperature scaling on the fitting
        data (``"reference"``) and of the ``"mixture"`` behind
        ``ts_weight="auto"`` (empty otherwise).

    Notes
    -----
    Takes logits ``(N, K)`` and integer labels (to calibrate probabilities,
    pass their logarithm).  Reference: A. Kumar, P. Liang, T. Ma, "Verified
    uncertainty calibration", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.scaling_binning import ScalingBinning
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(3000, 4)) * 3
    >>> y = np.where(rng.random(3000) < 0.6, z.argmax(1), rng.integers(0, 4, 3000))
    >>> sb = ScalingBinning(n_bins=10).fit(z, y)
    >>> sb.values_.shape  # the 10 values a top-label confidence can take
    (10,)
    >>> p = sb.predict_proba(z)
    >>> bool((sb.predict(z) == z.argmax(1)).all()), bool(np.allclose(p.sum(axis=1), 1))
    (True, True)
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "temperature_": ValueSpec("float", gt=0),
        "coef_": ValueSpec("array", shape=("*", 2)),
        "edges_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "values_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "offsets_": ValueSpec("array", shape=("*", 2), dtype="int64", ge=0),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "ts_weight_": ValueSpec("float", ge=0, le=1, required=False),
        "ts_temperature_": ValueSpec("float", gt=0, required=False),
        "cv_nll_": ValueSpec("unsaved")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "multiclass": ValueSpec("str", choices=MULTICLASS),
        "scaling": ValueSpec("str", choices=SCALINGS),
        "prob_floor": ValueSpec("float", ge=0, lt=0.5)}

    def _check_fitted_values(self) -> None:
        """Loaded maps: one per class (one for top-label), each with one more edge than values."""
        o, coef = np.asarray(self.offsets_), np.asarray(self.coef_)
        n_maps = 1 if self.multiclass == "top_label" else self.n_classes_
        if coef.shape[0] != n_maps or o.shape[0] != n_maps + 1:
            raise ValueError(f"coef_ must have {n_maps} rows and offsets_ {n_maps + 1} "
                             f"(multiclass={self.multiclass!r}, {self.n_classes_} classes)")
        lengths = np.diff(o, axis=0)
        if (o[0] != 0).any() or o[-1].tolist() != [len(self.edges_), len(self.values_)] \
                or (lengths[:, 1] < 1).any() or (lengths[:, 0] != lengths[:, 1] + 1).any():
            raise ValueError("offsets_ must cut edges_ and values_ into maps of n + 1 edges "
                             "and n >= 1 values")
        check_mixture_attributes(self, "ts_temperature_")
        if self.prob_floor * self.n_classes_ >= 1:
            raise ValueError(f"prob_floor={self.prob_floor} is too large for "
                             f"{self.n_classes_} classes")

    def __init__(self, n_bins: int = 15, scaling: str = "platt",
                 multiclass: str = "top_label", split: str = "none",
                 prob_floor: float = 1e-12, random_state: int = 0, ts_weight="auto"):
        self.n_bins = n_bins
        self.scaling = scaling
        self.multiclass = multiclass
        self.split = split
        self.prob_floor = prob_floor
        self.random_state = random_state
        self.ts_weight = ts_weight

    # ------------------------------------------------------------------ fitting
    def _check_params(self, k: int | None = None) -> None:
        """Settings (``k`` classes, when known, bounds ``prob_floor``; loading checks it later)."""
        check_n_bins(self.n_bins)
        check_option(self.scaling, "scaling", SCALINGS)
        check_option(self.multiclass, "multiclass", MULTICLASS)
        check_option(self.split, "split", SPLITS)
        check_ts_weight(self.ts_weight)
        f = self.prob_floor
        if isinstance(f, bool) or not isinstance(f, Real) or not 0 <= f * (k or 2) < 1:
            raise ValueError(f"prob_floor must be a number with 0 <= K * prob_floor < 1 "
                             f"(K = {k} classes), got {f!r}")
        if self.split == "paper" and (isinstance(self.random_state, bool)
                                      or not isinstance(self.random_state, Integral)):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")

    def _features(self, z: np.ndarray) -> np.ndarray:
        """Logits ``(N, M)`` of the scores the maps see (``z`` already divided by T)."""
        if self.multiclass == "top_label":
            top = np.argmax(z, axis=1)
            x = _logit_columns(z, top)[:, None]
        else:
            x = _logit_columns(z, None)
        return x

    def _scaled(self, z: np.ndarray) -> np.ndarray:
        """Step 1 applied: ``g(x)`` of shape ``(N, M)``."""
        x = self._features(z / self.temperature_)
        coef = np.asarray(self.coef_)
        return expit(x * coef[:, 0] + coef[:, 1])

    def fit(self, X, y) -> ScalingBinning:
        """Fit on validation logits ``X`` (N, K) and integer labels ``y`` (N,)."""
        z, labels = check_fit_logits(X, y)
        self._check_params(int(z.shape[1]))
        self._fit_maps(z, labels)

        def fit_predict(train, test):  # refitted on 4/5 of the rows, predicting the rest
            pure = clone(self).set_params(ts_weight=0)
            pure._fit_maps(z[train], labels[train])
            return pure._mapped(z[test])

        fit_mixture(self, z, labels, None, fit_predict, lambda: self._reference(z),
                    temperature="ts_temperature_")
        return self

    def _fit_maps(self, z: np.ndarray, labels: np.ndarray) -> None:
        """Steps 1-3 on ``(z, labels)``: sets every fitted attribute but the mixture weight."""
        n, k = z.shape
        parts = self._parts(n)
        fit_rows, edge_rows, mean_rows = parts
        check_n_bins(self.n_bins, len(edge_rows))
        z1, y1 = z[fit_rows], labels[fit_rows]
        if self.multiclass == "top_label":
            targets = (np.argmax(z1, axis=1) == y1)[:, None].astype(np.float64)
        else:
            targets = (y1[:, None] == np.arange(k)).astype(np.float64)
        m = targets.shape[1]
        if self.scaling == "temperature":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.temperature_ = float(TemperatureScaling().fit(z1, y1).temperature_)
            self.coef_ = np.tile([1.0, 0.0], (m, 1))
        else:
            self.temperature_ = 1.0
            x = self._features(z1)
            self.coef_ = np.column_stack(fit_platt(x, targets))  # (M, 2): 0/1 targets
        g_edges = self._scaled(z[edge_rows])
        g_means = g_edges if mean_rows is edge_rows else self._scaled(z[mean_rows])
        maps = [self._bins(g_edges[:, j], g_means[:, j]) for j in range(m)]
        lengths = np.array([[0, 0]] + [[len(e), len(v)] for e, v in maps], dtype=np.int64)
        self.edges_ = np.concatenate([e for e, _ in maps])
        self.values_ = np.concatenate([v for _, v in maps])
        self.offsets_ = np.cumsum(lengths, axis=0)
        self.n_classes_ = int(k)

    def _parts(self, n: int):
        """Row indices of steps 1, 2 and 3 (the same array three times with ``split="none"``)."""
        if self.split == "none":
            rows = np.arange(n)
            return rows, rows, rows
        if n < 3:
            raise ValueError(f"split='paper' needs at least 3 samples, got {n}")
        order = np.random.default_rng(self.random_state).permutation(n)
        return tuple(np.sort(part) for part in np.array_split(order, 3))

    def _bins(self, g_edges: np.ndarray, g_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steps 2 and 3 for one map: equal-mass edges, then the mean scaled value per bin."""
        none = np.zeros(len(g_edges), dtype=bool)  # the engine's targets; only the scores matter
        if g_means is g_edges:
            table = bin_table(g_edges, none, n_bins=self.n_bins, strategy="quantile")
            return np.asarray(table.edges, dtype=np.float64), table.mean_score
        edges = quantile_edges(g_edges, self.n_bins)
        means = bin_table(g_means, np.zeros(len(g_means), dtype=bool), edges=edges).mean_score
        # a bin that no step-3 value reached keeps the mean of its step-2 values
        fallback = bin_table(g_edges, none, edges=edges).mean_score
        means = np.where(np.isnan(means), fallback, means)
        return edges, means

    # ------------------------------------------------------------------ prediction
    def calibrate_scaled(self, scaled, index: int = 0) -> np.ndarray:
        """Steps 2-3 of map ``index``: bin values of already scaled scores ``g(x)``.

        Parameters
        ----------
        scaled : array of shape (N,)
            Scaled scores in [0, 1] (step 1 already applied).
        index : int, default=0
            Which map (0 for top-label; the class for one-vs-rest).

        Returns
        -------
        ndarray of shape (N,)
            The mean scaled value of each score's bin.

        Examples
        --------
        >>> import numpy as np
        >>> from calkit.posthoc.scaling_binning import ScalingBinning
        >>> rng = np.random.default_rng(1)
        >>> z = rng.normal(size=(400, 3)) * 2
        >>> y = np.where(rng.random(400) < 0.8, z.argmax(1), rng.integers(0, 3, 400))
        >>> sb = ScalingBinning(n_bins=4).fit(z, y)
        >>> sb.edges_.round(3).tolist(), sb.values_.round(3).tolist()
        ([0.0, 0.862, 0.874, 0.881, 1.0], [0.85, 0.869, 0.878, 0.884])
        >>> sb.calibrate_scaled(np.array([0.5, 0.87, 0.99])).round(3).tolist()
        [0.85, 0.869, 0.884]
        """
        self._check_fitted()
        o = np.asarray(self.offsets_)
        if not 0 <= index < len(o) - 1:
            raise ValueError(f"index must lie in [0, {len(o) - 2}], got {index}")
        edges = np.asarray(self.edges_)[o[index, 0]:o[index + 1, 0]]
        values = np.asarray(self.values_)[o[index, 1]:o[index + 1, 1]]
        return values[assign_bins(np.asarray(scaled, dtype=np.float64), edges, "right")]

    def _predict_proba(self, X):
        z = np.asarray(check_predict_logits(X, self.n_classes_, type(self).__name__),
                       dtype=np.float64)
        q = self._mapped(z)
        a = float(getattr(self, "ts_weight_", 0.0))  # files saved before it: the map
        return q if a == 0 else (1 - a) * q + a * self._reference(z)

    def _reference(self, z: np.ndarray) -> np.ndarray:
        """``softmax(z / ts_temperature_)`` floored as the output (the mixture's other end)."""
        floor = float(self.prob_floor)
        return (1.0 - z.shape[1] * floor) * softmax(z / float(self.ts_temperature_)) + floor

    def _mapped(self, z: np.ndarray) -> np.ndarray:
        """Scaling-binning alone (floored) on float64 logits."""
        g = self._scaled(z)
        k = z.shape[1]
        if self.multiclass == "top_label":
            p = softmax(z)
            c = _keep_top(p, self.calibrate_scaled(g[:, 0]))
            q = rescale_top_label(p, c)
        else:
            q = np.column_stack([self.calibrate_scaled(g[:, j], j) for j in range(k)])
            total = q.sum(axis=1, keepdims=True)  # 0 only if every map underflowed: uniform
            q = np.where(total > 0, q / np.where(total > 0, total, 1.0), 1.0 / k)
        floor = float(self.prob_floor)
        return (1.0 - k * floor) * q + floor

    def predict(self, X):
        """Predicted class: the argmax of the logits for ``multiclass="top_label"``
        (which this calibrator never changes), else the argmax of :meth:`predict_proba`.
        """
        self._check_fitted()
        if self.multiclass == "top_label":
            z = check_predict_logits(X, self.n_classes_, type(self).__name__)
            return z.argmax(1) if hasattr(z, "detach") else np.argmax(z, axis=1)
        return super().predict(X)
