"""Feature clipping (Tao et al. 2024, arXiv 2410.19796).

Over-confident predictions tend to come with large penultimate-layer
activations.  Feature clipping caps every feature at ``[-c, c]`` and applies
the network's final linear layer to the clipped features:

    p = softmax(clip(h, -c, c) W^T + b).

The threshold ``c`` is chosen on validation data as the one with the lowest
NLL (or ECE) among candidate thresholds, subject to the reference's accuracy
guard: the clipped model must keep more than ``min_accuracy_ratio`` (0.99)
of the unclipped validation accuracy.  Without clipping (``c = inf``) is always
a candidate, so the calibrator never does worse on validation than the model.

The final layer ``(W, b)`` can be given, or recovered from (features, logits)
pairs by least squares: ``[h, 1] [W | b]^T = z``.  The recovered head must
reproduce the logits (largest residual at most ``head_rtol`` times the
largest absolute logit, or ``fit`` raises a ``ValueError``), so a head that is
not affine in the given features (e.g. features taken before a further
non-linear layer) is caught rather than silently mis-calibrated.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_labels, check_logits, check_option
from calkit.logits import log_softmax, softmax
from calkit.metrics.binned import ece
from calkit.posthoc._base import BaseCalibrator
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc._sklearn_api import predict_input

CRITERIA = ("nll", "ece")


def default_thresholds(features: np.ndarray) -> np.ndarray:
    """The reference's grid ``0.01, 0.02, ..., 20.00`` below ``max |h|``, then ``inf``.

    Thresholds at or above the largest absolute feature clip nothing, so they
    are all represented by ``inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.feature_clipping import default_thresholds
    >>> default_thresholds(np.array([[0.0, 0.035]])).tolist()
    [0.01, 0.02, 0.03, inf]
    """
    grid = np.round(np.arange(1, 2001) * 0.01, 10)
    top = float(np.abs(features).max())
    return np.concatenate([grid[grid < top], [np.inf]])


def affine_head(features: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                     float]:
    """Least-squares ``(W, b)`` with ``features @ W.T + b ~ logits``, and the largest residual.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.feature_clipping import affine_head
    >>> h = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]])
    >>> w, b, residual = affine_head(h, h @ np.array([[1.0, 2.0], [0.0, -1.0]]).T + [0.5, 0.0])
    >>> w.round(6).tolist(), b.round(6).tolist(), residual < 1e-9
    ([[1.0, 2.0], [0.0, -1.0]], [0.5, 0.0], True)
    """
    design = np.hstack([features, np.ones((features.shape[0], 1))])
    solution, *_ = np.linalg.lstsq(design, logits, rcond=None)
    residual = float(np.abs(design @ solution - logits).max())
    return solution[:-1].T.copy(), solution[-1].copy(), residual


def _check_features(X, name: str = "X") -> np.ndarray:
    h = check_logits(X, name)  # the same checks: 2-D, finite, floating point
    return np.asarray(to_numpy(h), dtype=np.float64)


class FeatureClipping(BaseCalibrator):
    """Clip penultimate-layer features at a validated threshold, then apply the final layer.

    Parameters
    ----------
    threshold : float, optional
        A fixed clipping threshold ``c > 0``; default: chosen on the
        validation data passed to :meth:`fit`.
    criterion : {"nll", "ece"}, default="nll"
        What the threshold minimises on validation data (ECE: 15 equal-width
        bins, top label).  The authors' code offers both and defaults to ECE;
        NLL is the default here because it is a proper score and smooth in
        the threshold.
    thresholds : sequence of float, optional
        Candidate thresholds; default :func:`default_thresholds` (the
        reference's grid 0.01 ... 20 in steps of 0.01, plus ``inf``).
    min_accuracy_ratio : float, default=0.99
        A candidate must keep validation accuracy above this share of the
        unclipped accuracy (``inf`` is exempt).
    head_rtol : float, default=1e-3
        Largest allowed residual of the recovered or given head, relative to
        ``max |logits|`` (only checked when ``logits`` are passed to ``fit``).

    Attributes
    ----------
    threshold_ : float
        The clipping threshold (``inf``: no clipping).
    coef_ : ndarray of shape (K, D)
    intercept_ : ndarray of shape (K,)
    head_residual_ : float
        Largest absolute difference between the head's and the given logits
        (NaN when no logits were given).
    scores_ : ndarray
        Validation criterion per candidate (NaN where the accuracy guard failed).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.feature_clipping import FeatureClipping
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 900)
    >>> h = np.abs(rng.normal(0, 1, (900, 4))) + 2.0 * np.eye(3, 4)[y]
    >>> h[:300] *= 6.0                           # a third of the samples: huge activations
    >>> w = 4.0 * np.eye(3, 4)
    >>> fc = FeatureClipping().fit(h, y, coef=w, intercept=np.zeros(3))
    >>> bool(fc.threshold_ < np.abs(h).max()), fc.predict_proba(h).shape
    (True, (900, 3))
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "threshold_": ValueSpec("float", gt=0, finite=False),  # inf: no clipping
        "coef_": ValueSpec("array", shape=("K", "D")),
        "intercept_": ValueSpec("array", shape=("K",)),
        "head_residual_": ValueSpec("float", ge=0, nan_ok=True, required=False),
        "scores_": ValueSpec("array", shape=("*",), nan_ok=True, finite=False, required=False)}
    _native_1d = True  # X holds features: never read as binary scores
    _min_columns = 1

    def _n_label_columns(self, X, fit_params: dict) -> int | None:
        """The classes are the rows of the head (``coef``) or the columns of ``logits``."""
        for key, axis in (("coef", 0), ("logits", 1)):
            value = fit_params.get(key)
            shape = getattr(value, "shape", None) if value is not None else None
            if shape is None and value is not None:
                shape = np.shape(value)
            if shape is not None and len(shape) == 2:
                return int(shape[axis])
        return None

    def __init__(self, threshold: float | None = None, criterion: str = "nll",
                 thresholds=None, min_accuracy_ratio: float = 0.99, head_rtol: float = 1e-3):
        self.threshold = threshold
        self.criterion = criterion
        self.thresholds = thresholds
        self.min_accuracy_ratio = min_accuracy_ratio
        self.head_rtol = head_rtol

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None, *, logits=None, coef=None,
            intercept=None) -> FeatureClipping:
        """Fit on validation features ``X`` (N, D) and labels ``y`` (N,).

        Parameters
        ----------
        X : array of shape (N, D)
            Penultimate-layer features.
        y : array of shape (N,)
            Integer labels.
        logits : array of shape (N, K), optional
            The model's logits for ``X``; used to recover the final layer by
            least squares when ``coef`` is not given, and to check the head.
        coef : array of shape (K, D), optional
            Final-layer weights (``torch.nn.Linear.weight``).
        intercept : array of shape (K,), optional
            Final-layer bias (default zeros when ``coef`` is given).
        sample_weight : array of shape (N,), optional
            Weights of the samples in the threshold's criterion and accuracy guard.
        """
        check_option(self.criterion, "criterion", CRITERIA)
        r = self.min_accuracy_ratio
        if isinstance(r, bool) or not isinstance(r, Real) or not 0 <= r <= 1:
            raise ValueError(f"min_accuracy_ratio must lie in [0, 1], got {r!r}")
        h = _check_features(X)
        w, b = self._head(h, logits, coef, intercept)
        labels = np.asarray(to_numpy(check_labels(y, h.shape[0], w.shape[0])))
        if self.threshold is not None:
            c = self.threshold
            if isinstance(c, bool) or not isinstance(c, Real) or not c > 0:
                raise ValueError(f"threshold must be a positive number, got {c!r}")
            self.threshold_ = float(c)
            self.scores_ = np.array([])
        else:
            self.threshold_, self.scores_ = self._select(h, labels, w, b, sample_weight)
        self.coef_, self.intercept_ = w, b
        return self

    def _head(self, h, logits, coef, intercept):
        if coef is None and logits is None:
            raise ValueError("FeatureClipping needs the final layer: pass coef (and intercept) "
                             "or the logits of the same samples")
        z = None
        if logits is not None:
            z = np.asarray(to_numpy(check_logits(logits, "logits")), dtype=np.float64)
            if z.shape[0] != h.shape[0]:
                raise ValueError(f"logits has {z.shape[0]} rows but X has {h.shape[0]}")
        if coef is None:
            w, b, residual = affine_head(h, z)
        else:
            w = np.asarray(to_numpy(coef), dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != h.shape[1] or w.shape[0] < 2:
                raise ValueError(f"coef must have shape (n_classes >= 2, {h.shape[1]}), got "
                                 f"{w.shape}")
            b = np.zeros(w.shape[0]) if intercept is None else np.asarray(
                to_numpy(intercept), dtype=np.float64)
            if b.shape != (w.shape[0],):
                raise ValueError(f"intercept must have shape ({w.shape[0]},), got {b.shape}")
            residual = float("nan") if z is None else float(np.abs(h @ w.T + b - z).max())
        if z is not None:
            if z.shape[1] != w.shape[0]:
                raise ValueError(f"logits has {z.shape[1]} classes but coef has {w.shape[0]}")
            limit = self.head_rtol * max(1.0, float(np.abs(z).max()))
            if not residual <= limit:
                raise ValueError(
                    f"the affine head does not reproduce the logits: largest residual "
                    f"{residual:.3g} > head_rtol * max|logits| = {limit:.3g}; are these the "
                    "features that enter the final linear layer?")
        self.head_residual_ = residual
        return w, b

    def _select(self, h, labels, w, b, sample_weight=None) -> tuple[float, np.ndarray]:
        if self.thresholds is None:
            candidates = default_thresholds(h)
        else:
            candidates = np.asarray(self.thresholds, dtype=np.float64).ravel()
            if candidates.size == 0 or not (candidates > 0).all():
                raise ValueError("thresholds must be a non-empty sequence of positive numbers")
        sw = (np.full(len(labels), 1.0 / len(labels)) if sample_weight is None
              else sample_weight / np.sum(sample_weight))
        base_acc = float((np.argmax(h @ w.T + b, axis=1) == labels) @ sw)
        scores = np.full(candidates.shape, np.nan)
        for i, c in enumerate(candidates):
            z = np.clip(h, -c, c) @ w.T + b
            if np.isfinite(c) and not (np.argmax(z, 1) == labels) @ sw \
                    > self.min_accuracy_ratio * base_acc:
                continue
            if self.criterion == "nll":  # from the logits: exact, no clipping of p
                scores[i] = -log_softmax(z)[np.arange(len(labels)), labels] @ sw
            else:
                scores[i] = ece(labels, softmax(z), sample_weight=sample_weight)
        if np.isnan(scores).all():
            return float("inf"), scores
        best = int(np.nanargmin(scores))  # ties: the smallest threshold
        return float(candidates[best]), scores

    # ------------------------------------------------------------------ prediction
    def decision_function(self, X) -> np.ndarray:
        """Logits of the clipped features, ``clip(X, -c, c) W^T + b``."""
        self._check_fitted()
        X, _ = predict_input(self, X)  # containers, feature names, feature count
        return self._decision(X)

    def _decision(self, X) -> np.ndarray:
        h = _check_features(X)
        if h.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X has {h.shape[1]} features but the calibrator was fitted on "
                             f"{self.coef_.shape[1]}")
        c = float(self.threshold_)
        return np.clip(h, -c, c) @ np.asarray(self.coef_).T + np.asarray(self.intercept_)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self._decision(X))
