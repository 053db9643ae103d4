"""One result type for every test of calibration (issue 16): fields, aliases, export."""

from __future__ import annotations

import json

import numpy as np
import pytest

import calkit.metrics as cm
from calkit.metrics import (
    CalibrationTestResult,
    consistency_test,
    hosmer_lemeshow,
    skce_test,
    spiegelhalter_z,
    t_cal_test,
)
from calkit.metrics.consistency import ConsistencyTestResult


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=300)
    y = (rng.uniform(size=(300, 1)) > p.cumsum(1)).sum(1)
    return y, p


def _all_tests(y, p):
    return {
        "hosmer_lemeshow": hosmer_lemeshow(y, p),
        "spiegelhalter_z": spiegelhalter_z(y, p),
        "consistency": consistency_test(y, p, n_resamples=30, random_state=0),
        "skce": skce_test(y, p),
        "skce_bootstrap": skce_test(y, p, method="bootstrap", n_bootstrap=40),
        "t_cal": t_cal_test(y, p, n_resamples=300),
    }


def test_every_test_returns_the_one_type(data):
    y, p = data
    for name, r in _all_tests(*data).items():
        assert type(r) is CalibrationTestResult, name
        assert r.settings["test"] == name.replace("_bootstrap", ""), name
        assert 0 < r.pvalue <= 1 and np.isfinite(r.statistic), name
        assert r.p_value == r.pvalue and r.null is r.null_distribution, name
        assert r.reject(0.999999) == (r.pvalue < 0.999999)


def test_resampling_tests_keep_their_null(data):
    y, p = data
    tests = _all_tests(y, p)
    for name, size in (("consistency", 30), ("skce_bootstrap", 40)):
        r = tests[name]
        assert r.null_distribution.shape == (size,)
        # the p-value is the share of resamples at least as large (plus one), recounted here
        assert r.pvalue == pytest.approx(
            (1 + np.count_nonzero(r.null_distribution >= r.statistic)) / (size + 1), rel=1e-12)
    for name in ("hosmer_lemeshow", "spiegelhalter_z", "skce", "t_cal"):
        assert tests[name].null_distribution is None


def test_consistency_name_is_an_alias_not_a_second_type():
    assert ConsistencyTestResult is CalibrationTestResult
    assert "ConsistencyTestResult" not in cm.__all__ and "CalibrationTestResult" in cm.__all__


def test_to_dict_is_json_ready_and_frame_has_one_row(data):
    y, p = data
    r = consistency_test(y, p, n_resamples=10, random_state=np.random.default_rng(1))
    from calkit._export import json_ready

    d = json.loads(json.dumps(json_ready(r.to_dict())))
    assert d["pvalue"] == r.pvalue and len(d["null_distribution"]) == 10
    assert d["settings"]["metric"] == "ece"
    hl = hosmer_lemeshow(y, p).to_dict()
    assert "table" in hl and "null_distribution" not in hl
    pd = pytest.importorskip("pandas")
    frame = r.to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (1, 3)
    assert frame["test"][0] == "consistency" and frame["pvalue"][0] == r.pvalue
    assert "consistency" in repr(r) and "10 resamples" in repr(r)


def test_reject_validates_alpha(data):
    r = spiegelhalter_z(*data)
    for bad in (0, 1, 1.5, True, "0.05"):
        with pytest.raises(ValueError, match="alpha"):
            r.reject(bad)
