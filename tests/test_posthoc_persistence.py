"""save / load_calibrator: every calibrator round-trips, and no tampered file loads.

The adversarial cases are of two kinds: the reproductions of issue 14 (rows
summing to 2, a negative temperature, a wrong class count, a perturbation count
that would hang ``predict_proba``, a class shadowed by a user subclass), and,
for every calibrator and every fitted attribute, one tampered file per kind of
bad value (NaN, infinity, wrong type, wrong shape, out of range, missing,
unknown), each of which must raise a ``ValueError`` naming the attribute.
"""

from __future__ import annotations

import inspect
import json
import os
import time
import warnings

import numpy as np
import pytest

import calkit.posthoc as posthoc
from calkit.posthoc import BaseCalibrator, load_calibrator
from calkit.posthoc._persistence import CALIBRATORS, SKLEARN_ATTRIBUTES, ValueSpec, check_value

rng = np.random.default_rng(0)
N, K = 300, 3
Y = rng.integers(0, K, N)
Z = 3.0 * (np.eye(K)[Y] + rng.normal(0, 0.8, (N, K)))
P1 = rng.uniform(0.02, 0.98, N)
Y1 = (rng.random(N) < P1 ** 2).astype(int)
H = np.abs(rng.normal(0, 1, (N, 4))) + 2.0 * np.eye(K, 4)[Y]
W = 3.0 * np.eye(K, 4)
ZL = 2.0 * rng.normal(size=(N, 3))   # multilabel logits, (N, L) 0/1 labels
YL = (rng.random((N, 3)) < 1 / (1 + np.exp(-ZL / 2))).astype(int)

#: one fitted example of every calkit calibrator (several settings where the state differs)
EXAMPLES = {
    "TemperatureScaling": lambda: posthoc.TemperatureScaling().fit(Z, Y),
    "VectorScaling": lambda: posthoc.VectorScaling().fit(Z, Y),
    "MatrixScaling": lambda: posthoc.MatrixScaling().fit(Z, Y),
    "EnsembleTemperatureScaling": lambda: posthoc.EnsembleTemperatureScaling().fit(Z, Y),
    "DirichletCalibration": lambda: posthoc.DirichletCalibration().fit(Z, Y),
    "SplineCalibration": lambda: posthoc.SplineCalibration().fit(Z, Y),
    "HistogramBinning": lambda: posthoc.HistogramBinning(n_bins=6).fit(Z, Y),
    "HistogramBinning-ovr": lambda: posthoc.HistogramBinning(
        n_bins=5, strategy="uniform", multiclass="one_vs_rest").fit(Z, Y),
    "IsotonicCalibration": lambda: posthoc.IsotonicCalibration().fit(Z, Y),
    "IsotonicCalibration-ovr": lambda: posthoc.IsotonicCalibration(
        multiclass="one_vs_rest").fit(Z, Y),
    "PlattScaling": lambda: posthoc.PlattScaling().fit(P1, Y1),
    "BetaCalibration": lambda: posthoc.BetaCalibration().fit(P1, Y1),
    "ConsistencyCalibration": lambda: posthoc.ConsistencyCalibration(
        noise="gaussian", noise_scales=[0.5, 2.0], n_perturbations=50).fit(Z, Y),
    "FeatureClipping": lambda: posthoc.FeatureClipping(threshold=2.5).fit(
        H, Y, coef=W, intercept=np.zeros(K)),
    "ScalingBinning": lambda: posthoc.ScalingBinning(n_bins=4).fit(Z, Y),
    "ScalingBinning-ovr": lambda: posthoc.ScalingBinning(
        n_bins=3, scaling="temperature", multiclass="one_vs_rest").fit(Z, Y),
    "PerLabelTemperature": lambda: posthoc.PerLabelTemperature().fit(ZL, YL),
    "PerLabelPlatt": lambda: posthoc.PerLabelPlatt().fit(ZL, YL),
    "PerLabelIsotonic": lambda: posthoc.PerLabelIsotonic().fit(ZL, YL),
    "VennAbersCalibration": lambda: posthoc.VennAbersCalibration().fit(Z, Y),
    "VennAbersCalibration-ovo-cv": lambda: posthoc.VennAbersCalibration(
        multiclass="one_vs_one", n_folds=3, merge="brier").fit(Z, Y),
}
#: calibrators whose save writes another calibrator (AutoCalibration: the one it chose)
DELEGATING = {"AutoCalibration", "MultilabelCalibration"}
MULTILABEL = {"PerLabelTemperature", "PerLabelPlatt", "PerLabelIsotonic"}
BINARY = {"PlattScaling", "BetaCalibration"}


def _inputs(name: str):
    base = name.split("-")[0]
    if base in MULTILABEL:
        return ZL
    return H if base == "FeatureClipping" else P1 if base in BINARY else Z


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make() for name, make in EXAMPLES.items()}


def _doc(est, tmp_path):
    path = tmp_path / "cal.json"
    est.save(path)
    return json.loads(path.read_text())


def _write(tmp_path, doc, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------------- round trips
def test_table_holds_exactly_the_calibrators_of_calkit_posthoc():
    exported = {n for n in posthoc.__all__ if inspect.isclass(getattr(posthoc, n))
                and issubclass(getattr(posthoc, n), BaseCalibrator) and n != "BaseCalibrator"
                and n not in DELEGATING}
    assert set(CALIBRATORS) == exported
    assert {name.split("-")[0] for name in EXAMPLES} == exported  # every one is tested below
    for name, module in CALIBRATORS.items():
        cls = getattr(posthoc, name)
        assert cls.__module__ == module
        assert set(cls._fitted_attributes) == {a for a, s in cls._fitted_spec.items()
                                               if s.required}
        assert set(cls._param_spec) <= set(inspect.signature(cls.__init__).parameters)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_calibrator_round_trips(name, fitted, tmp_path):
    est = fitted[name]
    path = tmp_path / "cal.json"
    est.save(path)
    loaded = load_calibrator(path)
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    X = _inputs(name)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    spec = type(est)._fitted_spec
    for attr in vars(est):  # every fitted attribute is declared, and saved unless a diagnostic
        if attr in SKLEARN_ATTRIBUTES or (attr.endswith("_") and not attr.startswith("_")
                                          and spec[attr].kind != "unsaved"):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(est, attr))
    text = path.read_text()
    assert json.loads(text)["version"] == 1 and "__" not in text


def test_files_without_a_version_field_still_load(fitted, tmp_path):
    doc = _doc(fitted["TemperatureScaling"], tmp_path)
    del doc["version"]
    assert load_calibrator(_write(tmp_path, doc)).temperature_ == \
        fitted["TemperatureScaling"].temperature_


# ---------------------------------------------------------------------------- issue 14
def test_weights_that_make_rows_sum_to_two_are_refused(fitted, tmp_path):
    doc = _doc(fitted["EnsembleTemperatureScaling"], tmp_path)
    doc["fitted"]["weights_"]["data"] = [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="weights_ must add up to 1"):
        load_calibrator(_write(tmp_path, doc))


@pytest.mark.parametrize("value", [-1.5, 0.0, float("nan"), float("inf")])
def test_non_positive_or_nonfinite_temperature_is_refused(value, fitted, tmp_path):
    doc = _doc(fitted["TemperatureScaling"], tmp_path)
    doc["fitted"]["temperature_"]["data"] = [value]
    with pytest.raises(ValueError, match="temperature_"):
        load_calibrator(_write(tmp_path, doc))


@pytest.mark.parametrize("name", ["VectorScaling", "MatrixScaling", "DirichletCalibration"])
def test_class_count_that_disagrees_with_the_arrays_is_refused(name, fitted, tmp_path):
    doc = _doc(fitted[name], tmp_path)
    doc["fitted"]["n_classes_"]["data"] = [K + 1]
    with pytest.raises(ValueError, match="K = "):
        load_calibrator(_write(tmp_path, doc))


def test_one_vs_rest_maps_must_match_the_class_count(fitted, tmp_path):
    doc = _doc(fitted["IsotonicCalibration-ovr"], tmp_path)
    doc["fitted"]["n_classes_"]["data"] = [K + 2]
    with pytest.raises(ValueError, match="offsets_ must have"):
        load_calibrator(_write(tmp_path, doc))
    doc = _doc(fitted["HistogramBinning"], tmp_path)
    doc["params"]["multiclass"] = "one_vs_rest"  # one map stored, three needed
    with pytest.raises(ValueError, match="offsets_ must have 4 rows"):
        load_calibrator(_write(tmp_path, doc))


@pytest.mark.parametrize("value", [10**12, 0, -5, 2.5, True, "200"])
def test_perturbation_count_that_would_hang_or_break_is_refused(value, fitted, tmp_path):
    doc = _doc(fitted["ConsistencyCalibration"], tmp_path)
    doc["params"]["n_perturbations"] = value
    start = time.perf_counter()
    with pytest.raises(ValueError, match="n_perturbations"):
        load_calibrator(_write(tmp_path, doc))
    assert time.perf_counter() - start < 5  # refused at once, not run


@pytest.mark.parametrize("params, match", [
    ({"smoothing": float("inf")}, "smoothing"), ({"smoothing": -1.0}, "smoothing"),
    ({"random_state": -3}, "random_state"), ({"aggregation": "median"}, "aggregation"),
    ({"magic": 1}, "unknown parameter")])
def test_bad_prediction_parameters_are_refused(params, match, fitted, tmp_path):
    doc = _doc(fitted["ConsistencyCalibration"], tmp_path)
    doc["params"].update(params)
    with pytest.raises(ValueError, match=match):
        load_calibrator(_write(tmp_path, doc))


@pytest.mark.parametrize("eps", [float("nan"), 0.0, 0.7, -1e-3, "tiny"])
def test_beta_eps_is_checked(eps, fitted, tmp_path):
    doc = _doc(fitted["BetaCalibration"], tmp_path)
    doc["params"]["eps"] = eps
    with pytest.raises(ValueError, match="eps"):
        load_calibrator(_write(tmp_path, doc))


def test_a_user_subclass_can_neither_shadow_nor_be_saved(fitted, tmp_path):
    class TemperatureScaling(posthoc.TemperatureScaling):  # same bare name as calkit's
        def _predict_proba(self, X):
            return np.full((len(X), self.n_classes_), 0.5)  # rows sum to K / 2

    fake = TemperatureScaling().fit(Z, Y)
    with pytest.raises(TypeError, match="only calkit's own calibrators"):
        fake.save(tmp_path / "fake.json")
    fitted["TemperatureScaling"].save(tmp_path / "ts.json")
    loaded = load_calibrator(tmp_path / "ts.json")  # the subclass above did not register
    assert type(loaded) is posthoc.TemperatureScaling
    np.testing.assert_allclose(loaded.predict_proba(Z).sum(1), 1.0)


@pytest.mark.parametrize("cls", ["BaseCalibrator", "_AffineScaling", "_ScoreMapCalibrator",
                                 "CalibratedModel", "os.system", "", None, 3, ["TS"]])
def test_only_classes_of_the_table_are_built(cls, fitted, tmp_path):
    doc = _doc(fitted["TemperatureScaling"], tmp_path)
    doc["class"] = cls
    with pytest.raises(ValueError, match="unknown calibrator class"):
        load_calibrator(_write(tmp_path, doc))


# ---------------------------------------------------------------------------- whole files
@pytest.mark.parametrize("text", ["[]", "3", '"calkit"', "null", "true", "{", "\x00\x01",
                                  "[" * 100_000])
def test_documents_that_are_not_calibrator_objects(text, tmp_path):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="not a calkit calibrator file"):
        load_calibrator(path)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(version="1"), "version '1'"),
    (lambda d: d.update(version=True), "version True"),
    (lambda d: d.update(format="other"), "not a calkit calibrator file"),
    (lambda d: d.update(extra=1), "unexpected entries"),
    (lambda d: d.update(params=[]), "params"),
    (lambda d: d.update(fitted=None), "fitted"),
    (lambda d: d["fitted"].pop("temperature_"), "missing fitted attribute"),
    (lambda d: d["fitted"].update(bias_=d["fitted"]["n_classes_"]), "unexpected fitted"),
    (lambda d: d["fitted"]["temperature_"].update(shape=[10**12], scalar=False), "more than"),
    (lambda d: d["fitted"]["temperature_"].update(shape=[-1], scalar=False), "non-negative"),
    (lambda d: d["fitted"]["temperature_"].update(shape=[3], scalar=False), "list of 3"),
    (lambda d: d["fitted"]["temperature_"].update(data=["1.5"]), "temperature_"),
    (lambda d: d["fitted"]["temperature_"].update(data=[[1.5]]), "numbers or strings"),
    (lambda d: d["fitted"]["temperature_"].update(data=[True]), "numbers or strings"),
    (lambda d: d["fitted"]["temperature_"].update(scalar="yes"), "scalar"),
    (lambda d: d["fitted"]["temperature_"].pop("dtype"), "dtype, shape, data"),
    (lambda d: d["fitted"].update(temperature_=1.5), "dtype, shape, data"),
])
def test_tampered_documents(change, match, fitted, tmp_path):
    doc = _doc(fitted["TemperatureScaling"], tmp_path)
    change(doc)
    with pytest.raises(ValueError, match=match):
        load_calibrator(_write(tmp_path, doc))


def test_huge_files_directories_and_missing_files(fitted, tmp_path, monkeypatch):
    import calkit.posthoc._persistence as persistence

    path = tmp_path / "ts.json"
    fitted["TemperatureScaling"].save(path)
    monkeypatch.setattr(persistence, "MAX_FILE_BYTES", 100)
    with pytest.raises(ValueError, match="more than a calibrator file may be"):
        load_calibrator(path)
    with pytest.raises(ValueError, match="is a directory"):
        load_calibrator(tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        load_calibrator(tmp_path / "absent.json")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.json")  # reading it would block forever
        with pytest.raises(ValueError, match="not a regular file"):
            load_calibrator(tmp_path / "fifo.json")


# ---------------------------------------------------------------------------- per attribute
def _bad_values(spec: ValueSpec, good):
    """(label, bad value as a JSON entry) for every kind of value that ``spec`` refuses."""
    def entry(data, shape=(), scalar=True):
        return {"dtype": "<f8", "shape": list(shape), "data": list(data), "scalar": scalar}

    shape = good["shape"]
    size = max(1, int(np.prod(shape))) if shape else 1
    cases = [("string", entry(["x"] * size, shape, not shape))]
    if spec.kind == "str":
        return [("number", entry([1.0])), ("not a choice", entry(["other"]))]
    if not spec.nan_ok:
        cases.append(("nan", entry([float("nan")] * size, shape, not shape)))
    if spec.finite:
        cases.append(("inf", entry([float("inf")] * size, shape, not shape)))
    for bound, delta in ((spec.ge, -1.0), (spec.gt, 0.0), (spec.le, 1.0), (spec.lt, 0.0)):
        if bound is not None:
            cases.append((f"bound {bound}{delta:+}", entry([bound + delta] * size, shape,
                                                          not shape)))
    if spec.kind == "int":
        cases.append(("fraction", entry([2.5])))
    if spec.kind == "array":
        cases.append(("extra axis", entry(good["data"], [*shape, 1], False)))
        if spec.shape and spec.shape[0] != "*":
            cases.append(("one entry more", entry([0.5] * (size + 1), [shape[0] + 1,
                                                                        *shape[1:]], False)))
    else:
        cases.append(("array instead of a number", entry([1.0, 1.0], [2], False)))
    return cases


def _tamper_cases():
    out = []
    for name in sorted(EXAMPLES):
        cls = getattr(posthoc, name.split("-")[0])
        out.extend((name, attr) for attr, spec in cls._fitted_spec.items()
                   if spec.kind != "unsaved")
    return out


@pytest.mark.parametrize("name, attr", _tamper_cases())
def test_every_kind_of_bad_fitted_value_is_refused(name, attr, fitted, tmp_path):
    est = fitted[name]
    spec = type(est)._fitted_spec[attr]
    doc = _doc(est, tmp_path)
    assert attr in doc["fitted"]  # every declared value of these examples is saved
    cases = _bad_values(spec, doc["fitted"][attr])
    assert cases
    for _label, bad in cases:
        doc["fitted"][attr] = bad
        with pytest.raises(ValueError, match=attr):
            load_calibrator(_write(tmp_path, doc))


@pytest.mark.parametrize("name", [n for n in sorted(EXAMPLES) if "Histogram" in n
                                  or "Isotonic" in n or "Spline" in n])
def test_score_map_offsets_and_order(name, fitted, tmp_path):
    doc = _doc(fitted[name], tmp_path)
    offsets = doc["fitted"]["offsets_"]
    for data in ([1] + offsets["data"][1:],                      # does not start at 0
                 offsets["data"][:-2] + [offsets["data"][-2] + 1, offsets["data"][-1]]):
        doc["fitted"]["offsets_"] = dict(offsets, data=data)
        with pytest.raises(ValueError, match="offsets_"):
            load_calibrator(_write(tmp_path, doc))
    doc["fitted"]["offsets_"] = offsets
    x = doc["fitted"]["nodes_x_"]["data"]
    doc["fitted"]["nodes_x_"]["data"] = x[::-1]  # the nodes of a map out of order
    with pytest.raises(ValueError, match="sorted"):
        load_calibrator(_write(tmp_path, doc))


def test_check_value_reports_the_dimension_that_disagrees():
    dims = {}
    check_value("n_classes_", 3, ValueSpec("int", ge=2, dim="K"), dims)
    with pytest.raises(ValueError, match="coef_ has K = 4"):
        check_value("coef_", np.zeros((4, 4)), ValueSpec("array", shape=("K", "K")), dims)
    with pytest.raises(ValueError, match="integer"):
        check_value("n", True, ValueSpec("int"), {})
    with pytest.raises(ValueError, match="real number"):
        check_value("t", 1j, ValueSpec("float"), {})
    assert check_value("eps", None, ValueSpec("float", none_ok=True), {}) is None


def test_save_leaves_no_partial_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "ts.json"
    fitted["TemperatureScaling"].save(path)
    old = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("calkit.posthoc._persistence.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        fitted["VectorScaling"].save(path)
    assert path.read_text() == old and sorted(p.name for p in tmp_path.iterdir()) == ["ts.json"]


def test_fitted_attributes_are_declared_once_in_the_spec():
    with pytest.raises(TypeError, match="declare its fitted attributes in _fitted_spec"):
        class Legacy(BaseCalibrator):  # noqa: F841 - the definition itself raises
            _fitted_attributes = ("coef_",)

    class Declared(BaseCalibrator):
        _fitted_spec = {"coef_": ValueSpec("float"), "extra_": ValueSpec("int", required=False)}

    assert Declared._fitted_attributes == ("coef_",)


def test_an_undeclared_fitted_attribute_stops_save(fitted, tmp_path):
    est = posthoc.TemperatureScaling().fit(Z, Y)
    est.bias_ = np.zeros(K)  # e.g. added to fit without a spec line
    with pytest.raises(TypeError, match=r"\['bias_'\] that its _fitted_spec does not"):
        est.save(tmp_path / "ts.json")
    cc = fitted["ConsistencyCalibration"]
    doc = _doc(cc, tmp_path)
    assert "scores_" not in doc["fitted"]  # a declared diagnostic, not saved
    doc["fitted"]["scores_"] = doc["fitted"]["noise_scale_"]
    with pytest.raises(ValueError, match="unexpected fitted attribute"):
        load_calibrator(_write(tmp_path, doc))


def test_numpy_scalar_parameters_are_saved_as_numbers(tmp_path):
    hb = posthoc.HistogramBinning(n_bins=np.int64(6)).fit(Z, Y)
    ts = posthoc.TemperatureScaling(t_bounds=(np.float64(0.05), np.float64(20.0))).fit(Z, Y)
    for est in (hb, ts):
        est.save(tmp_path / "c.json")
        loaded = load_calibrator(tmp_path / "c.json")
        assert loaded.get_params() == est.get_params()
        np.testing.assert_array_equal(loaded.predict_proba(Z), est.predict_proba(Z))
