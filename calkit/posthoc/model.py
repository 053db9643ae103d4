"""A fitted classifier plus a post-hoc calibrator, as one scikit-learn classifier.

:class:`CalibratedModel` plays the role of scikit-learn's
``CalibratedClassifierCV(FrozenEstimator(clf))``: the wrapped model is already
trained and never refitted; ``fit(X_cal, y_cal)`` fits only the calibrator on a
held-out calibration set.  ``clone`` keeps the same fitted model (like
``FrozenEstimator``), so the wrapper can be tuned inside ``GridSearchCV`` with a
calibration scorer from :func:`make_calibration_scorer`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from calkit._array import is_torch, to_numpy
from calkit._validation import check_option
from calkit.posthoc._base import BaseCalibrator

#: method name -> calibrator class name in calkit.posthoc (the CLI's --method names)
METHODS = {
    "ts": "TemperatureScaling",
    "ets": "EnsembleTemperatureScaling",
    "vs": "VectorScaling",
    "ms": "MatrixScaling",
    "spline": "SplineCalibration",
    "histogram": "HistogramBinning",
    "isotonic": "IsotonicCalibration",
    "platt": "PlattScaling",
    "beta": "BetaCalibration",
}
RESPONSES = ("auto", "decision_function", "predict_proba", "call")


def make_calibrator(method: str | BaseCalibrator) -> BaseCalibrator:
    """A fresh (unfitted) calibrator from a method name (``"ts"``, ...) or an instance.

    Examples
    --------
    >>> from calkit.posthoc.model import make_calibrator
    >>> type(make_calibrator("ets")).__name__
    'EnsembleTemperatureScaling'
    """
    if isinstance(method, BaseCalibrator):
        return clone(method)
    if method not in METHODS:
        raise ValueError(f"method must be a calkit calibrator or one of {sorted(METHODS)}, "
                         f"got {method!r}")
    import calkit.posthoc as posthoc

    return getattr(posthoc, METHODS[method])()


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A prefit classifier (or any callable returning logits) with a post-hoc calibrator.

    Parameters
    ----------
    estimator : fitted classifier or callable
        Its scores are taken from ``decision_function`` (logits; a 1-D binary
        decision value ``d`` becomes the logits ``(0, d)``), else from
        ``predict_proba`` (as ``log p``, clipped at the smallest float), else by
        calling ``estimator(X)``, which must return ``(N, K)`` logits.
    method : str or calibrator, default="ts"
        ``"ts"``, ``"ets"``, ``"vs"``, ``"ms"``, ``"spline"``, ``"histogram"``,
        ``"isotonic"``, ``"platt"``, ``"beta"`` (binary only), or a calkit
        calibrator instance (cloned in ``fit``).
    response : {"auto", "decision_function", "predict_proba", "call"}, default="auto"
        Which of the above to use; ``"auto"`` tries them in that order.

    Attributes
    ----------
    calibrator_ : BaseCalibrator
        The fitted calibrator.
    classes_ : ndarray
        The estimator's ``classes_`` (``0 .. K-1`` for a callable).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from calkit.posthoc.model import CalibratedModel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 4))
    >>> y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    >>> clf = LogisticRegression().fit(X[:300], y[:300])
    >>> model = CalibratedModel(clf, method="ts").fit(X[300:], y[300:])
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool((model.predict(X) == clf.predict(X)).all())  # temperature scaling keeps the argmax
    True
    """

    def __init__(self, estimator, method: str | BaseCalibrator = "ts", response: str = "auto"):
        self.estimator = estimator
        self.method = method
        self.response = response

    def __sklearn_clone__(self):
        # the wrapped model is fitted and frozen: clones share it (like FrozenEstimator)
        params = self.get_params(deep=False)
        return type(self)(**{k: v if k == "estimator" else clone(v, safe=False)
                             for k, v in params.items()})

    def _response(self) -> str:
        check_option(self.response, "response", RESPONSES)
        if self.response != "auto":
            return self.response
        for name in ("decision_function", "predict_proba"):
            if hasattr(self.estimator, name):
                return name
        if callable(self.estimator):
            return "call"
        raise TypeError("estimator must have decision_function or predict_proba, or be a "
                        f"callable returning logits; got {type(self.estimator).__name__}")

    def _logits(self, X):
        response = self._response()
        if response == "call":
            z = self.estimator(X)
            return z if is_torch(z) else np.asarray(z)
        out = np.asarray(to_numpy(getattr(self.estimator, response)(X)), dtype=np.float64)
        if response == "predict_proba":
            return np.log(np.clip(out, np.finfo(np.float64).tiny, None))
        if out.ndim == 1:
            return np.column_stack([np.zeros_like(out), out])
        return out

    def fit(self, X, y) -> CalibratedModel:
        """Fit the calibrator on a held-out calibration set ``(X, y)``; the model is kept."""
        logits = self._logits(X)
        classes = getattr(self.estimator, "classes_", None)
        if classes is None:
            classes = np.arange(int(logits.shape[1]))
        self.classes_ = np.asarray(classes)
        self.calibrator_ = make_calibrator(self.method)
        self.calibrator_.fit(logits, _label_index(self.classes_, y))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrator_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This CalibratedModel is not fitted yet; call 'fit' with a "
                                 "calibration set first")

    def predict_proba(self, X):
        """Calibrated class probabilities ``(N, K)``."""
        self._check_fitted()
        return self.calibrator_.predict_proba(self._logits(X))

    def predict(self, X):
        """Predicted class labels (from ``classes_``)."""
        self._check_fitted()
        return self.classes_[np.asarray(to_numpy(self.calibrator_.predict(self._logits(X))))]


def _label_index(classes: np.ndarray, y) -> np.ndarray:
    """Positions of the labels ``y`` in the sorted ``classes``; ValueError for unknown ones."""
    y = np.asarray(to_numpy(y))
    idx = np.searchsorted(classes, y)
    ok = (idx < len(classes)) & (classes[np.minimum(idx, len(classes) - 1)] == y)
    if not ok.all():
        raise ValueError(f"labels {np.unique(y[~ok])[:5].tolist()} are not among the "
                         f"estimator's classes {classes.tolist()}")
    return idx


_METRICS = ("ece", "calibration_error", "debiased_ece", "sweep_ece", "nll", "brier_score")


class CalibrationScorer:
    """Scorer ``(estimator, X, y) -> -metric(y, estimator.predict_proba(X))``.

    Built by :func:`make_calibration_scorer`; scikit-learn maximises scores, so the
    sign is flipped (calibration errors and losses are lower-is-better).

    Examples
    --------
    >>> from calkit import nll
    >>> from calkit.posthoc.model import CalibrationScorer
    >>> CalibrationScorer(nll, {})
    make_calibration_scorer(nll, {})
    """

    def __init__(self, metric, kwargs: dict):
        self.metric = metric
        self.kwargs = kwargs

    def __call__(self, estimator, X, y) -> float:
        p = estimator.predict_proba(X)
        classes = getattr(estimator, "classes_", None)
        labels = _label_index(np.asarray(classes), y) if classes is not None else y
        return -float(self.metric(labels, p, **self.kwargs))

    def __repr__(self) -> str:
        name = getattr(self.metric, "__name__", repr(self.metric))
        return f"make_calibration_scorer({name}, {self.kwargs})"


def make_calibration_scorer(metric="ece", **kwargs) -> CalibrationScorer:
    """A scikit-learn scorer (higher is better) from a calkit metric (lower is better).

    Parameters
    ----------
    metric : str or callable, default="ece"
        A name in ``calkit.metrics`` (``"ece"``, ``"calibration_error"``,
        ``"debiased_ece"``, ``"sweep_ece"``, ``"nll"``, ``"brier_score"``) or any
        ``metric(y_true, y_prob, **kwargs)`` returning a number.
    **kwargs
        Passed to the metric (e.g. ``n_bins=15``).

    Returns
    -------
    CalibrationScorer
        Call it as ``scorer(estimator, X, y)``; it returns ``-metric``.  Labels are
        mapped to column indices through ``estimator.classes_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from calkit.posthoc.model import make_calibration_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> scorer = make_calibration_scorer("ece", n_bins=10)
    >>> bool(scorer(LogisticRegression().fit(X, y), X, y) <= 0)
    True
    """
    if isinstance(metric, str):
        check_option(metric, "metric", _METRICS)
        import calkit.metrics as metrics

        metric = getattr(metrics, metric)
    elif not callable(metric):
        raise ValueError(f"metric must be a name or a callable, got {metric!r}")
    return CalibrationScorer(metric, kwargs)
