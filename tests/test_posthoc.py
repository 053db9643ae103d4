"""scikit-learn conventions, persistence, torch round trips and input checks of every calibrator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from calkit.posthoc import (
    BetaCalibration,
    EnsembleTemperatureScaling,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    PlattScaling,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
    VennAbersCalibration,
    load_calibrator,
)
from calkit.posthoc.model import METHODS

MULTICLASS = [
    TemperatureScaling(),
    TemperatureScaling(solver="grid"),
    TemperatureScaling(solver="lbfgs"),
    EnsembleTemperatureScaling(),
    VectorScaling(),
    MatrixScaling(),
    SplineCalibration(),
    HistogramBinning(n_bins=8),
    HistogramBinning(n_bins=8, strategy="uniform", multiclass="one_vs_rest"),
    IsotonicCalibration(),
    IsotonicCalibration(multiclass="one_vs_rest"),
    VennAbersCalibration(),
    VennAbersCalibration(multiclass="one_vs_one", n_folds=3),
]
BINARY = [PlattScaling(), BetaCalibration()]


def _ids(est):
    return repr(est)


def _logits(n=400, k=4, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    y = np.where(rng.random(n) < 0.6, z.argmax(1), rng.integers(0, k, n))
    return z, y


def _binary(n=400, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    y = (rng.random(n) < p ** 2).astype(int)
    return p, y


def _data(est):
    return _binary() if isinstance(est, PlattScaling | BetaCalibration) else _logits()


@pytest.mark.parametrize("est", MULTICLASS + BINARY, ids=_ids)
def test_sklearn_api_clone_pickle_save(est, tmp_path):
    X, y = _data(est)
    with pytest.raises(NotFittedError):
        est.predict_proba(X)
    fitted = clone(est).fit(X, y)
    assert fitted is not est and not hasattr(est, "n_classes_")
    assert clone(fitted).get_params() == est.get_params()
    p = fitted.predict_proba(X)
    assert np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1
    if p.ndim == 2:
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-12)
        np.testing.assert_array_equal(fitted.predict(X), np.argmax(p, 1))
    np.testing.assert_array_equal(fitted.transform(X), p)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), p)
    path = tmp_path / "cal.json"
    fitted.save(path)
    loaded = load_calibrator(path)
    assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
    np.testing.assert_allclose(loaded.predict_proba(X), p, rtol=0, atol=1e-15)
    fitted_attrs = [a for a in vars(fitted) if a not in est.get_params()]
    assert fitted_attrs and all(a.endswith("_") for a in fitted_attrs)


def test_save_file_is_plain_json_and_foreign_files_are_rejected(tmp_path):
    z, y = _logits()
    path = tmp_path / "ts.json"
    TemperatureScaling().fit(z, y).save(path)
    text = path.read_text()
    assert '"TemperatureScaling"' in text and '"temperature_"' in text
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "calkit-calibrator", "class": "os.system", "params": {}}')
    with pytest.raises(ValueError, match="unknown calibrator class"):
        load_calibrator(bad)
    bad.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a calkit calibrator file"):
        load_calibrator(bad)


@pytest.mark.parametrize("est", MULTICLASS, ids=_ids)
def test_torch_in_torch_out(est):
    torch = pytest.importorskip("torch")
    z, y = _logits()
    ref = clone(est).fit(z, y)
    zt = torch.tensor(z, dtype=torch.float32)
    fitted = clone(est).fit(zt, torch.tensor(y))
    out = fitted.predict_proba(zt)
    assert isinstance(out, torch.Tensor) and out.device == zt.device
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), ref.predict_proba(z), atol=2e-4)
    pred = fitted.predict(zt)
    assert isinstance(pred, torch.Tensor)


@pytest.mark.parametrize("est", BINARY, ids=_ids)
def test_binary_torch_and_two_column_logits(est):
    torch = pytest.importorskip("torch")
    p, y = _binary()
    fitted = clone(est).fit(p if isinstance(est, BetaCalibration) else np.log(p / (1 - p)), y)
    logits = np.column_stack([np.zeros_like(p), np.log(p / (1 - p))])
    two = clone(est).fit(logits, y)
    q2 = two.predict_proba(logits)
    assert q2.shape == (len(p), 2)
    one_input = p if isinstance(est, BetaCalibration) else logits[:, 1]
    np.testing.assert_allclose(q2[:, 1], fitted.predict_proba(one_input), atol=1e-6)
    out = fitted.predict_proba(torch.tensor(one_input))
    assert isinstance(out, torch.Tensor) and out.shape == (len(p),)


@pytest.mark.parametrize("est", MULTICLASS, ids=_ids)
def test_bad_inputs_raise_clear_errors(est):
    z, y = _logits()
    with pytest.raises(ValueError, match="1-D"):
        clone(est).fit(z[:, 0], y)
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(bad, y)
    with pytest.raises(ValueError, match="distinct labels .* X has 4 columns"):
        clone(est).fit(z, np.arange(len(y)) % 5 + 10)
    with pytest.raises(ValueError, match="samples"):
        clone(est).fit(z, y[:-1])
    fitted = clone(est).fit(z, y)
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 4"):
        fitted.predict_proba(z[:, :3])


@pytest.mark.parametrize("est", BINARY, ids=_ids)
def test_binary_bad_inputs(est):
    p, y = _binary()
    with pytest.raises(ValueError, match="only one class"):
        clone(est).fit(p, np.ones_like(y))
    with pytest.raises(ValueError, match="Only binary classification .* 3 classes"):
        clone(est).fit(p, np.arange(len(y)) % 3 + 1)
    with pytest.raises(ValueError, match="3 classes"):
        clone(est).fit(np.zeros((5, 3)), np.arange(5) % 2)
    if isinstance(est, BetaCalibration):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            clone(est).fit(p * 2, y)


@pytest.mark.parametrize("name,cls", [(k, v) for k, v in METHODS.items()])
def test_cli_method_names_resolve(name, cls):
    import calkit.posthoc as posthoc

    est = getattr(posthoc, cls)()
    z, y = _logits(k=2) if name in ("platt", "beta") else _logits()
    est.fit(z, y)  # the CLI calls Cls().fit(logits, labels) for every method
    assert est.predict_proba(z).shape == z.shape


def test_parameter_validation():
    z, y = _logits()
    for est, match in [(TemperatureScaling(solver="magic"), "solver"),
                       (TemperatureScaling(t_bounds=(2, 1)), "t_bounds"),
                       (TemperatureScaling(max_iter=0), "max_iter"),
                       (EnsembleTemperatureScaling(loss="hinge"), "loss"),
                       (HistogramBinning(n_bins=0), "n_bins"),
                       (HistogramBinning(n_bins=10_000), "more than the number of samples"),
                       (HistogramBinning(strategy="kmeans"), "strategy"),
                       (IsotonicCalibration(multiclass="ovo"), "multiclass"),
                       (SplineCalibration(n_knots=2), "n_knots"),
                       (VectorScaling(reg=-1), "reg")]:
        with pytest.raises(ValueError, match=match):
            est.fit(z, y)


# scikit-learn's estimator checks (every calibrator, each expected failure with its reason)
# are in tests/test_posthoc_sklearn_checks.py.
