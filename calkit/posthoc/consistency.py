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

from numbers import Integral, Real
from typing import ClassVar

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_logits, check_option
from calkit.metrics.binned import ece
from calkit.metrics.scores import nll
from calkit.posthoc._base import BaseCalibrator, check_fit_logits, check_predict_logits
from calkit.posthoc._persistence import ValueSpec

NOISES = ("gaussian", "uniform", "auto")
AGGREGATIONS = ("vote", "mean")
CRITERIA = ("ece", "nll")
_BLOCK_ELEMENTS = 1 << 22
#: most perturbations per sample (the authors use 1,000)
MAX_PERTURBATIONS = 10**6


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
    random_state : int, default=0
        Seed; the same logits always give the same probabilities.

    Attributes
    ----------
    noise_scale_ : float
    noise_ : str
        The noise family used.
    n_classes_ : int
    scores_ : dict
        ``{noise: (scales, criterion values)}`` of the search.

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
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "noise_scale_": ValueSpec("float", ge=0), "noise_": ValueSpec("str", choices=NOISES[:2]),
        "n_classes_": ValueSpec("int", ge=2, dim="K"),
        "scores_": ValueSpec("unsaved")}  # the search's {noise: (scales, values)}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {
        "smoothing": ValueSpec("float", ge=0), "random_state": ValueSpec("int", ge=0, none_ok=True)}

    def __init__(self, noise: str = "auto", noise_scale: float | None = None,
                 noise_scales=None, n_perturbations: int = 200, aggregation: str = "vote",
                 criterion: str = "ece", smoothing: float = 0.0, random_state: int = 0):
        self.noise = noise
        self.noise_scale = noise_scale
        self.noise_scales = noise_scales
        self.n_perturbations = n_perturbations
        self.aggregation = aggregation
        self.criterion = criterion
        self.smoothing = smoothing
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

    def _search(self, z, labels, noise: str, sample_weight=None) -> tuple[float, float, tuple]:
        scales, values = [], []

        def evaluate(grid):
            for s in grid:
                if not any(np.isclose(s, scales, rtol=0, atol=1e-12)):
                    scales.append(float(s))
                    values.append(self._score(labels, self._proba(z, float(s), noise),
                                              sample_weight))
            order = np.argsort(scales, kind="stable")  # ties: the smallest scale wins
            return scales[order[int(np.argmin(np.asarray(values)[order]))]]

        if self.noise_scales is not None:
            grid = np.asarray(self.noise_scales, dtype=np.float64).ravel()
            if grid.size == 0 or not (grid >= 0).all() or not np.isfinite(grid).all():
                raise ValueError("noise_scales must be a non-empty sequence of finite "
                                 "non-negative numbers")
            best = evaluate(grid)
        else:
            best = evaluate(default_scales())
            for level in range(3):
                best = evaluate(default_scales(best, level))
        order = np.argsort(scales, kind="stable")
        return best, float(min(values)), (np.asarray(scales)[order], np.asarray(values)[order])

    def fit(self, X, y, sample_weight=None) -> ConsistencyCalibration:
        """Choose the noise scale on validation logits ``X`` (N, K) and labels ``y``.

        ``X`` may be 1-D probabilities of the positive class; ``sample_weight``
        (N,) weights the search criterion.
        """
        self._check_params()
        z, labels = check_fit_logits(X, y)
        noises = ("gaussian", "uniform") if self.noise == "auto" else (self.noise,)
        self.scores_ = {}
        best = None
        for noise in noises:
            if self.noise_scale is not None:
                scale = float(self.noise_scale)
                value = self._score(labels, self._proba(z, scale, noise), sample_weight)
                self.scores_[noise] = (np.array([scale]), np.array([value]))
            else:
                scale, value, self.scores_[noise] = self._search(z, labels, noise,
                                                                 sample_weight)
            if best is None or value < best[0]:
                best = (value, scale, noise)
        _, self.noise_scale_, self.noise_ = best
        self.n_classes_ = int(z.shape[1])
        return self

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = np.asarray(check_predict_logits(X, int(self.n_classes_)), dtype=np.float64)
        return self._proba(z, float(self.noise_scale_), str(self.noise_))

