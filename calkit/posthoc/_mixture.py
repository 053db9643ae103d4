"""Mixing a calibrator's output with a reference distribution, the weight chosen by NLL.

:class:`~calkit.posthoc.ConsistencyCalibration` mixes its vote shares with the
temperature-scaled softmax, and so do the top-label / one-vs-rest maps of
:mod:`calkit.posthoc._score_map` and :class:`~calkit.posthoc.ScalingBinning`
with their output.  The mixture ``(1 - a) p + a q`` of two probability rows is a
probability row, and its mean log-loss is convex in ``a`` (``-log`` of an affine
function), so the best ``a`` in ``[0, 1]`` is the root of the derivative
(:func:`nll_mixture_weight`).

A weight chosen on the data a map was fitted on would favour the map (a step map
on 5,000 points fits its own outcomes far better than new ones), so the maps
choose it on **out-of-fold** outputs (:func:`cross_val_weight`): the map is
refitted on all but one fold and predicts that fold, for each of ``n_folds``
folds, and the weight minimises the log-loss of the out-of-fold mixtures.  The
weight ``a = 1`` (the reference alone) is a candidate, so the chosen mixture's
out-of-fold log-loss is never above the reference's.  This is the
"cross-validated mixture" (stacking of two predictors, Breiman 1996, "Stacked
regressions"; with a log-loss, a linear pool of two forecasts).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Real

import numpy as np
from scipy.optimize import brentq
from sklearn.exceptions import ConvergenceWarning

from calkit.logits import softmax
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc.temperature import TemperatureScaling

#: folds of the internal cross-validation behind ``ts_weight="auto"``
N_FOLDS = 5

#: fitted attributes of a calibrator mixed with temperature scaling (:func:`fit_mixture`)
MIXTURE_FITTED_SPEC = {
    "ts_weight_": ValueSpec("float", ge=0, le=1, required=False),
    "temperature_": ValueSpec("float", gt=0, required=False),
    "cv_nll_": ValueSpec("unsaved")}


def check_ts_weight(weight) -> None:
    """``ts_weight`` (of the maps, :class:`~calkit.posthoc.ScalingBinning` and
    :class:`~calkit.posthoc.VennAbersCalibration`) is valid.

    It must be ``"auto"`` or a number in ``[0, 1]``.

    Examples
    --------
    >>> from calkit.posthoc._mixture import check_ts_weight
    >>> check_ts_weight(1.5)
    Traceback (most recent call last):
    ...
    ValueError: ts_weight must be 'auto' or a number in [0, 1], got 1.5
    """
    if not (isinstance(weight, str) and weight == "auto") and (
            isinstance(weight, bool) or not isinstance(weight, Real) or not 0 <= weight <= 1):
        raise ValueError(f"ts_weight must be 'auto' or a number in [0, 1], got {weight!r}")


def check_ts_weight_for_1d(weight) -> None:
    """1-D scores are calibrated without the mixture: a fixed ``ts_weight > 0`` is refused."""
    if not isinstance(weight, str) and weight > 0:
        raise ValueError("ts_weight mixes (N, K) probabilities with temperature scaling; 1-D "
                         "scores get the calibrator alone: pass ts_weight=0 or 'auto'")


def check_mixture_attributes(est, temperature: str = "temperature_") -> None:
    """A loaded calibrator with ``ts_weight_ > 0`` has the temperature it mixes in."""
    if getattr(est, "ts_weight_", 0.0) > 0 and not hasattr(est, temperature):
        raise ValueError(f"ts_weight_ > 0 needs {temperature} (the mixed-in softmax)")


def nll_mixture_weight(p: np.ndarray, q: np.ndarray, labels: np.ndarray,
                       sample_weight=None) -> float:
    """``a`` in [0, 1] minimising ``mean -log((1 - a) p_y + a q_y)`` (convex in ``a``).

    ``sample_weight`` makes it the weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._mixture import nll_mixture_weight
    >>> p, q = np.array([[1.0, 0.0]] * 3), np.full((3, 2), 0.5)
    >>> round(nll_mixture_weight(p, q, np.array([0, 0, 1])), 6)   # 1 / (1 - a/2) = 1 / a
    0.666667
    """
    rows = np.arange(len(labels))
    py, qy = p[rows, labels], q[rows, labels]

    w = np.full(len(labels), 1.0 / len(labels)) if sample_weight is None else \
        np.asarray(sample_weight, dtype=np.float64) / np.sum(sample_weight)

    def slope(a):  # derivative of the mean NLL in a, increasing
        return float(w @ ((py - qy) / np.maximum((1 - a) * py + a * qy, 1e-300)))

    if slope(0.0) >= 0:
        return 0.0
    if slope(1.0) <= 0:
        return 1.0
    return float(brentq(slope, 0.0, 1.0, xtol=1e-10))


def fit_temperature(z: np.ndarray, labels: np.ndarray, sample_weight=None) -> float:
    """Temperature of :class:`~calkit.posthoc.TemperatureScaling` fitted on ``(z, labels)``.

    A temperature at its search bound is still a usable mixture end, so the
    convergence warning is not passed on.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._mixture import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 2000)
    >>> z = 2.0 * (np.eye(3)[y] + rng.normal(0, 0.8, (2000, 3)))
    >>> 0.5 < fit_temperature(3.0 * z, y) / fit_temperature(z, y) / 3.0 < 1.5
    True
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(TemperatureScaling().fit(z, labels, sample_weight=sample_weight)
                     .temperature_)


def score_folds(scores: np.ndarray, labels: np.ndarray, sample_weight=None,
                n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold of every sample: distinct ``(score, label)`` pairs dealt round in score order.

    The distinct pairs of the samples with positive weight are sorted by score
    (then label) and pair ``i`` goes to fold ``i % n``, ``n = min(n_folds,
    number of pairs)``: every fold spans the whole score range, the split needs
    no seed, and identical samples share a fold, so a sample of integer weight
    ``w`` and ``w`` copies of it are split alike.  Samples of weight 0 get fold
    ``-1``: never held out, in every training part (where they weigh nothing).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._mixture import score_folds
    >>> score_folds(np.array([0.9, 0.5, 0.7, 0.5, 0.6]), np.array([1, 0, 1, 0, 0]),
    ...             n_folds=2).tolist()
    [1, 0, 0, 0, 1]
    >>> score_folds(np.array([0.9, 0.5, 0.7]), np.array([1, 0, 1]), np.array([1, 0, 2]),
    ...             n_folds=2).tolist()
    [1, -1, 0]
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    keep = np.ones(len(scores), dtype=bool) if sample_weight is None else \
        np.asarray(sample_weight, dtype=np.float64) > 0
    folds = np.full(len(scores), -1, dtype=np.int64)
    if not keep.any():
        return folds
    pairs = np.stack([scores[keep], labels[keep].astype(np.float64)], axis=1)
    _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    n = min(int(n_folds), len(first))
    folds[keep] = np.arange(len(first))[np.ravel(inverse)] % n
    return folds


def cross_val_weight(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     reference: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                     sample_weight=None) -> tuple[float, dict[str, float]]:
    """Weight ``a`` of ``reference`` in ``(1 - a) map + a reference``, by out-of-fold NLL.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train, test)`` fits the map on the rows ``train`` (a
        boolean mask) and returns its probabilities ``(n_test, K)`` on the rows
        ``test``.
    reference : ndarray of shape (N, K)
        The reference probabilities (for the maps: the input itself).
    labels : ndarray of shape (N,)
        Class indices.
    folds : ndarray of shape (N,)
        Fold of every row (:func:`score_folds`; ``-1``: never held out, and its
        out-of-fold output is taken as the reference's); fewer than 2 folds:
        ``a = 0``.
    sample_weight : ndarray of shape (N,), optional

    Returns
    -------
    weight : float
        The chosen ``a`` in ``[0, 1]``.
    nll : dict
        Out-of-fold mean log-loss of the ``"map"`` alone, the ``"reference"``
        alone and the chosen ``"mixture"`` (empty with fewer than 2 folds); the
        mixture's is at most the reference's, ``a = 1`` being a candidate.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._mixture import cross_val_weight
    >>> ref = np.full((4, 2), 0.5)
    >>> def fit_predict(train, test):   # a "map" that is sure of class 0
    ...     return np.tile([1.0 - 1e-6, 1e-6], (int(test.sum()), 1))
    >>> a, nll = cross_val_weight(fit_predict, ref, np.array([0, 0, 0, 1]),
    ...                           np.array([0, 1, 0, 1]))
    >>> round(a, 3), bool(nll["mixture"] <= nll["reference"] < nll["map"])
    (0.5, True)
    """
    labels = np.asarray(labels)
    held = np.unique(folds[folds >= 0])
    if held.size < 2:
        return 0.0, {}
    oof = np.array(reference, dtype=np.float64)
    for f in held:
        test = folds == f
        try:
            oof[test] = fit_predict(~test, test)
        except ValueError as exc:
            raise ValueError(f"ts_weight='auto' refits the calibrator on {held.size - 1}/"
                             f"{held.size} of the samples ({held.size}-fold cross-validation) "
                             f"and that failed: {exc}. Pass ts_weight=0 (the calibrator "
                             "alone) or a fixed weight in [0, 1]") from exc
    a = nll_mixture_weight(oof, reference, labels, sample_weight)
    w = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, float)
    rows = np.arange(len(labels))
    mix = (1 - a) * oof[rows, labels] + a * reference[rows, labels]

    def mean_nll(py):
        return float(w @ -np.log(np.maximum(py, 1e-300)) / w.sum())

    return a, {"map": mean_nll(oof[rows, labels]), "reference": mean_nll(reference[rows, labels]),
               "mixture": mean_nll(mix)}


def fit_mixture(est, z: np.ndarray, labels: np.ndarray, sample_weight,
                fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
                reference: Callable[[], np.ndarray], temperature: str = "temperature_") -> None:
    """Set the mixture of ``est``'s output with temperature scaling from ``est.ts_weight``.

    Sets ``temperature`` (the attribute, ``temperature_`` by default; 1.0 when
    ``ts_weight=0``), ``ts_weight_`` (a given number, or for ``"auto"`` the
    :func:`cross_val_weight` of ``fit_predict`` on :func:`score_folds` of the
    top softmax probability) and ``cv_nll_`` (empty unless ``"auto"``).
    ``reference()`` gives the mixed-in probabilities of ``z``; it is called
    after the temperature is set.
    """
    a = est.ts_weight
    setattr(est, temperature, fit_temperature(z, labels, sample_weight)
            if isinstance(a, str) or a > 0 else 1.0)
    est.cv_nll_ = {}
    if isinstance(a, str):  # "auto": the weight of TS, by out-of-fold NLL
        folds = score_folds(softmax(z).max(axis=1), labels, sample_weight)
        a, est.cv_nll_ = cross_val_weight(fit_predict, reference(), labels, folds, sample_weight)
    est.ts_weight_ = float(a)
