"""CalibratedModel and the calibration scorer, against scikit-learn's CalibratedClassifierCV."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB

from calkit import ece
from calkit.posthoc import IsotonicCalibration, TemperatureScaling
from calkit.posthoc.model import CalibratedModel, make_calibration_scorer


def _blobs(n=1500, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 5)) + np.eye(k, 5)[y] * 1.5
    return X, y


def test_isotonic_one_vs_rest_equals_calibrated_classifier_cv():
    X, y = _blobs()
    nb = GaussianNB().fit(X[:500], y[:500])
    ours = CalibratedModel(nb, method=IsotonicCalibration(multiclass="one_vs_rest",
                                                          ts_weight=0))  # the map alone
    ours.fit(X[500:1000], y[500:1000])
    ref = CalibratedClassifierCV(FrozenEstimator(nb), method="isotonic")
    ref.fit(X[500:1000], y[500:1000])
    np.testing.assert_allclose(ours.predict_proba(X[1000:]), ref.predict_proba(X[1000:]),
                               atol=1e-9)


def test_platt_equals_calibrated_classifier_cv_sigmoid():
    X, y = _blobs(k=2)
    lr = LogisticRegression().fit(X[:300], y[:300])
    ours = CalibratedModel(lr, method="platt").fit(X[300:900], y[300:900])
    ref = CalibratedClassifierCV(FrozenEstimator(lr), method="sigmoid").fit(X[300:900],
                                                                            y[300:900])
    np.testing.assert_allclose(ours.predict_proba(X[900:]), ref.predict_proba(X[900:]),
                               atol=1e-6)


def test_string_labels_callable_models_and_not_fitted():
    X, y = _blobs()
    names = np.array(["cat", "dog", "eel"])
    lr = LogisticRegression().fit(X[:500], names[y[:500]])
    model = CalibratedModel(lr, method="ts")
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.fit(X[500:], names[y[500:]])
    np.testing.assert_array_equal(model.predict(X), lr.predict(X))  # TS keeps the argmax
    with pytest.raises(ValueError, match="not among the estimator's classes"):
        clone(model).fit(X[:10], np.array(["cow"] * 10))
    # a plain function returning logits
    w = np.random.default_rng(0).normal(size=(5, 3))
    fn = CalibratedModel(lambda A: A @ w, method="ets").fit(X, y)
    np.testing.assert_array_equal(fn.classes_, [0, 1, 2])
    np.testing.assert_array_equal(fn.predict(X), (X @ w).argmax(1))


def test_clone_keeps_the_fitted_model():
    X, y = _blobs()
    lr = LogisticRegression().fit(X[:500], y[:500])
    model = CalibratedModel(lr, method=TemperatureScaling())
    copy = clone(model)
    assert copy.estimator is lr and copy.method is not model.method


def test_grid_search_with_a_calibration_scorer():
    X, y = _blobs(n=2000)
    lr = LogisticRegression(C=1e4).fit(X[:300], y[:300])
    scorer = make_calibration_scorer("ece", n_bins=10)
    search = GridSearchCV(CalibratedModel(lr), {"method": ["ts", "isotonic", "histogram"]},
                          scoring=scorer, cv=3).fit(X[300:], y[300:])
    assert search.best_params_["method"] in ("ts", "isotonic", "histogram")
    # the scorer is -ECE computed by calkit on the fold's predictions
    model = search.best_estimator_
    assert scorer(model, X[:300], y[:300]) == pytest.approx(
        -ece(y[:300], model.predict_proba(X[:300]), n_bins=10))


def test_scorer_validates_the_metric():
    with pytest.raises(ValueError, match="metric"):
        make_calibration_scorer("accuracy_score")
    assert "nll" in repr(make_calibration_scorer("nll"))


# ---------------------------------------------------------- drop-in for CalibratedClassifierCV
def _sklearn_pair(make_est, method, mode, binary):
    """(ours, scikit-learn's) fitted the same way; mode: 'frozen', 'ensemble', 'single'."""
    X, y = _blobs(n=900, k=2 if binary else 3, seed=3)
    if mode == "frozen":
        est = make_est().fit(X[:300], y[:300])
        ours = CalibratedModel(FrozenEstimator(est), method=method, cv=3)
        ref = CalibratedClassifierCV(FrozenEstimator(est), method=method, cv=3)
        fit_x, fit_y = X[300:700], y[300:700]
    else:
        ens = mode == "ensemble"
        ours = CalibratedModel(make_est(), method=method, cv=3, ensemble=ens)
        ref = CalibratedClassifierCV(make_est(), method=method, cv=3, ensemble=ens)
        fit_x, fit_y = X[:700], y[:700]
    return ours.fit(fit_x, fit_y), ref.fit(fit_x, fit_y), X[700:]


# tolerances: isotonic is scikit-learn's own solver (identical); temperature and sigmoid
# are 1-D optimisations that scikit-learn stops at xatol=64 eps (log beta) and gtol=1e-6
# (Platt): the largest difference over this grid is 4.8e-9 (temperature), 3.8e-9 (sigmoid)
_TOL = {"isotonic": 1e-15, "temperature": 1e-7, "sigmoid": 1e-7}


# default run: each method on three (response, task, fitting) cases that together cover
# both responses, both tasks and the three fittings; the full grid is slow
_DEFAULT_CASES = {(LogisticRegression, False, "ensemble"), (GaussianNB, True, "frozen"),
                  (LogisticRegression, True, "single")}
_CASES = [pytest.param(method, mode, binary, make_est,
                       id=f"{method}-{mode}-{'binary' if binary else '3-class'}-"
                          f"{make_est.__name__}",
                       marks=() if (make_est, binary, mode) in _DEFAULT_CASES else
                       pytest.mark.slow)
          for method in ("sigmoid", "isotonic", "temperature")
          for mode in ("frozen", "ensemble", "single") for binary in (True, False)
          for make_est in (LogisticRegression, GaussianNB)]


@pytest.mark.parametrize("method,mode,binary,make_est", _CASES)
def test_equals_calibrated_classifier_cv(method, mode, binary, make_est):
    ours, ref, X_test = _sklearn_pair(make_est, method, mode, binary)
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test),
                               rtol=0, atol=_TOL[method])
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert len(ours.calibrated_classifiers_) == len(ref.calibrated_classifiers_)


def test_cross_fitting_uses_clones_and_string_labels():
    X, y = _blobs(n=600)
    names = np.array(["a", "b", "c"])
    template = LogisticRegression()
    model = CalibratedModel(template, method="ts", cv=4).fit(X, names[y])
    assert not hasattr(template, "coef_")  # the template itself is never fitted
    ests = [est for est, _ in model.calibrated_classifiers_]
    assert len({id(e) for e in ests}) == 4
    assert set(model.predict(X)) <= set(names)
    # ensemble: the mean of the fold pairs' calibrated probabilities
    by_hand = np.mean([cal.predict_proba(est.decision_function(X))
                       for est, cal in model.calibrated_classifiers_], axis=0)
    np.testing.assert_allclose(model.predict_proba(X), by_hand, atol=1e-12)
    single = CalibratedModel(LogisticRegression(), method="ts", cv=4, ensemble=False)
    assert len(single.fit(X, y).calibrated_classifiers_) == 1


def test_sample_weight_reaches_model_and_calibrator():
    X, y = _blobs(n=600, k=2)
    w = np.random.default_rng(0).integers(1, 3, 600)
    ours = CalibratedModel(LogisticRegression(), method="isotonic", cv=3).fit(
        X, y, sample_weight=w)
    ref = CalibratedClassifierCV(LogisticRegression(), method="isotonic", cv=3).fit(
        X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)


def test_cross_fitting_errors():
    X, y = _blobs(n=60)
    with pytest.raises(ValueError, match="cv=30 folds need at least 30 samples"):
        CalibratedModel(LogisticRegression(), cv=30).fit(X, y)
    with pytest.raises(ValueError, match="callable"):
        CalibratedModel(lambda a: a[:, :3], cv=3).fit(X, y)
    with pytest.raises(ValueError, match="cv must be one of"):
        CalibratedModel(LogisticRegression(), cv="five").fit(X, y)
    with pytest.raises(NotFittedError, match="cv=5"):
        CalibratedModel(LogisticRegression()).fit(X, y)  # prefit, but never fitted
