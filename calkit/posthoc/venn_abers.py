"""Venn-Abers predictors: inductive (IVAP) and cross (CVAP), binary and multiclass.

An inductive Venn-Abers predictor (Vovk & Petej, UAI 2014) turns a score ``s``
into two probabilities: ``p0``, the isotonic-regression value at ``s`` when the
test object is added to the calibration set with label 0, and ``p1``, the same
with label 1 (ties pooled, as in the pool-adjacent-violators algorithm).  One of
the two is the isotonic calibration of a data set that contains the test
object with its true label, so the pair is a *multiprobability* prediction that
is perfectly calibrated in the Venn sense whatever the data distribution, as
long as calibration and test data are exchangeable.  The width ``p1 - p0`` says
how much the calibration set pins the probability down (wide for scores with
few calibration neighbours, for small sets, at the extremes).  A single
probability is the merge minimising the worst-case log-loss regret,
``p = p1 / (1 - p0 + p1)``, or the Brier merge ``p1 + p0^2 / 2 - p1^2 / 2``.

The interval for every test score comes from one sort of the calibration set
(Vovk, Petej & Fedorova, NeurIPS 2015, §2): on the unique sorted scores with
multiplicities, the cumulative-sum diagram ``P_0 = (0, 0)``,
``P_j = (sum w, sum w y)`` has isotonic values equal to the slopes of its
greatest convex minorant.  A test object with label 1 between groups ``i`` and
``i + 1`` is the segment ``P_i - (1, 1) -> P_i`` with the points on its left
shifted by ``-(1, 1)``, and its isotonic value is the slope of the lower bridge
between the convex hull of the shifted prefix and the hull of the suffix.  One
left-to-right and one right-to-left Graham scan (``O(k)``) give every prefix
and suffix hull at once as parent links (the stack below each point when it was
pushed); the bridges of all ``k + 1`` slots are then found together, both ends
walking outwards along their links in vectorised steps (a few per slot on real
data), with binary lifting (``O(log k)`` per walk) for the rare long walks.
The mirror image (``s -> -s``, ``y -> 1 - y``) gives ``p0`` from the same two
scans, since its diagram is a reflection and a shear of this one.  After the
sort, a test score costs two binary searches (``O(log k)``).  A test
score equal to a calibration score reads ``p1`` just left of its tie group and
``p0`` just right of it (the pooled values, as ``venn-abers``'s ``calc_probs``).

Sample weights are multiplicities: a weight of 2 counts a calibration point
twice (the test object always counts once), so scaling every weight by ``c``
is a ``c`` times larger calibration set and narrows the intervals.

A cross Venn-Abers predictor (CVAP; Vovk, Petej & Fedorova 2015) splits the
calibration set into ``n_folds`` folds and fits one IVAP on each; on fixed
scores (a post-hoc calibrator) every fold uses the same score, so the CVAP is
the fold IVAPs' intervals ``(p0_f, p1_f)`` merged by the geometric means
``GM(p1) / (GM(1 - p0) + GM(p1))`` (log-loss) or
``mean p1 + mean(p0^2) / 2 - mean(p1^2) / 2`` (Brier).

Multiclass (Manokhin, COPA 2017) on ``(N, K)`` logits ``z``:

``"one_vs_rest"`` (default)
    One IVAP per class on the logit of ``softmax(z)_k`` (the order of ``p_k``,
    without rounding near 1) against ``y == k``; the merged probabilities are
    renormalised.
``"one_vs_one"``
    One IVAP per pair ``i < j``, on the calibration samples of classes ``i`` and
    ``j``, scoring ``z_j - z_i`` (the order of ``p_j / (p_i + p_j)``) against
    ``y == j``; the merged pairwise probabilities ``p_{i|ij}`` are combined as
    ``p_i = 1 / (sum_{j != i} 1 / p_{i|ij} - (K - 2))`` and renormalised.  For
    ``K = 2`` this is the binary IVAP of ``z_1 - z_0``.  With few calibration
    samples per pair the formula pulls confident predictions down (CIFAR-10
    ResNet-50, 5,000 calibration rows: test NLL 0.217 against 0.190 for
    one-vs-rest).

Both can **change the predicted class** (the classes are calibrated
separately); ``accuracy_change_`` records the accuracy change on the fitting
data.  No top-label variant is offered: an interval for the top-label
confidence does not give one for the classes.  Merged probabilities lie
strictly inside ``(0, 1)`` (``p1 > 0`` and ``p0 < 1``: the test object is in its
own pool), and ``floor`` (default ``1e-12``) keeps them there after the
renormalisation, as the other calibrators.
"""

from __future__ import annotations

import copy
from numbers import Integral
from typing import ClassVar

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_option
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
from calkit.posthoc._score_map import (
    _check_1d_scores,
    _check_floor,
    floor_probabilities,
)
from calkit.posthoc._sklearn_api import predict_input
from calkit.posthoc.scaling_binning import _logit_columns

__all__ = ["VennAbersCalibration", "venn_abers_interval"]

MULTICLASS = ("one_vs_one", "one_vs_rest")
MERGES = ("log", "brier")


# ---------------------------------------------------------------------- the fast fit
#: (p0, p1) values held at once when predicting (rows are taken in blocks; one-vs-one has
#: K (K - 1) / 2 predictors per row)
_BLOCK_ENTRIES = 1 << 21
#: steps of a bridge walk taken one at a time (for all slots at once) before binary lifting
_LINEAR = 16


def _hull_parents(xs: np.ndarray, ys: np.ndarray, reverse: bool) -> np.ndarray:
    """Parent links of the lower convex hulls of every prefix (or suffix) of a point chain.

    One Graham scan (left to right, or right to left for ``reverse``): ``parent[i]``
    is the hull vertex next to ``i`` (towards the start of the scan) in the hull
    of the points scanned up to ``i``, ``-1`` for the first point; following the
    links from ``i`` walks that hull.  Collinear points are dropped.
    """
    n = len(xs)
    x, y = xs.tolist(), ys.tolist()
    parent = [-1] * n
    stack = [0] * n
    top = -1
    sign = -1.0 if reverse else 1.0  # the cross product's sign flips with the direction
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        xi, yi = x[i], y[i]
        while top >= 1:
            a, b = stack[top], stack[top - 1]  # a is dropped when on or above b -> i
            xb, yb = x[b], y[b]
            if sign * ((y[a] - yb) * (xi - xb) - (yi - yb) * (x[a] - xb)) < 0:
                break
            top -= 1
        if top >= 0:
            parent[i] = stack[top]
        top += 1
        stack[top] = i
    return np.asarray(parent, dtype=np.int64)


class _Lifting:
    """Ancestor tables: ``up[j][v]`` is the ``2^j``-th parent (a root is its own), lazily."""

    def __init__(self, parent: np.ndarray):
        root = parent < 0  # int32 links: half the memory of the ~log2(k) levels
        self.up = [np.where(root, np.arange(len(parent)), parent).astype(np.int32)]

    def level(self, j: int) -> np.ndarray:
        while len(self.up) <= j:
            prev = self.up[-1]
            self.up.append(prev[prev])
        return self.up[j]


def _walk(slots, start, parent, lifting, moves):
    """For each slot, the first node from ``start`` along ``parent`` where ``moves`` turns false.

    ``moves(slots, c, n)`` says whether to step from node ``c`` to its parent ``n``;
    along every chain it is true on a prefix and false after (a tangent to a
    convex chain).  Up to :data:`_LINEAR` single steps for all slots at once, then
    binary lifting (``O(log k)`` steps) for the slots still walking.
    """
    cur = start.copy()
    idx = np.arange(len(cur))
    for _ in range(_LINEAR):
        nxt = parent[cur[idx]]
        ok = nxt >= 0
        idx, nxt = idx[ok], nxt[ok]
        go = moves(slots[idx], cur[idx], nxt)
        idx = idx[go]
        cur[idx] = nxt[go]
        if idx.size == 0:
            return cur
    depth = max(1, int(len(parent)).bit_length())
    c = cur[idx]
    s = slots[idx]
    for j in range(depth - 1, -1, -1):
        v = lifting.level(j)[c]
        pv = lifting.level(0)[v]
        go = (pv != v) & moves(s, v, pv)  # v still before the tangent point: jump there
        c = np.where(go, v, c)
    last = lifting.level(0)[c]  # c is the last node before the tangent point
    cur[idx] = np.where((last != c) & moves(s, c, last), last, c)
    return cur


def _p1_slots(xs: np.ndarray, ys: np.ndarray, lpar: np.ndarray, rpar: np.ndarray) -> np.ndarray:
    """Isotonic value of a test object with label 1 in each of the ``k + 1`` slots.

    ``(xs, ys)`` (k + 1,) is the cumulative-sum diagram of the sorted unique
    calibration scores (``P_0 = (0, 0)``), ``lpar`` / ``rpar`` the parent links of
    its prefix and suffix hulls (:func:`_hull_parents`); slot ``i`` lies after
    group ``i`` (``0``: below every score).  Module docstring: prefix hull of
    ``A_m = P_m - (1, 1)`` (``m <= i``; the shift does not change the hull),
    suffix hull of ``P_b`` (``b >= i``), the slope of their lower bridge, found for
    all slots at once by alternating tangent walks (the right end only moves
    right, the left end only left).
    """
    k = len(xs) - 1
    llift, rlift = _Lifting(lpar), _Lifting(rpar)

    def right_moves(s, c, n):  # P_n on or below the line A_cl(s) -> P_c
        lx, ly = xs[cl[s]] - 1.0, ys[cl[s]] - 1.0
        return (ys[n] - ly) * (xs[c] - lx) <= (ys[c] - ly) * (xs[n] - lx)

    def left_moves(s, c, n):  # A_n strictly below the line A_c -> P_cr(s) (R shifted by (1, 1))
        rx, ry = xs[cr[s]] + 1.0, ys[cr[s]] + 1.0
        return (ry - ys[n]) * (rx - xs[c]) > (ry - ys[c]) * (rx - xs[n])

    cl = np.arange(k + 1)
    cr = np.arange(k + 1)
    # both ends step at once while either may: a step that is valid for the current ends
    # never passes the bridge (the left end stays right of it, the right end left of it),
    # so steps may be taken in any order; where neither end moves, both are tangent
    todo = np.arange(k + 1)
    for _ in range(_LINEAR):
        lft, rgt = cl[todo], cr[todo]
        nl, nr = lpar[lft], rpar[rgt]
        nl0, nr0 = np.maximum(nl, 0), np.maximum(nr, 0)
        lx, ly = xs[lft] - 1.0, ys[lft] - 1.0
        rx, ry = xs[rgt], ys[rgt]
        go_r = (nr >= 0) & ((ys[nr0] - ly) * (rx - lx) <= (ry - ly) * (xs[nr0] - lx))
        rx, ry = rx + 1.0, ry + 1.0  # the A's as plain P's
        go_l = (nl >= 0) & ((ry - ys[nl0]) * (rx - xs[lft]) > (ry - ys[lft]) * (rx - xs[nl0]))
        cr[todo[go_r]] = nr[go_r]
        cl[todo[go_l]] = nl[go_l]
        todo = todo[go_r | go_l]
        if not todo.size:
            break
    while todo.size:  # long walks: alternate tangent walks with binary lifting
        cr[todo] = _walk(todo, cr[todo], rpar, rlift, right_moves)
        new = _walk(todo, cl[todo], lpar, llift, left_moves)
        moved = new != cl[todo]
        cl[todo] = new
        todo = todo[moved]
    out = (ys[cr] - ys[cl] + 1.0) / (xs[cr] - xs[cl] + 1.0)
    return np.clip(out, 0.0, 1.0)


def _fit_slots(scores: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None):
    """``(unique sorted scores c (k,), p0 slots (k+1,), p1 slots (k+1,))``."""
    if sample_weight is not None:
        keep = sample_weight > 0
        scores, targets, w = scores[keep], targets[keep], sample_weight[keep]
    else:
        w = np.ones(len(scores))
    c, inverse = np.unique(scores, return_inverse=True)
    k = len(c)
    weight = np.bincount(inverse, weights=w, minlength=k)
    ones = np.minimum(np.bincount(inverse, weights=w * targets, minlength=k), weight)
    xs = np.concatenate([[0.0], np.cumsum(weight)])
    ys = np.concatenate([[0.0], np.cumsum(ones)])
    lpar = _hull_parents(xs, ys, reverse=False)
    rpar = _hull_parents(xs, ys, reverse=True)
    p1 = _p1_slots(xs, ys, lpar, rpar)
    # p0 is 1 - p1 of the mirror image (scores reversed, labels flipped), whose diagram
    # (W - x, (W - Y) - (x - y)) reversed is a reflection and a shear of this one: same
    # hulls, prefixes and suffixes swapped
    xm = xs[-1] - xs[::-1]
    ym = (xs[-1] - ys[-1]) - (xs - ys)[::-1]
    p0 = 1.0 - _p1_slots(xm, ym, _mirror(rpar), _mirror(lpar))[::-1]
    return c, np.minimum(p0, p1), p1


def _mirror(parent: np.ndarray) -> np.ndarray:
    """Parent links of the mirrored diagram (index ``j`` is ``k - j``; roots stay -1)."""
    k = len(parent) - 1
    rev = parent[::-1]
    return np.where(rev < 0, -1, k - rev)


def _read_slots(c, p0, p1, s):
    """``(p0, p1)`` of test scores ``s``: ``p1`` left of a tie group, ``p0`` right of it."""
    return p0[np.searchsorted(c, s, "right")], p1[np.searchsorted(c, s, "left")]


def _merge(p0: np.ndarray, p1: np.ndarray, merge: str) -> np.ndarray:
    """One probability from intervals ``p0, p1`` of shape ``(F, ...)`` (F folds, F = 1: IVAP)."""
    if merge == "brier":
        return np.clip(p1.mean(axis=0) + 0.5 * (p0 ** 2).mean(axis=0)
                       - 0.5 * (p1 ** 2).mean(axis=0), 0.0, 1.0)
    with np.errstate(divide="ignore"):  # log 0 = -inf gives a geometric mean of 0
        g1 = np.exp(np.log(p1).mean(axis=0))
        g0 = np.exp(np.log1p(-p0).mean(axis=0))
    return g1 / (g0 + g1)  # g1 > 0 (p1 > 0) or g0 > 0 (p0 < 1) in every fold


def venn_abers_interval(cal_scores, cal_targets, test_scores, sample_weight=None):
    """Inductive Venn-Abers interval ``(p0, p1)`` of many test scores from one calibration set.

    ``p0`` (``p1``) is the isotonic-regression value at the test score when the
    test object joins the calibration set with label 0 (1), ties pooled; both
    come from one ``O(k log k)`` pass over the ``k`` unique calibration scores
    and two binary searches per test score (module docstring).

    Parameters
    ----------
    cal_scores : array of shape (n,)
        Real-valued calibration scores (only their order matters).
    cal_targets : array of shape (n,)
        Their 0/1 labels.
    test_scores : array of shape (m,)
        Scores to predict.
    sample_weight : array of shape (n,), optional
        Non-negative multiplicities of the calibration points (the test object
        counts once).

    Returns
    -------
    p0, p1 : ndarray of shape (m,)
        ``0 <= p0 <= p1 <= 1``, with ``p1 > 0`` and ``p0 < 1``.

    Examples
    --------
    The worked example of Vovk, Petej & Fedorova's construction (same numbers as
    two scikit-learn isotonic fits per test score):

    >>> import numpy as np
    >>> from calkit.posthoc import venn_abers_interval
    >>> s = [0.1, 0.2, 0.3, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95]
    >>> y = [0, 0, 1, 0, 0, 1, 0, 1, 1, 1]
    >>> p0, p1 = venn_abers_interval(s, y, [0.05, 0.3, 0.5, 0.99])
    >>> p0.round(4).tolist(), p1.round(4).tolist()
    ([0.0, 0.25, 0.25, 0.75], [0.3333, 0.5, 0.6667, 1.0])
    >>> (p1 / (1 - p0 + p1)).round(4).tolist()   # the log-loss merge
    [0.25, 0.4, 0.4706, 0.8]
    """
    from calkit._validation import check_sample_weight

    s = _check_1d_scores(np.asarray(to_numpy(cal_scores)), "real")
    t = check_fit_binary_targets(cal_targets, len(s))
    test = _check_1d_scores(np.asarray(to_numpy(test_scores)), "real")
    w = None if sample_weight is None else check_sample_weight(sample_weight, len(s))
    return _read_slots(*_fit_slots(s, t, w), test)


# ---------------------------------------------------------------------- the calibrator
class VennAbersCalibration(BaseCalibrator):
    """Inductive or cross Venn-Abers calibration (Vovk et al.; Manokhin's multiclass).

    Parameters
    ----------
    multiclass : {"one_vs_rest", "one_vs_one"}, default="one_vs_rest"
        How ``(N, K)`` logits are split into binary problems (module docstring);
        unused for 1-D scores.  One-vs-rest had the lower test NLL and ECE on
        both CIFAR-10 ResNet-50 models of ``../shared/data`` (user guide); for a
        plain binary IVAP of ``(N, 2)`` logits use ``"one_vs_one"`` (or 1-D scores).
    n_folds : int, optional
        ``None`` (default): one inductive predictor on the whole calibration set
        (IVAP).  An int ``>= 2``: a cross Venn-Abers predictor, one IVAP per
        fold of a stratified split, merged by ``merge``.
    merge : {"log", "brier"}, default="log"
        How an interval (or a CVAP's intervals) becomes one probability:
        log-loss ``GM(p1) / (GM(1 - p0) + GM(p1))`` or Brier
        ``mean p1 + mean(p0^2) / 2 - mean(p1^2) / 2``.
    floor : float, default=1e-12
        Least probability given to any class (in ``[0, 1/K)``).
    random_state : int, default=0
        Seed of the fold split (``n_folds`` only).
    ts_weight : float or "auto", default="auto"
        Weight ``a`` of temperature scaling in ``predict_proba`` for ``(N, K)``
        logits: ``(1 - a) VA + a softmax(X / T)`` (both floored), as for the
        top-label maps (:mod:`calkit.posthoc._score_map`).  ``"auto"`` chooses
        ``a`` by 5-fold out-of-fold NLL of the Venn-Abers predictor refitted on
        4/5 of the rows, so the output's cross-validated log-loss is never above
        temperature scaling's (one-vs-rest Venn-Abers on 5,000 rows of a
        100-class model was worse than the uncalibrated model otherwise); ``0``
        is the Venn-Abers predictor alone.  :meth:`predict_interval` always
        gives the Venn-Abers intervals themselves.  1-D scores: the predictor
        alone.

    Attributes
    ----------
    scores_ : ndarray
        Unique sorted calibration scores of every binary predictor, concatenated.
    p0_, p1_ : ndarray
        ``p0`` and ``p1`` of every insertion slot (one more than the scores per
        predictor), concatenated.
    offsets_ : ndarray of shape (n_predictors + 1, 2)
        Where each predictor's scores and slots start.
    n_classes_ : int
    ts_weight_ : float
        The weight ``a`` used (0 for 1-D scores).
    temperature_ : float
        Temperature ``T`` of the mixed-in softmax (1.0 when ``ts_weight=0``).
    cv_nll_ : dict
        Out-of-fold NLL of the Venn-Abers predictor (``"map"``), of temperature
        scaling (``"reference"``) and of the chosen ``"mixture"`` behind
        ``ts_weight="auto"`` (empty otherwise).
    accuracy_change_ : float
        Accuracy change on the fitting data (``(N, K)`` logits, or 1-D scores in
        ``[0, 1]`` thresholded at 0.5).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc import VennAbersCalibration
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.3, 1.0, 2000)
    >>> right = (rng.uniform(size=2000) < conf ** 2).astype(int)   # over-confident
    >>> va = VennAbersCalibration().fit(conf, right)
    >>> va.predict_proba(np.array([0.5, 0.95])).round(2).tolist()   # true: 0.25, 0.9
    [0.26, 0.87]
    >>> va.predict_interval(np.array([0.5, 0.95])).round(2).tolist()   # (p0, p1)
    [[0.24, 0.26], [0.86, 0.97]]

    The interval is wide near the top, where few calibration scores lie above.

    Multiclass logits, one-vs-rest (the default) or pairwise, and a CVAP:

    >>> z = rng.normal(size=(1500, 3)) * 3
    >>> y = np.where(rng.random(1500) < 0.6, z.argmax(1), rng.integers(0, 3, 1500))
    >>> p = VennAbersCalibration(multiclass="one_vs_one").fit(z, y).predict_proba(z[:2])
    >>> p.sum(axis=1).round(12).tolist()
    [1.0, 1.0]
    >>> cv = VennAbersCalibration(n_folds=5).fit(z, y)
    >>> cv.predict_interval(z[:1]).shape   # (folds, rows, classes, (p0, p1))
    (5, 1, 3, 2)
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "scores_": ValueSpec("array", shape=("*",)),
        "p0_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "p1_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "offsets_": ValueSpec("array", shape=("*", 2), dtype="int64", ge=0),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        **MIXTURE_FITTED_SPEC,
        "accuracy_change_": ValueSpec("unsaved")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "multiclass": ValueSpec("str", choices=MULTICLASS),
        "merge": ValueSpec("str", choices=MERGES),
        "n_folds": ValueSpec("int", ge=2, none_ok=True),
        "floor": ValueSpec("float", ge=0, lt=0.5),
        "random_state": ValueSpec("int")}
    _native_1d = True

    def __init__(self, multiclass: str = "one_vs_rest", n_folds: int | None = None,
                 merge: str = "log", floor: float = 1e-12, random_state: int = 0,
                 ts_weight: float | str = "auto"):
        self.multiclass = multiclass
        self.n_folds = n_folds
        self.merge = merge
        self.floor = floor
        self.random_state = random_state
        self.ts_weight = ts_weight

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_ts_weight(self.ts_weight)
        check_option(self.multiclass, "multiclass", MULTICLASS)
        check_option(self.merge, "merge", MERGES)
        if self.n_folds is not None and (isinstance(self.n_folds, bool) or not isinstance(
                self.n_folds, Integral) or self.n_folds < 2):
            raise ValueError(f"n_folds must be None (inductive) or an integer >= 2, got "
                             f"{self.n_folds!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, Integral):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")

    def _check_fitted_values(self) -> None:
        o = np.asarray(self.offsets_)
        c, p0, p1 = (np.asarray(v) for v in (self.scores_, self.p0_, self.p1_))
        n_rows = o.shape[0] - 1
        k = self.n_classes_
        per_fold = {k * (k - 1) // 2 if self.multiclass == "one_vs_one" else k}
        if k == 2:
            per_fold.add(1)  # 1-D scores: one predictor
        if n_rows not in {f * (self.n_folds or 1) for f in per_fold}:
            raise ValueError(f"offsets_ has {n_rows + 1} rows, which does not fit "
                             f"{self.n_classes_} classes (multiclass={self.multiclass!r}, "
                             f"n_folds={self.n_folds!r})")
        lengths = np.diff(o, axis=0)
        if (o[0] != 0).any() or (lengths < 0).any() or o[-1].tolist() != [len(c), len(p0)]:
            raise ValueError("offsets_ must start at 0, never decrease and end at the lengths "
                             "of scores_ and p0_")
        if (lengths[:, 1] != lengths[:, 0] + 1).any() or len(p1) != len(p0):
            raise ValueError("offsets_: every predictor needs one more slot in p0_ and p1_ "
                             "than scores, and p0_ and p1_ the same length")
        step = np.diff(c) <= 0
        step[o[1:-1, 0] - 1] = False  # where one predictor ends and the next begins
        if step.any():
            raise ValueError("scores_ must be strictly increasing within every predictor")
        rising = np.diff(p0) < 0, np.diff(p1) < 0
        for name, bad in zip(("p0_", "p1_"), rising, strict=True):
            bad[o[1:-1, 1] - 1] = False
            if bad.any():
                raise ValueError(f"{name} must be non-decreasing within every predictor")
        if (p0 > p1).any():
            raise ValueError("p0_ must not exceed p1_ (p0 <= p1 in every slot)")
        check_mixture_attributes(self)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None) -> VennAbersCalibration:
        """Fit on scores ``X`` (N,) or logits ``X`` (N, K) and labels ``y`` (N,).

        ``sample_weight`` (N,) are multiplicities (module docstring).
        """
        self._check_params()
        one_d = getattr(X, "ndim", np.ndim(X)) == 1
        if one_d:
            s = _check_1d_scores(X, "real")
            labels = check_fit_binary_targets(y, len(s)).astype(np.int64)
            n_classes = 2
        else:
            z, labels = check_fit_logits(X, y)
            n_classes = int(z.shape[1])
        _check_floor(self.floor, n_classes)
        n = len(labels)
        n_folds = self.n_folds or 1
        if n_folds > n:
            raise ValueError(f"n_folds={n_folds} folds need at least {n_folds} calibration "
                             f"samples, got n_samples={n}")
        w_all = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if one_d:
            check_ts_weight_for_1d(self.ts_weight)
        self.__dict__.update(self._fit_predictors(s if one_d else z, labels, w_all, one_d))
        self.n_classes_ = n_classes
        if one_d:
            self.ts_weight_, self.temperature_, self.cv_nll_ = 0.0, 1.0, {}
            if s.min() >= 0 and s.max() <= 1:
                after = self._predict_proba(s) > 0.5
                self.accuracy_change_ = float(np.mean(after == (labels == 1))
                                              - np.mean((s > 0.5) == (labels == 1)))
            return self

        def fit_predict(train, test):  # refitted on 4/5 of the rows, predicting the rest
            part = copy.copy(self)
            part.__dict__.update(self._fit_predictors(z[train], labels[train], w_all[train],
                                                      False))
            part.ts_weight_ = 0.0
            return part._predict_proba(z[test])

        fit_mixture(self, z, labels, sample_weight, fit_predict, lambda: self._reference(z))
        self.accuracy_change_ = accuracy_change(z, self._predict_proba(z), labels)
        return self

    def _fit_predictors(self, x: np.ndarray, labels: np.ndarray, w_all: np.ndarray,
                        one_d: bool) -> dict:
        """The fitted arrays (``scores_``, ``p0_``, ``p1_``, ``offsets_``) on ``(x, labels)``."""
        n_folds = self.n_folds or 1
        folds = self._folds(labels, n_folds)
        maps = []
        for f in range(n_folds):
            w = np.where(folds == f, w_all, 0.0)
            problems = [(x, labels.astype(np.float64), None)] if one_d else \
                self._problems(x, labels)
            for score, target, rows in problems:
                ww = w if rows is None else w[rows]
                maps.append(_fit_slots(score, target, ww))
        lengths = np.array([[0, 0]] + [[len(c), len(p0)] for c, p0, _ in maps], dtype=np.int64)
        return {"scores_": np.concatenate([m[0] for m in maps]).astype(np.float64),
                "p0_": np.concatenate([m[1] for m in maps]),
                "p1_": np.concatenate([m[2] for m in maps]),
                "offsets_": np.cumsum(lengths, axis=0)}

    def _reference(self, z: np.ndarray) -> np.ndarray:
        """``softmax(z / temperature_)`` floored: the other end of the mixture."""
        return floor_probabilities(softmax(z / float(self.temperature_)), self.floor)

    def _folds(self, labels: np.ndarray, n_folds: int) -> np.ndarray:
        """Fold of every sample: a seeded permutation, stratified by label (all 0 for IVAP)."""
        n = len(labels)
        if n_folds == 1:
            return np.zeros(n, dtype=np.int64)
        order = np.random.default_rng(self.random_state).permutation(n)
        order = order[np.argsort(labels[order], kind="stable")]
        folds = np.empty(n, dtype=np.int64)
        folds[order] = np.arange(n) % n_folds
        return folds

    def _problems(self, z: np.ndarray, labels: np.ndarray | None):
        """``(score, target, rows)`` of every binary problem of ``(N, K)`` logits.

        ``rows`` selects the calibration samples of a pair (None: all rows);
        without ``labels`` (prediction) the targets and rows are None.
        """
        k = z.shape[1]
        if self.multiclass == "one_vs_rest":
            logit = _logit_columns(z, None)
            return [(logit[:, c], None if labels is None else (labels == c).astype(np.float64),
                     None) for c in range(k)]
        out = []
        for i in range(k - 1):
            for j in range(i + 1, k):
                d = z[:, j] - z[:, i]
                if labels is None:
                    out.append((d, None, None))
                else:
                    rows = (labels == i) | (labels == j)
                    out.append((d[rows], (labels[rows] == j).astype(np.float64), rows))
        return out

    # ------------------------------------------------------------------ predict
    def _intervals(self, X) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(p0, p1)`` of shape (folds, N, predictors) and whether ``X`` is 1-D."""
        if X.ndim == 1:
            scores = [_check_1d_scores(X, "real")]
        else:
            z = np.asarray(check_predict_logits(X, self.n_classes_, type(self).__name__),
                           dtype=np.float64)
            scores = [s for s, _, _ in self._problems(z, None)]
        o = np.asarray(self.offsets_)
        c_all, p0_all, p1_all = (np.asarray(v) for v in (self.scores_, self.p0_, self.p1_))
        per_fold = len(scores)
        n_folds = (len(o) - 1) // per_fold
        if n_folds * per_fold != len(o) - 1:
            raise ValueError(f"X gives {per_fold} binary problem(s), but "
                             f"{type(self).__name__} holds {len(o) - 1} predictors")
        n = len(scores[0])
        p0 = np.empty((n_folds, n, per_fold))
        p1 = np.empty((n_folds, n, per_fold))
        for m in range(len(o) - 1):
            f, q = divmod(m, per_fold)
            c = c_all[o[m, 0]:o[m + 1, 0]]
            p0[f, :, q], p1[f, :, q] = _read_slots(c, p0_all[o[m, 1]:o[m + 1, 1]],
                                                   p1_all[o[m, 1]:o[m + 1, 1]], scores[q])
        return p0, p1, X.ndim == 1

    def _combine(self, q: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) from merged binary ones (N, predictors), rows sum to 1."""
        out = q if self.multiclass == "one_vs_rest" else self._pairwise(q, q)
        return out / out.sum(axis=1, keepdims=True)

    def _row_blocks(self, n: int) -> list[slice]:
        """Row blocks holding at most :data:`_BLOCK_ENTRIES` (p0, p1) values at a time."""
        step = max(1, _BLOCK_ENTRIES // max(1, len(self.offsets_) - 1))
        return [slice(s, s + step) for s in range(0, max(n, 1), step)]

    def _predict_proba(self, X):
        blocks = self._row_blocks(len(X))
        if len(blocks) == 1:
            return self._predict_proba_rows(X)
        return np.concatenate([self._predict_proba_rows(X[b]) for b in blocks])

    def _predict_proba_rows(self, X):
        p0, p1, one_d = self._intervals(X)
        q = _merge(p0, p1, self.merge)
        if one_d:
            return np.clip(q[:, 0], self.floor, 1.0 - self.floor)
        q = np.clip(q, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
        out = floor_probabilities(self._combine(q), self.floor)
        a = float(getattr(self, "ts_weight_", 0.0))
        if a > 0:
            z = np.asarray(to_numpy(X), dtype=np.float64)
            out = (1.0 - a) * out + a * self._reference(z)
        return out

    def predict_interval(self, X) -> np.ndarray:
        """The Venn-Abers interval ``(p0, p1)`` of every class (every fold for a CVAP).

        For 1-D scores: shape ``(N, 2)``, the interval of the positive class.  For
        ``(N, K)`` logits: ``(N, K, 2)``; one-vs-rest gives each class's own
        interval, one-vs-one the pairwise intervals combined by Manokhin's formula
        (increasing in each pairwise probability, so the lower ends give a lower
        end), both before the renormalisation of :meth:`predict_proba` (whose
        multiclass values may therefore fall outside them).  A CVAP
        (``n_folds``) adds a leading axis of folds.

        Parameters
        ----------
        X : array of shape (N,) or (N, K)
            Same input form as ``fit``.

        Returns
        -------
        ndarray
            ``[..., 0]`` is ``p0``, ``[..., 1]`` is ``p1``; ``p0 <= p1``.

        Examples
        --------
        >>> import numpy as np
        >>> from calkit.posthoc import VennAbersCalibration
        >>> s = np.array([0.1, 0.2, 0.3, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95])
        >>> y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 1, 1])
        >>> va = VennAbersCalibration().fit(s, y)
        >>> va.predict_interval(np.array([0.05, 0.99])).round(4).tolist()
        [[0.0, 0.3333], [0.75, 1.0]]
        """
        self._check_fitted()
        X, _ = predict_input(self, X)
        X = np.asarray(to_numpy(X))
        blocks = self._row_blocks(len(X))
        if len(blocks) == 1:
            return self._interval_rows(X)
        return np.concatenate([self._interval_rows(X[b]) for b in blocks],
                              axis=1 if self.n_folds else 0)

    def _interval_rows(self, X) -> np.ndarray:
        p0, p1, one_d = self._intervals(X)
        if one_d:
            out = np.stack([p0[..., 0], p1[..., 0]], axis=-1)
        elif self.multiclass == "one_vs_rest":
            out = np.stack([p0, p1], axis=-1)
        else:
            tiny, top = np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg
            lo = [self._pairwise(np.clip(a, tiny, top), np.clip(b, tiny, top))
                  for a, b in zip(p0, p1, strict=True)]
            hi = [self._pairwise(np.clip(b, tiny, top), np.clip(a, tiny, top))
                  for a, b in zip(p0, p1, strict=True)]
            out = np.stack([np.stack(lo), np.stack(hi)], axis=-1)
        return out if self.n_folds else out[0]

    def _pairwise(self, own: np.ndarray, other: np.ndarray) -> np.ndarray:
        """Manokhin's ``p_i = 1 / (sum_{j != i} 1 / p_{i|ij} - (K - 2))``, unnormalised.

        Pair ``m = (i, j)`` gives ``p_{j|ij} = own[:, m]`` and ``p_{i|ij} = 1 - other[:, m]``
        (merged values: ``own = other = q``; lower ends: ``own = p0, other = p1``).
        """
        k = self.n_classes_
        inv = np.zeros((own.shape[0], k))
        m = 0
        with np.errstate(over="ignore"):
            for i in range(k - 1):
                for j in range(i + 1, k):
                    inv[:, j] += 1.0 / own[:, m]
                    inv[:, i] += 1.0 / (1.0 - other[:, m])
                    m += 1
            return 1.0 / (inv - (k - 2))  # inv >= K - 1: every entry in (0, 1]
