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
    ours = CalibratedModel(nb, method=IsotonicCalibration(multiclass="one_vs_rest"))
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
