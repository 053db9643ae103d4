"""Consistency calibration (Tao et al. 2024, arXiv 2410.12295).

The confidence of a prediction is how consistently it survives small
perturbations: each logit vector ``z`` is perturbed ``M`` times at the logit
level, ``z + eps * xi`` with ``xi`` standard Gaussian, or ``z + eps * u`` with
``u`` uniform on ``[0, 1)`` (as in the authors' code; a shift of all classes by
the same constant changes no argmax, so this is the same as noise centred on
zero), and the calibrated probability of class ``k`` is the share of the ``M``
perturbed logit vectors whose argmax is ``k`` (``aggregation="vote"``), or the
mean softmax of the perturbed logits (``aggregation="mean"``).

The noise scale ``eps`` (and, with ``noise="auto"``, the noise family) is
chosen on validation data by minimising ECE (default, as the authors) or NLL
over a grid (ties go to the smallest scale).  The default grid is the authors'
coarse-to-fine search: 20 values on ``[0, 10]``, then three rounds of 20 values
on ``best +- 10^-r`` (``r = 0, 1, 2``), keeping the non-negative ones.

Randomness is seeded (``random_state``), and every evaluation, during the
search and in :meth:`ConsistencyCalibration.predict_proba`, restarts the
generator from that seed: all candidate scales see the same standard noise
(common random numbers, so the search compares scales and not noise draws) and
the same logits always give the same probabilities.  The perturbations are
drawn and counted in blocks of about 4 million numbers (no Python loop over
samples or perturbations).

Vote shares are multiples of ``1 / M`` and can be exactly 0 for the true
class, so the NLL of the vote output can be large; ``smoothing = a`` reports
``(votes + a) / (M + K a)`` instead (default 0, the method as published).
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from calkit._array import to_numpy
from calkit._threads import worker_count
from calkit._validation import check_logits, check_option, check_sample_weight
from calkit.binning import _bin_table
from calkit.logits import softmax
from calkit.metrics.binned import ece, error_from_table
from calkit.metrics.scores import nll
from calkit.posthoc._accuracy import accuracy_change
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._mixture import nll_mixture_weight as _nll_mixture_weight
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._score_map import _check_floor, floor_probabilities
from calkit.posthoc.temperature import TemperatureScaling

NOISES = ("gaussian", "uniform", "auto")
#: most perturbations per sample (fit and load refuse more: the votes cost N x K x m)
MAX_PERTURBATIONS = 10**6
AGGREGATIONS = ("vote", "mean")
CRITERIA = ("ece", "nll")
_BLOCK_ELEMENTS = 1 << 22
#: noise numbers per step of the envelope search (cache-sized: 512 KiB of float32)
_CHUNK_ELEMENTS = 1 << 17
#: candidate lines collected before an envelope walk
_WALK_LINES = 1 << 20


def perturbed_probabilities(logits: np.ndarray, scale: float, noise: str = "gaussian",
                            n_perturbations: int = 200, aggregation: str = "vote",
                            random_state=0, smoothing: float = 0.0) -> np.ndarray:
    """Vote shares (or mean softmax) of ``n_perturbations`` noisy copies of the logits.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    scale : float
        Noise scale ``eps >= 0`` (0: the one-hot argmax, or the softmax for "mean").
    noise : {"gaussian", "uniform"}
    n_perturbations : int
    aggregation : {"vote", "mean"}
    random_state : int or None
        Seed of a fresh ``numpy.random.default_rng``; the standard noise is
        drawn in float32 as ``(M, N, K)`` in perturbation-major order, in
        blocks.  Votes are counted on float32 logits ``z + eps * xi``; the mean
        softmax is computed in float64.
    smoothing : float, default=0
        Added to every vote count (``"vote"`` only).

    Returns
    -------
    ndarray of shape (N, K)

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.consistency import perturbed_probabilities
    >>> z = np.array([[2.0, 0.0], [0.0, 0.1]])
    >>> perturbed_probabilities(z, 0.0).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> p = perturbed_probabilities(z, 1.0, n_perturbations=4000, random_state=0)
    >>> p.sum(1).tolist(), bool(0.88 < p[0, 0] < 0.94)   # Phi(2 / sqrt 2) = 0.921
    ([1.0, 1.0], True)
    """
    check_option(noise, "noise", NOISES[:2])
    check_option(aggregation, "aggregation", AGGREGATIONS)
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite non-negative number, got {scale!r}")
    z = np.asarray(to_numpy(check_logits(logits, "logits")), dtype=np.float64)
    n, k = z.shape
    rng = np.random.default_rng(random_state)
    draw = rng.standard_normal if noise == "gaussian" else rng.random
    block = max(1, _BLOCK_ELEMENTS // (n * k))
    total = np.zeros(n * k)
    offset = np.arange(n) * k
    z32, scale32 = z.astype(np.float32), np.float32(scale)
    for start in range(0, n_perturbations, block):
        m = min(block, n_perturbations - start)
        xi = draw((m, n, k), dtype=np.float32)
        if aggregation == "vote":  # float32 suffices for an argmax and is 2-3x faster
            noisy = z32 + scale32 * xi
            total += np.bincount((noisy.argmax(axis=2) + offset).ravel(), minlength=n * k)
        else:
            noisy = z + scale * xi.astype(np.float64)
            noisy -= noisy.max(axis=2, keepdims=True)
            np.exp(noisy, out=noisy)
            total += (noisy / noisy.sum(axis=2, keepdims=True)).sum(axis=0).ravel()
    total = total.reshape(n, k)
    if aggregation == "vote":
        return (total + smoothing) / (n_perturbations + k * smoothing)
    return total / n_perturbations


class VotePath:
    """Every perturbed copy's argmax as a function of the noise scale, for ``eps < eps_max``.

    With the standard noise ``xi`` fixed (common random numbers), the perturbed
    logits of one copy are ``K`` lines in ``eps``, ``z_k + eps * xi_k``, and its
    vote goes to the upper envelope of these lines: a piecewise-constant winner
    that changes only where two lines cross.  Walking the envelope from
    ``eps = 0`` (the argmax of ``z``) gives each copy's crossing points below
    ``eps_max``; the vote counts at any scale are then the counts at 0 plus the
    changes at crossings below it.  One pass over the noise thus serves every
    candidate scale of the search (:meth:`counts`), instead of drawing and
    counting ``M x N x K`` perturbed logits per scale.

    The noise is drawn exactly as by :func:`perturbed_probabilities` (same seed,
    same order), and a line is walked only if it can be on the envelope below
    ``eps_max`` (:func:`_candidates`, float32 tests without division); the
    crossings are computed in float64 from the float32 logits
    and noise.  The counts equal :func:`perturbed_probabilities`' except where
    two perturbed logits tie within float32 rounding (tested: a handful of
    votes in millions).

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    noise : {"gaussian", "uniform"}
    n_perturbations : int
    random_state : int or None
    eps_max : float
        Largest scale :meth:`counts` may be asked for (exclusive).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.consistency import VotePath, perturbed_probabilities
    >>> z = np.random.default_rng(0).normal(size=(50, 4)) * 2
    >>> path = VotePath(z, "gaussian", 100, random_state=3, eps_max=5.0)
    >>> direct = perturbed_probabilities(z, 1.5, "gaussian", 100, random_state=3)
    >>> bool(np.array_equal(path.counts(1.5) / 100, direct))
    True
    """

    def __init__(self, logits, noise: str, n_perturbations: int, random_state=0,
                 eps_max: float = 11.0):
        check_option(noise, "noise", NOISES[:2])
        z = np.asarray(to_numpy(check_logits(logits, "logits")), dtype=np.float64)
        n, k = z.shape
        self.eps_max = float(eps_max)
        self.shape = (n, k)
        z32 = z.astype(np.float32)
        w0 = np.argmax(z32, axis=1)
        rows = np.arange(n)
        self.initial = np.bincount(rows * k + w0, minlength=n * k) * int(n_perturbations)
        gap = z32[rows, w0][:, None] - z32  # >= 0, float32 as the votes
        reach = np.float32(self.eps_max)
        rng = np.random.default_rng(random_state)
        draw = rng.standard_normal if noise == "gaussian" else rng.random
        events, found, pending = [], [], 0
        for c0, mc, s0, s1 in _noise_chunks(n, k, int(n_perturbations)):
            xi = draw((mc, s1 - s0, k), dtype=np.float32)  # the stream's next mc x (s1 - s0) x k
            copy, sample, cls, xi_w0 = _candidates(xi, z32[s0:s1], gap[s0:s1], w0[s0:s1], reach)
            found.append(((copy + c0) * n + sample + s0, sample + s0, cls,
                          z32[sample + s0, cls], xi[copy, sample, cls], xi_w0[copy, sample]))
            pending += len(copy)
            if pending >= _WALK_LINES:  # walk in batches: few, long vectorised steps
                events.append(_walk_envelope(*_joined(found), w0, z32, self.eps_max))
                found, pending = [], 0
        if found:
            events.append(_walk_envelope(*_joined(found), w0, z32, self.eps_max))
        at, cell_new, cell_old = (np.concatenate(part) for part in zip(*events, strict=True))
        order = np.argsort(at, kind="stable")
        self._at, self._new, self._old = at[order], cell_new[order], cell_old[order]

    def counts(self, eps: float) -> np.ndarray:
        """Vote counts ``(N, K)`` at noise scale ``0 <= eps < eps_max``."""
        if not 0 <= eps < self.eps_max:
            raise ValueError(f"eps must lie in [0, {self.eps_max}), got {eps!r}")
        n, k = self.shape
        m = int(np.searchsorted(self._at, eps, side="left"))  # crossings strictly below eps
        out = self.initial + np.bincount(self._new[:m], minlength=n * k)
        out -= np.bincount(self._old[:m], minlength=n * k)
        return out.reshape(n, k)

    def counts_many(self, eps_values) -> list[np.ndarray]:
        """:meth:`counts` at each of several scales, in their order.

        Walks the sorted crossings once, from the smallest scale to the largest,
        instead of counting all crossings below each scale afresh.
        """
        eps_values = [float(e) for e in eps_values]
        for eps in eps_values:
            if not 0 <= eps < self.eps_max:
                raise ValueError(f"eps must lie in [0, {self.eps_max}), got {eps!r}")
        n, k = self.shape
        out, done, result = self.initial.copy(), 0, [None] * len(eps_values)
        for i in np.argsort(eps_values, kind="stable"):
            m = int(np.searchsorted(self._at, eps_values[i], side="left"))
            if m > done:
                out += np.bincount(self._new[done:m], minlength=n * k)
                out -= np.bincount(self._old[done:m], minlength=n * k)
                done = m
            result[i] = out.reshape(n, k).copy()
        return result


def _noise_chunks(n, k, n_perturbations):
    """``(first copy, copies, first sample, end sample)`` chunks of the ``(M, N, K)`` noise.

    In stream order (perturbation-major, as drawn by :func:`perturbed_probabilities`)
    and of about ``_CHUNK_ELEMENTS`` numbers each: whole copies when one copy is
    smaller, else runs of samples of one copy.  Drawing chunk after chunk from one
    generator gives the same numbers as one draw of the whole array.
    """
    if n * k <= _CHUNK_ELEMENTS:
        per = _CHUNK_ELEMENTS // (n * k)
        for c in range(0, n_perturbations, per):
            yield c, min(per, n_perturbations - c), 0, n
        return
    per = max(1, _CHUNK_ELEMENTS // k)
    for c in range(n_perturbations):
        for s in range(0, n, per):
            yield c, 1, s, min(n, s + per)


def _joined(found):
    """The candidate lines of several chunks as one set of arrays (still sorted by copy)."""
    return tuple(np.concatenate(part) for part in zip(*found, strict=True))


def _candidates(xi, z32, gap, w0, reach):
    """The lines of ``xi`` (M, N, K) that can be on a copy's envelope in ``[0, reach)``.

    A line on the envelope below ``reach`` overtakes the zero-noise winner ``w0``
    before ``reach`` (``gap < reach * (xi_k - xi_w0)``) and is itself overtaken by
    the winner at ``reach``, ``wE``, from below: the envelope is convex, so its
    slopes lie between ``xi_w0`` and ``xi_wE`` and a line on it is above both
    winners' lines on a common stretch, ``gap_k / (xi_k - xi_w0) < (z_k - z_wE) /
    (xi_wE - xi_k)`` (written without division, with a relative margin of 1e-4
    for float32 rounding: extra candidates only cost time).  A copy whose two
    winners agree has no crossing at all.  (On CIFAR-100 LeNet outputs this
    keeps 1 in 9 of the lines that pass the first test.)

    Returns the indices ``(copy, sample, class)`` of the candidates in C order
    (what ``np.nonzero`` of the mask gives) and the slopes ``xi_w0`` ``(M, N)``;
    the second test is evaluated only on the lines that pass the first.
    """
    m, n, k = xi.shape
    rows = np.arange(n)
    xi_w0 = xi[:, rows, w0]
    t = xi - xi_w0[:, :, None]  # the slope xi_k - xi_w0
    t *= reach
    copy, sample, cls = np.nonzero(gap < t)
    np.multiply(xi, reach, out=t)
    t += z32
    w_end = np.argmax(t, axis=2)  # the winner at reach, argmax(z + reach * xi)
    xi_c = xi[copy, sample, cls]
    end = w_end[copy, sample]
    xi_end = xi[copy, sample, end]
    lhs = gap[sample, cls] * (xi_end - xi_c)
    rhs = (z32[sample, cls] - z32[sample, end]) * (xi_c - xi_w0[copy, sample])
    keep = (xi_c < xi_end) & (lhs < rhs + np.float32(1e-4) * (np.abs(lhs) + np.abs(rhs)))
    flat = (copy[keep] * n + sample[keep]) * k + cls[keep]
    moved = np.flatnonzero(w_end != w0[None, :])  # copies whose winner changes below reach
    flat = np.sort(np.concatenate([flat, moved * k + w_end.ravel()[moved]]))
    copy, rest = np.divmod(flat, n * k)
    sample, cls = np.divmod(rest, k)
    return copy, sample, cls, xi_w0


def _walk_envelope(pair, sample, cls, z_c, s_c, s_w0, w0, z32, eps_max):
    """Crossings below ``eps_max`` of the upper envelope of each copy's candidate lines.

    ``pair`` (sorted) names the copy of each candidate line ``z_c + eps * s_c``
    (``s_w0``: the slope of that copy's zero-noise winner ``w0``); the walk starts
    from ``w0`` in every copy and repeatedly moves to the candidate that overtakes
    the current winner first (ties at one crossing: the walk visits them in turn,
    ending with the steepest).  Returns the crossing points and the flat
    ``(sample, class)`` cells gaining and losing the vote.
    """
    k = z32.shape[1]
    first = np.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    seg = np.cumsum(first) - 1  # candidate -> its copy among those with candidates
    copy_sample = sample[first]
    win = w0[copy_sample]
    win_z = z32[copy_sample, win].astype(np.float64)
    win_s = s_w0[first].astype(np.float64)
    now = np.zeros(len(copy_sample))
    z_c, s_c = z_c.astype(np.float64), s_c.astype(np.float64)
    out_at, out_new, out_old = [], [], []
    while len(seg):
        d = s_c - win_s[seg]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(d > 0, (win_z[seg] - z_c) / d, np.inf)
        cross = np.maximum(cross, now[seg])
        keep = cross < eps_max  # the others can never win below eps_max again
        seg, cls, z_c, s_c, cross = seg[keep], cls[keep], z_c[keep], s_c[keep], cross[keep]
        if not len(seg):
            break
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        best = np.minimum.reduceat(cross, starts)
        owner = seg[starts]
        hit = np.flatnonzero(cross == np.repeat(best, np.diff(np.r_[starts, len(seg)])))
        hit = hit[np.r_[True, seg[hit][1:] != seg[hit][:-1]]]  # first hit per copy
        new = cls[hit]
        out_at.append(best)
        out_new.append(copy_sample[owner] * k + new)
        out_old.append(copy_sample[owner] * k + win[owner])
        win[owner], win_z[owner], win_s[owner], now[owner] = new, z_c[hit], s_c[hit], best
    if not out_at:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0), empty, empty
    return np.concatenate(out_at), np.concatenate(out_new), np.concatenate(out_old)


def default_scales(best: float | None = None, level: int = 0) -> np.ndarray:
    """One round of the authors' grid: ``linspace(0, 10, 20)`` or ``best +- 10^-level``.

    Examples
    --------
    >>> from calkit.posthoc.consistency import default_scales
    >>> default_scales()[:3].round(4).tolist()
    [0.0, 0.5263, 1.0526]
    >>> float(default_scales(2.0, 1).min()), float(default_scales(2.0, 1).max())
    (1.9, 2.1)
    """
    if best is None:
        return np.linspace(0, 10, 20)
    grid = np.linspace(best - 10.0 ** -level, best + 10.0 ** -level, 20)
    return grid[grid >= 0]


class ConsistencyCalibration(BaseCalibrator):
    """Confidence from agreement under logit perturbations, noise scale chosen on validation.

    Parameters
    ----------
    noise : {"auto", "gaussian", "uniform"}, default="auto"
        Noise family; ``"auto"`` tries both and keeps the better (as the authors).
    noise_scale : float, optional
        A fixed noise scale ``eps >= 0``; default: searched on validation data.
    noise_scales : sequence of float, optional
        Candidate scales; default: the authors' coarse-to-fine grid (module
        docstring).
    n_perturbations : int, default=200
        Perturbations per sample (the authors use 1000; the vote shares are
        multiples of ``1 / n_perturbations``).
    aggregation : {"vote", "mean"}, default="vote"
        Share of argmax votes, or mean softmax of the perturbed logits.
    criterion : {"ece", "nll"}, default="ece"
        What the search minimises (ECE: 15 equal-width bins, top label).
    smoothing : float, default=0.0
        Pseudo-count added to every class's votes.
    ts_weight : float or "auto", default="auto"
        Weight ``a`` of the temperature-scaled softmax mixed into the output,
        ``(1 - a) votes + a softmax(z / T)`` (``T`` fitted by
        :class:`~calkit.posthoc.TemperatureScaling` on the same data): the
        votes give a class that no perturbed copy chose probability exactly 0,
        which makes the log-loss infinite whenever that class is the truth.
        ``"auto"`` chooses ``a`` in ``[0, 1]`` by validation NLL after the noise
        search (the mixture's NLL is convex in ``a``); ``0`` is the method as
        published.
    floor : float, default=1e-12
        Least probability of any class (:func:`calkit.posthoc._score_map.floor_probabilities`).
    random_state : int, default=0
        Seed; the same logits always give the same probabilities.

    Attributes
    ----------
    noise_scale_ : float
    noise_ : str
        The noise family used.
    temperature_ : float
        Temperature of the mixed-in softmax (1.0 when ``ts_weight_ == 0``).
    ts_weight_ : float
        The weight ``a`` used.
    n_classes_ : int
    scores_ : dict
        ``{noise: (scales, criterion values)}`` of the search.
    accuracy_change_ : float
        Accuracy change on the fitting data: the most-voted class can differ
        from the argmax of the logits, so this calibrator **can change
        predictions**.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.consistency import ConsistencyCalibration
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> z = 4.0 * (np.eye(3)[y] + rng.normal(0, 0.7, (300, 3)))   # over-confident
    >>> cc = ConsistencyCalibration(noise="gaussian", noise_scales=[1.0, 4.0, 8.0],
    ...                             n_perturbations=100).fit(z, y)
    >>> cc.noise_, cc.noise_scale_ in (1.0, 4.0, 8.0), cc.predict_proba(z).shape
    ('gaussian', True, (300, 3))
    >>> bool(cc.predict_proba(z).min() >= 1e-12), 0 <= cc.ts_weight_ <= 1
    (True, True)
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "noise_scale_": ValueSpec("float", ge=0), "noise_": ValueSpec("str", choices=NOISES[:2]),
        "temperature_": ValueSpec("float", gt=0), "ts_weight_": ValueSpec("float", ge=0, le=1),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "scores_": ValueSpec("unsaved"),  # the search's {noise: (scales, values)}
        "accuracy_change_": ValueSpec("unsaved")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "smoothing": ValueSpec("float", ge=0), "floor": ValueSpec("float", ge=0, lt=0.5),
        "random_state": ValueSpec("int", ge=0, none_ok=True)}

    def __init__(self, noise: str = "auto", noise_scale: float | None = None,
                 noise_scales=None, n_perturbations: int = 200, aggregation: str = "vote",
                 criterion: str = "ece", smoothing: float = 0.0, ts_weight="auto",
                 floor: float = 1e-12, random_state: int = 0):
        self.noise = noise
        self.noise_scale = noise_scale
        self.noise_scales = noise_scales
        self.n_perturbations = n_perturbations
        self.aggregation = aggregation
        self.criterion = criterion
        self.smoothing = smoothing
        self.ts_weight = ts_weight
        self.floor = floor
        self.random_state = random_state

    def _check_params(self) -> None:
        check_option(self.noise, "noise", NOISES)
        check_option(self.aggregation, "aggregation", AGGREGATIONS)
        check_option(self.criterion, "criterion", CRITERIA)
        m = self.n_perturbations
        if isinstance(m, bool) or not isinstance(m, Integral) or not 1 <= m <= MAX_PERTURBATIONS:
            raise ValueError(f"n_perturbations must be an integer in [1, {MAX_PERTURBATIONS}], "
                             f"got {m!r}")
        for name in ("smoothing",) + (("noise_scale",) if self.noise_scale is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not v >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        a = self.ts_weight
        if not (isinstance(a, str) and a == "auto") and (
                isinstance(a, bool) or not isinstance(a, Real) or not 0 <= a <= 1):
            raise ValueError(f"ts_weight must be 'auto' or a number in [0, 1], got {a!r}")
        if not (self.random_state is None or isinstance(self.random_state, Integral)):
            raise ValueError(f"random_state must be an integer seed or None, got "
                             f"{self.random_state!r} (a Generator would not repeat its draws)")

    def _proba(self, z: np.ndarray, scale: float, noise: str) -> np.ndarray:
        return perturbed_probabilities(z, scale, noise, int(self.n_perturbations),
                                       self.aggregation, self.random_state,
                                       float(self.smoothing))

    def _score(self, labels, p, sample_weight=None) -> float:
        if self.criterion == "ece":
            return float(ece(labels, p, sample_weight=sample_weight))
        return float(nll(labels, p, sample_weight=sample_weight))

    def _scorer(self, z, labels, noise: str, eps_max: float, sample_weight=None):
        """``(values, proba)``: the criterion at a list of scales, the probabilities at one.

        Votes from one :class:`VotePath`."""
        if self.aggregation == "mean":
            def proba(scale):
                return self._proba(z, scale, noise)

            def values(scales):
                return [self._score(labels, proba(s), sample_weight) for s in scales]
            return values, proba
        m, a = int(self.n_perturbations), float(self.smoothing)
        path = VotePath(z, noise, m, self.random_state, eps_max)
        k = z.shape[1]

        def proba(scale):
            return (path.counts(scale) + a) / (m + k * a)

        def value(counts):
            if self.criterion == "nll":
                return self._score(labels, (counts + a) / (m + k * a), sample_weight)
            # top-label ECE straight from the counts (what ``ece`` computes from p)
            top = np.argmax(counts, axis=1)
            conf = (counts[np.arange(len(top)), top] + a) / (m + k * a)
            table = _bin_table(conf, (top == labels).astype(np.float64), 15, "uniform", "right",
                               sample_weight)
            return float(error_from_table(table))

        def values(scales):
            return [value(c) for c in path.counts_many(scales)]
        return values, proba

    def _search(self, z, labels, noise: str,
                sample_weight=None) -> tuple[float, float, tuple, np.ndarray]:
        if self.noise_scales is not None:
            grid = np.asarray(self.noise_scales, dtype=np.float64).ravel()
            if grid.size == 0 or not (grid >= 0).all() or not np.isfinite(grid).all():
                raise ValueError("noise_scales must be a non-empty sequence of finite "
                                 "non-negative numbers")
            eps_max = float(grid.max())
        elif self.noise_scale is not None:
            grid, eps_max = np.array([float(self.noise_scale)]), float(self.noise_scale)
        else:
            grid, eps_max = default_scales(), 11.12  # rounds reach at most 10 + 1 + 0.1 + 0.01
        score, proba = self._scorer(z, labels, noise, eps_max * (1 + 1e-9) + 1e-9,
                                    sample_weight)
        scales, values = [], []

        def evaluate(candidates):
            fresh = []
            for s in candidates:
                if not any(np.isclose(s, scales + fresh, rtol=0, atol=1e-12)):
                    fresh.append(float(s))
            scales.extend(fresh)
            values.extend(score(fresh))
            order = np.argsort(scales, kind="stable")  # ties: the smallest scale wins
            return scales[order[int(np.argmin(np.asarray(values)[order]))]]

        best = evaluate(grid)
        if self.noise_scales is None and self.noise_scale is None:
            for level in range(3):
                best = evaluate(default_scales(best, level))
        order = np.argsort(scales, kind="stable")
        return (best, float(min(values)), (np.asarray(scales)[order], np.asarray(values)[order]),
                proba(best))

    def fit(self, X, y, sample_weight=None) -> ConsistencyCalibration:
        """Choose the noise scale on validation logits ``X`` (N, K) and labels ``y``.

        ``X`` may be 1-D probabilities of the positive class; ``sample_weight``
        (N,) weights the search criterion, the temperature and the mixture weight.
        """
        self._check_params()
        z, labels = check_fit_logits(X, y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, len(labels))
        _check_floor(self.floor, z.shape[1])
        noises = ("gaussian", "uniform") if self.noise == "auto" else (self.noise,)
        self.scores_ = {}
        best = None
        searched = _searches(self, z, labels, noises, sample_weight)
        for noise, (scale, value, table, votes) in zip(noises, searched, strict=True):
            self.scores_[noise] = table
            if best is None or value < best[0]:
                best = (value, scale, noise, votes)
        _, self.noise_scale_, self.noise_, votes = best
        self.temperature_, self.ts_weight_ = 1.0, 0.0
        if self.ts_weight == "auto" or self.ts_weight > 0:
            with warnings.catch_warnings():  # a T at its bound is still a usable mixture
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.temperature_ = TemperatureScaling().fit(
                    z, labels, sample_weight=sample_weight).temperature_
            soft = softmax(z / self.temperature_)
            self.ts_weight_ = (_nll_mixture_weight(votes, soft, labels, sample_weight)
                               if self.ts_weight == "auto" else float(self.ts_weight))
        self.n_classes_ = int(z.shape[1])
        self.accuracy_change_ = accuracy_change(z, self._mix(z, votes), labels)
        return self

    def _mix(self, z: np.ndarray, votes: np.ndarray) -> np.ndarray:
        a = float(self.ts_weight_)
        q = votes if a == 0 else (1 - a) * votes + a * softmax(z / float(self.temperature_))
        return floor_probabilities(q, float(self.floor))

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = np.asarray(check_predict_logits(X, int(self.n_classes_)), dtype=np.float64)
        return self._mix(z, self._proba(z, float(self.noise_scale_), str(self.noise_)))


def _searches(cal, z, labels, noises, sample_weight):
    """``cal._search`` of each noise family; the second family on a thread of its own.

    The families are independent (each search restarts its generator from the
    seed), so the results do not depend on the threads; the numpy passes of the
    searches release the GIL, which makes the default two-family fit up to twice
    as fast in wall time on two cores.
    """
    if len(noises) == 1 or worker_count() < 2:
        return [cal._search(z, labels, noise, sample_weight) for noise in noises]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calkit-consistency") as pool:
        later = pool.submit(cal._search, z, labels, noises[1], sample_weight)
        first = cal._search(z, labels, noises[0], sample_weight)
        return [first, later.result()]

