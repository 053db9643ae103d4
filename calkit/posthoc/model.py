"""A classifier plus a post-hoc calibrator, as one scikit-learn classifier.

:class:`CalibratedModel` is a drop-in for scikit-learn's ``CalibratedClassifierCV``:

* ``cv="prefit"`` (default), or a ``sklearn.frozen.FrozenEstimator``: the wrapped
  model is already trained and never refitted; ``fit(X_cal, y_cal)`` fits only the
  calibrator on a held-out calibration set (``CalibratedClassifierCV(FrozenEstimator(clf))``).
* ``cv=k`` (or a splitter): cross-fitting, as ``CalibratedClassifierCV(clf, cv=k)``.
  With ``ensemble=True`` (``"auto"``) each fold fits a clone of the model on the
  training part and a calibrator on the held-out part, and ``predict_proba`` averages
  the ``k`` pairs; with ``ensemble=False`` the out-of-fold responses of
  ``cross_val_predict`` calibrate one model refitted on all the data.

``method="sigmoid"``, ``"isotonic"`` and ``"temperature"`` follow
``CalibratedClassifierCV``'s definitions exactly (and give its numbers): the
response is ``decision_function`` (else ``predict_proba``, the positive column for
a binary task); sigmoid and isotonic calibrate each class's response one-vs-rest
(:class:`~calkit.posthoc.PlattScaling`, :class:`~calkit.posthoc.IsotonicCalibration`
on 1-D scores) and renormalise, temperature scales the logits ``(-d, d)`` of a
binary decision value or ``log(p + 1e-12)`` of probabilities.  Any other method
(a calkit name such as ``"ts"``, ``"ets"``, ``"spline"``, or a calibrator instance)
calibrates the model's logits (see ``response``).

``clone`` keeps the same wrapped model (for ``cv="prefit"`` it is fitted and frozen;
otherwise only its clones are ever fitted), so the wrapper can be tuned inside
``GridSearchCV`` with a calibration scorer from :func:`make_calibration_scorer`.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from calkit._array import is_torch, to_numpy
from calkit._validation import check_option, check_sample_weight
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
    "venn_abers": "VennAbersCalibration",
}
#: CalibratedClassifierCV's methods, with its definitions (module docstring)
SKLEARN_METHODS = ("sigmoid", "isotonic", "temperature")
RESPONSES = ("auto", "decision_function", "predict_proba", "call")
_SKLEARN_LOG_EPS = 1e-12  # CalibratedClassifierCV's log(p + 1e-12) for temperature scaling


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


class _OneVsRestScores:
    """CalibratedClassifierCV's sigmoid / isotonic: one 1-D calibrator per response column.

    A binary task has one column (the positive class's response); K > 2 classes have
    K columns, calibrated against ``y == k`` and renormalised (a row mapped to all
    zeros becomes uniform, as scikit-learn).
    """

    def __init__(self, base: BaseCalibrator):
        self.base = base

    def fit(self, scores, labels, n_classes, sample_weight=None):
        columns = [scores] if scores.ndim == 1 else [scores[:, k] for k in range(n_classes)]
        targets = [labels == 1] if scores.ndim == 1 else [labels == k for k in range(n_classes)]
        self.maps_ = [clone(self.base).fit(s, t.astype(np.int64), sample_weight=sample_weight)
                      for s, t in zip(columns, targets, strict=True)]
        return self

    def predict_proba(self, scores):
        if scores.ndim == 1:
            p1 = self.maps_[0].predict_proba(scores)
            return np.column_stack([1.0 - p1, p1])
        q = np.column_stack([m.predict_proba(scores[:, k]) for k, m in enumerate(self.maps_)])
        total = q.sum(axis=1, keepdims=True)
        return np.divide(q, total, out=np.full_like(q, 1.0 / q.shape[1]), where=total != 0)


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A classifier (prefit, or cross-fitted) with a post-hoc calibrator.

    Parameters
    ----------
    estimator : classifier or callable
        Its scores are taken from ``decision_function``, else from
        ``predict_proba``, else by calling ``estimator(X)`` (``(N, K)`` logits;
        prefit only).  For calkit methods a 1-D binary decision value ``d``
        becomes the logits ``(0, d)`` and probabilities become ``log p``
        (clipped at the smallest float).
    method : str or calibrator, default="ts"
        ``"sigmoid"``, ``"isotonic"`` or ``"temperature"``: scikit-learn's
        ``CalibratedClassifierCV`` methods, with its definitions (module
        docstring); ``"ts"``, ``"ets"``, ``"vs"``, ``"ms"``, ``"spline"``,
        ``"histogram"``, ``"platt"``, ``"beta"`` (binary only), or a calkit
        calibrator instance (cloned in ``fit``): calkit's calibrators on the
        logits.  (``"isotonic"`` here is scikit-learn's one-vs-rest isotonic
        regression of the responses; for calkit's top-label isotonic calibration
        pass ``IsotonicCalibration()``.)
    response : {"auto", "decision_function", "predict_proba", "call"}, default="auto"
        Which of the above to use; ``"auto"`` tries them in that order.
    cv : "prefit", int or cross-validation splitter, default="prefit"
        ``"prefit"``: ``estimator`` is fitted and only the calibrator is fitted
        (also what a ``FrozenEstimator`` gives with any ``cv``).  Otherwise the
        folds of the cross-fitting (``int``: stratified k-fold, as scikit-learn's
        ``check_cv``).
    ensemble : bool or "auto", default="auto"
        Cross-fitting only: one (model, calibrator) pair per fold, averaged
        (``True``; ``"auto"`` unless the estimator is frozen), or one model refitted
        on all data with a calibrator fitted on the out-of-fold responses (``False``).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (the estimator's ``classes_`` when prefit, ``0 .. K-1``
        for a callable, the sorted labels of ``y`` when cross-fitted).
    calibrated_classifiers_ : list of (estimator, calibrator) pairs
        One pair (prefit, ``ensemble=False``) or one per fold.
    calibrator_ : calibrator
        The calibrator of the first pair.

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
    >>> cross = CalibratedModel(LogisticRegression(), method="sigmoid", cv=3).fit(X, y)
    >>> len(cross.calibrated_classifiers_)  # one (model, calibrator) pair per fold
    3
    """

    def __init__(self, estimator, method: str | BaseCalibrator = "ts", response: str = "auto",
                 cv="prefit", ensemble="auto"):
        self.estimator = estimator
        self.method = method
        self.response = response
        self.cv = cv
        self.ensemble = ensemble

    def __sklearn_clone__(self):
        # the wrapped model is fitted and frozen (prefit) or only ever cloned (cv): share it
        params = self.get_params(deep=False)
        return type(self)(**{k: v if k == "estimator" else clone(v, safe=False)
                             for k, v in params.items()})

    # ------------------------------------------------------------------ responses
    def _response(self, estimator=None) -> str:
        estimator = self.estimator if estimator is None else estimator
        check_option(self.response, "response", RESPONSES)
        if self.response != "auto":
            return self.response
        for name in ("decision_function", "predict_proba"):
            if hasattr(estimator, name):
                return name
        if callable(estimator):
            return "call"
        raise TypeError("estimator must have decision_function or predict_proba, or be a "
                        f"callable returning logits; got {type(estimator).__name__}")

    def _scores(self, estimator, X):
        """What the calibrator reads from ``estimator`` on ``X`` (module docstring)."""
        response = self._response(estimator)
        if response == "call":
            z = estimator(X)
            return z if is_torch(z) else np.asarray(z)
        out = np.asarray(to_numpy(getattr(estimator, response)(X)), dtype=np.float64)
        return self._convert(out, response)

    def _convert(self, out, response):
        if self._sklearn_method():
            if response == "predict_proba" and out.ndim == 2 and out.shape[1] == 2:
                out = out[:, 1]  # binary: the positive class, as scikit-learn
            if self.method != "temperature":
                return out
            if response == "predict_proba":
                p = np.column_stack([1 - out, out]) if out.ndim == 1 else out
                return np.log(p + _SKLEARN_LOG_EPS)
            return np.column_stack([-out, out]) if out.ndim == 1 else out
        if response == "predict_proba":
            return np.log(np.clip(out, np.finfo(np.float64).tiny, None))
        if out.ndim == 1:
            return np.column_stack([np.zeros_like(out), out])
        return out

    def _sklearn_method(self) -> bool:
        return isinstance(self.method, str) and self.method in SKLEARN_METHODS

    def _new_calibrator(self):
        if self.method == "sigmoid":
            from calkit.posthoc.binary import PlattScaling

            return _OneVsRestScores(PlattScaling())
        if self.method == "isotonic":
            from calkit.posthoc.isotonic import IsotonicCalibration

            return _OneVsRestScores(IsotonicCalibration(floor=0.0))  # scikit-learn: no floor
        if self.method == "temperature":
            from calkit.posthoc.temperature import TemperatureScaling

            return TemperatureScaling(t_bounds=(np.exp(-10.0), np.exp(10.0)))  # as sklearn's
        return make_calibrator(self.method)

    def _fit_calibrator(self, scores, labels, sample_weight):
        cal = self._new_calibrator()
        if isinstance(cal, _OneVsRestScores):
            return cal.fit(scores, labels, len(self.classes_), sample_weight)
        return cal.fit(scores, labels, sample_weight=sample_weight)

    # ------------------------------------------------------------------ fit
    def _prefit(self) -> bool:
        from sklearn.frozen import FrozenEstimator

        if isinstance(self.estimator, FrozenEstimator):
            return True
        if isinstance(self.cv, str):
            check_option(self.cv, "cv", ("prefit",))
            return True
        return False

    def fit(self, X, y, sample_weight=None, **fit_params) -> CalibratedModel:
        """Fit the calibrator (prefit), or cross-fit models and calibrators (``cv``).

        Parameters
        ----------
        X, y : arrays
            Calibration data (prefit) or all the data (cross-fitting).
        sample_weight : array of shape (N,), optional
            Weights of the calibration fits (and of the model fits, when the
            estimator's ``fit`` takes ``sample_weight``).
        **fit_params
            Passed to the estimator's ``fit`` (cross-fitting only).
        """
        y_arr = np.asarray(to_numpy(y.to_numpy() if hasattr(y, "to_numpy") else y))
        w = check_sample_weight(sample_weight, len(y_arr))
        if self._prefit():
            if fit_params:
                raise ValueError("fit_params are passed to the estimator's fit, which a "
                                 "prefit (frozen) estimator never calls")
            self._fit_prefit(X, y_arr, w)
        else:
            self._fit_cross(X, y_arr, w, fit_params)
        self.calibrator_ = self.calibrated_classifiers_[0][1]
        return self

    def _fit_prefit(self, X, y, w) -> None:
        from sklearn.exceptions import NotFittedError

        try:
            scores = self._scores(self.estimator, X)
        except NotFittedError as exc:
            raise NotFittedError(
                f"{exc}. CalibratedModel(cv='prefit') calibrates a fitted model: fit it "
                "first, or pass cv=5 to cross-fit it as CalibratedClassifierCV does") from exc
        classes = getattr(self.estimator, "classes_", None)
        if classes is None:
            classes = np.arange(2 if scores.ndim == 1 else int(scores.shape[1]))
        self.classes_ = np.asarray(classes)
        labels = _label_index(self.classes_, y)
        self.calibrated_classifiers_ = [(self.estimator,
                                         self._fit_calibrator(scores, labels, w))]

    def _fit_cross(self, X, y, w, fit_params) -> None:
        from inspect import signature

        from sklearn.model_selection import check_cv, cross_val_predict
        from sklearn.utils import _safe_indexing

        self.classes_ = np.unique(y)
        labels = _label_index(self.classes_, y)
        if self._response(self.estimator) == "call":
            raise ValueError("a callable estimator cannot be refitted: use cv='prefit'")
        if isinstance(self.cv, Integral) and np.bincount(labels).min() < self.cv:
            raise ValueError(f"cv={self.cv} folds need at least {self.cv} samples of every "
                             f"class; the smallest class has {np.bincount(labels).min()}")
        cv = check_cv(self.cv, y, classifier=True)
        takes_weight = "sample_weight" in signature(self.estimator.fit).parameters
        fit_kw = dict(fit_params)
        ensemble = True if self.ensemble == "auto" else self.ensemble
        if not isinstance(ensemble, bool):
            raise ValueError(f"ensemble must be True, False or 'auto', got {self.ensemble!r}")
        if ensemble:
            pairs = []
            for train, test in cv.split(X, y):
                kw = dict(fit_kw)
                if w is not None and takes_weight:
                    kw["sample_weight"] = w[train]
                est = clone(self.estimator).fit(_safe_indexing(X, train), y[train], **kw)
                self._check_fold_classes(est)
                scores = self._scores(est, _safe_indexing(X, test))
                pairs.append((est, self._fit_calibrator(
                    scores, labels[test], None if w is None else w[test])))
            self.calibrated_classifiers_ = pairs
            return
        if w is not None and takes_weight:
            fit_kw["sample_weight"] = w
        est = clone(self.estimator)
        response = self._response(est)
        raw = cross_val_predict(est, X, y, cv=cv, method=response, params=fit_kw)
        scores = self._convert(np.asarray(raw, dtype=np.float64), response)
        est.fit(X, y, **fit_kw)
        self._check_fold_classes(est)
        self.calibrated_classifiers_ = [(est, self._fit_calibrator(scores, labels, w))]

    def _check_fold_classes(self, est) -> None:
        seen = np.asarray(getattr(est, "classes_", self.classes_))
        if len(seen) != len(self.classes_) or (seen != self.classes_).any():
            raise ValueError(f"a training fold holds the classes {seen.tolist()} only, not "
                             f"all of {self.classes_.tolist()}: use fewer folds or a "
                             "stratified splitter")

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrated_classifiers_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This CalibratedModel is not fitted yet; call 'fit' with a "
                                 "calibration set first")

    def predict_proba(self, X):
        """Calibrated class probabilities ``(N, K)`` (the mean over the fold pairs)."""
        self._check_fitted()
        total = None
        for est, cal in self.calibrated_classifiers_:
            p = cal.predict_proba(self._scores(est, X))
            if isinstance(cal, BaseCalibrator) and getattr(p, "ndim", 2) == 1:
                p = np.column_stack([1 - p, p])  # a 1-D binary calibrator (Platt, beta)
            total = p if total is None else total + p
        out = total / len(self.calibrated_classifiers_)
        if self._sklearn_method() and not is_torch(out):
            out[(out > 1.0) & (out <= 1.0 + 1e-5)] = 1.0  # as scikit-learn
        return out

    def predict(self, X):
        """Predicted class labels (from ``classes_``)."""
        self._check_fitted()
        if len(self.calibrated_classifiers_) == 1 and not self._sklearn_method():
            est, cal = self.calibrated_classifiers_[0]
            index = cal.predict(self._scores(est, X))
        else:
            index = np.argmax(np.asarray(to_numpy(self.predict_proba(X))), axis=1)
        return self.classes_[np.asarray(to_numpy(index))]


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
