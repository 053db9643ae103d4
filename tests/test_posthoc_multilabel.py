"""Per-label calibrators: each label equals an independent per-column reference.

References: the binary NLL optimum of ``sigmoid(z / T)`` by ``scipy.optimize.minimize_scalar``
(temperature), scikit-learn's ``IsotonicRegression`` (isotonic) and scikit-learn's sigmoid
calibration ``_SigmoidCalibration`` (Platt: both use Platt's smoothed targets), column by
column; plus an end-to-end check on ``make_multilabel_classification`` with a naive-Bayes
model, whose per-label probabilities are badly calibrated.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, logit
from sklearn.calibration import _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression

from calkit.metrics import multilabel_ece, multilabel_nll
from calkit.posthoc import (
    MultilabelCalibration,
    PerLabelIsotonic,
    PerLabelPlatt,
    PerLabelTemperature,
    load_calibrator,
)

rng = np.random.default_rng(1)
N, L = 1500, 4
Z = rng.normal(size=(N, L)) * np.array([1.0, 2.0, 3.0, 4.0])
TRUE_T = np.array([1.0, 2.0, 0.7, 3.0])
Y = (rng.random((N, L)) < expit(Z / TRUE_T)).astype(int)
WEIGHTS = rng.integers(0, 4, N).astype(float)
Z_NEW = rng.normal(size=(300, L)) * 3


def binary_nll(z, y, t, w=None):
    a = z / t
    loss = -(y * log_expit(a) + (1 - y) * log_expit(-a))
    return np.average(loss, weights=w)


@pytest.mark.parametrize("weighted", [False, True])
def test_temperature_of_every_label_is_the_binary_nll_optimum(weighted):
    w = WEIGHTS if weighted else None
    cal = PerLabelTemperature().fit(Z, Y, sample_weight=w)
    for j in range(L):
        ref = minimize_scalar(lambda u, j=j: binary_nll(Z[:, j], Y[:, j], np.exp(u), w),
                              bounds=(np.log(0.01), np.log(100)), method="bounded",
                              options={"xatol": 1e-10})
        assert np.isclose(cal.temperature_[j], np.exp(ref.x), rtol=1e-5)
    np.testing.assert_allclose(cal.predict_proba(Z_NEW), expit(Z_NEW / cal.temperature_))
    if not weighted:  # the generating temperatures, up to sampling noise at N = 1500
        assert np.abs(cal.temperature_ / TRUE_T - 1).max() < 0.15
    np.testing.assert_array_equal(cal.predict(Z_NEW), (Z_NEW > 0).astype(int))


@pytest.mark.parametrize("weighted", [False, True])
def test_isotonic_of_every_label_equals_scikit_learn(weighted):
    w = WEIGHTS if weighted else None
    cal = PerLabelIsotonic().fit(Z, Y, sample_weight=w)
    got = cal.predict_proba(Z_NEW)
    for j in range(L):
        ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
            Z[:, j], Y[:, j], sample_weight=w)
        np.testing.assert_allclose(got[:, j], np.clip(ref.predict(Z_NEW[:, j]), 1e-12,
                                                      1 - 1e-12), rtol=0, atol=1e-15)
    # only the order matters: probabilities give the same map
    p = expit(Z)
    same = PerLabelIsotonic().fit(logit(p), Y, sample_weight=w)
    np.testing.assert_allclose(same.predict_proba(Z_NEW), got, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_platt_of_every_label_equals_scikit_learn_sigmoid_calibration(weighted):
    w = WEIGHTS if weighted else None
    cal = PerLabelPlatt().fit(Z, Y, sample_weight=w)
    got = cal.predict_proba(Z_NEW)
    for j in range(L):
        ref = _SigmoidCalibration().fit(Z[:, j], Y[:, j], sample_weight=w)
        # scikit-learn: P = 1 / (1 + exp(a s + b)), so coef_ = -a and intercept_ = -b
        assert np.isclose(cal.coef_[j], -ref.a_, rtol=1e-4, atol=1e-6)
        assert np.isclose(cal.intercept_[j], -ref.b_, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got[:, j], ref.predict(Z_NEW[:, j]), atol=1e-6)


@pytest.mark.parametrize("method, cls", [("temperature", PerLabelTemperature),
                                         ("platt", PerLabelPlatt),
                                         ("isotonic", PerLabelIsotonic)])
def test_multilabel_calibration_is_the_per_label_class_and_saves_as_it(method, cls, tmp_path):
    cal = MultilabelCalibration(method=method).fit(Z, Y)
    direct = cls().fit(Z, Y)
    assert type(cal.calibrator_) is cls and cal.n_labels_ == L
    np.testing.assert_array_equal(cal.predict_proba(Z_NEW), direct.predict_proba(Z_NEW))
    np.testing.assert_array_equal(cal.predict(Z_NEW), direct.predict(Z_NEW))
    assert cal.score(Z, Y) == pytest.approx(-multilabel_nll(Y, cal.predict_proba(Z)))
    path = tmp_path / "ml.json"
    cal.save(path)
    loaded = load_calibrator(path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.predict_proba(Z_NEW), cal.predict_proba(Z_NEW))
    np.testing.assert_array_equal(loaded.classes_, np.arange(L))


def test_a_temperature_at_its_bound_is_reported_with_its_label():
    from sklearn.exceptions import ConvergenceWarning

    z = Z.copy()
    z[:, 3] = np.where(Y[:, 3] == 1, 1.0, -1.0)  # separable: T -> 0, stopped at the bound
    with pytest.warns(ConvergenceWarning, match=r"label 3: .*bound") as record:
        cal = PerLabelTemperature().fit(z, Y)
    assert len(record) == 1 and "label 0" not in str(record[0].message)
    assert np.isclose(cal.temperature_[3], 0.01)


def test_labels_with_one_class_are_refused_by_name():
    y = Y.copy()
    y[:, 2] = 0
    for est in (PerLabelTemperature(), PerLabelPlatt(), PerLabelIsotonic()):
        with pytest.raises(ValueError, match=r"label\(s\) \[2\]"):
            est.fit(Z, y)
    w = np.ones(N)
    w[Y[:, 1] == 1] = 0  # label 1's positives all weigh nothing
    with pytest.raises(ValueError, match=r"\[1\].*positive sample_weight"):
        PerLabelPlatt().fit(Z, Y, sample_weight=w)


def test_bad_inputs_are_refused():
    cal = PerLabelPlatt()
    with pytest.raises(ValueError, match="multiclass"):
        cal.fit(Z, Y[:, 0] + Y[:, 1])  # integer labels per sample
    with pytest.raises(ValueError, match="2-D"):
        cal.fit(Z[:, 0], Y[:, 0])
    with pytest.raises(ValueError, match="shape"):
        cal.fit(Z, Y[:, :3])
    with pytest.raises(ValueError, match="0/1"):
        cal.fit(Z, 2 * Y)
    with pytest.raises(ValueError, match="NaN"):
        cal.fit(np.where(Z > 3, np.nan, Z), Y)
    with pytest.raises(ValueError, match="method"):
        MultilabelCalibration(method="beta").fit(Z, Y)
    cal.fit(Z, Y)
    with pytest.raises(ValueError, match="features"):
        cal.predict_proba(Z[:, :3])
    with pytest.raises(ValueError, match="finite"):
        cal.predict_proba(np.full((2, L), np.inf))


def test_one_label_torch_and_pandas_inputs():
    cal = PerLabelTemperature().fit(Z[:, :1], Y[:, :1])
    assert cal.predict_proba(Z_NEW[:, :1]).shape == (300, 1)
    torch = pytest.importorskip("torch")
    cal = PerLabelPlatt().fit(torch.as_tensor(Z), torch.as_tensor(Y))
    out = cal.predict_proba(torch.as_tensor(Z_NEW, dtype=torch.float32))
    assert torch.is_tensor(out) and out.dtype == torch.float32 and out.shape == (300, L)
    np.testing.assert_allclose(out.numpy(), PerLabelPlatt().fit(Z, Y).predict_proba(
        Z_NEW.astype(np.float32)), rtol=1e-6)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(Z, columns=[f"tag{j}" for j in range(L)])
    cal = PerLabelIsotonic().fit(frame, pd.DataFrame(Y))
    assert list(cal.feature_names_in_) == list(frame.columns)


def test_calibrating_a_naive_bayes_multilabel_model_lowers_its_ece():
    from sklearn.datasets import make_multilabel_classification
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.naive_bayes import GaussianNB

    X, y = make_multilabel_classification(n_samples=6000, n_features=20, n_classes=5,
                                          n_labels=2, random_state=0)
    train, cal_split, test = slice(0, 3000), slice(3000, 4500), slice(4500, None)
    model = MultiOutputClassifier(GaussianNB()).fit(X[train], y[train])

    def label_logits(X_):  # per-label log-odds of the model (clipped: NB saturates)
        p = np.column_stack([e.predict_proba(X_)[:, 1] for e in model.estimators_])
        return logit(np.clip(p, 1e-12, 1 - 1e-12))

    z_cal, z_test = label_logits(X[cal_split]), label_logits(X[test])
    before = multilabel_ece(y[test], z_test, logits=True)
    assert before > 0.08  # naive Bayes is far from calibrated (0.093)
    for method in ("temperature", "platt", "isotonic"):
        cal = MultilabelCalibration(method=method).fit(z_cal, y[cal_split])
        after = multilabel_ece(y[test], cal.predict_proba(z_test))
        assert after < 0.6 * before, (method, before, after)  # 0.040, 0.032, 0.032
