"""Issue 14, results: to_dict() round-trips through JSON, to_frame() gives the documented
rows (bin tables: one row per bin with lower/upper edges), _repr_html_ for notebooks."""

import json

import numpy as np
import pytest

from calkit import bin_table, calibration_error, smooth_ece, softmax, sweep_ece
from calkit.datasets import load_example
from calkit.metrics import bootstrap, ece, ood_metrics, risk_coverage


def _data():
    logits, labels = load_example()
    return labels, softmax(logits).astype(np.float64)


@pytest.fixture(scope="module")
def results():
    return _results()


def _results():
    y, p = _data()
    rng = np.random.default_rng(0)
    return {
        "table": bin_table(p.max(1), p.argmax(1) == y, n_bins=10),   # has empty bins
        "calibration": calibration_error(y, p, n_bins=10),
        "classwise": calibration_error(y, p, n_bins=5, view="classwise"),
        "sweep": sweep_ece(y, p),
        "smooth": smooth_ece(y, p, band=0.9, n_resamples=10),
        "bootstrap": bootstrap(ece, y, p, n_resamples=20, random_state=np.random.default_rng(1)),
        "risk": risk_coverage(y, p),
        "ood": ood_metrics(rng.normal(1, 1, 50), rng.normal(0, 1, 40)),
    }


NAMES = ["table", "calibration", "classwise", "sweep", "smooth", "bootstrap", "risk", "ood"]


@pytest.mark.parametrize("name", NAMES)
def test_to_dict_round_trips_through_strict_json(name, results):
    result = results[name]
    d = result.to_dict()
    text = json.dumps(d, allow_nan=False)   # no NaN/inf, no numpy types left
    assert json.loads(text) == d


@pytest.mark.parametrize("name", NAMES)
def test_repr_html_is_a_table(name, results):
    page = results[name]._repr_html_()
    assert page.startswith("<div>") and "<table>" in page and "</table>" in page


def test_bin_table_frame_has_one_row_per_bin_with_its_edges():
    pytest.importorskip("pandas")
    y, p = _data()
    t = bin_table(p.max(1), p.argmax(1) == y, n_bins=10)
    frame = t.to_frame()
    assert len(frame) == t.n_bins == len(t.edges) - 1
    np.testing.assert_array_equal(frame["lower"], t.edges[:-1])
    np.testing.assert_array_equal(frame["upper"], t.edges[1:])
    np.testing.assert_array_equal(frame["count"], t.count)
    assert frame["weight"].sum() == pytest.approx(1.0)
    # empty bins: NaN means in the frame, None in the dict (the same bins)
    empty = t.count == 0
    assert empty.any() and frame["mean_score"][empty].isna().all()
    assert [v is None for v in t.to_dict()["mean_score"]] == empty.tolist()
    # the frame's own columns give the ECE back
    assert (frame["weight"] * frame["gap"].abs()).sum() == pytest.approx(
        float(calibration_error(y, p, n_bins=10)), rel=1e-12)


def test_result_frames(results):
    pytest.importorskip("pandas")
    r = results
    assert sorted(r) == sorted(NAMES)
    cw = r["classwise"].to_frame()
    assert sorted(set(cw["table"])) == list(range(10)) and len(cw) == 50
    assert len(r["calibration"].to_frame()) == 10
    sm = r["smooth"].to_frame()
    assert {"grid", "curve", "band_low", "band_high"} <= set(sm.columns)
    assert len(sm) == len(r["smooth"].grid)
    bs = r["bootstrap"].to_frame()
    assert len(bs) == 1 and bs["low"][0] == r["bootstrap"].low
    assert isinstance(r["bootstrap"].to_dict()["settings"]["random_state"], str)
    rc = r["risk"].to_frame()
    np.testing.assert_array_equal(rc["coverage"], r["risk"].coverage)
    ood = r["ood"].to_frame()
    assert len(ood) == 1 and ood["auroc"][0] == r["ood"].auroc


def test_torch_results_export_like_numpy():
    torch = pytest.importorskip("torch")
    y, p = _data()
    a = calibration_error(torch.tensor(y), torch.tensor(p), n_bins=10).to_dict()
    b = calibration_error(y, p, n_bins=10).to_dict()
    assert a["value"] == pytest.approx(b["value"], rel=1e-12)
    assert a["tables"][0]["count"] == b["tables"][0]["count"]
    assert json.loads(json.dumps(a, allow_nan=False)) == a


def test_a_batch_of_tables_has_no_single_frame():
    pytest.importorskip("pandas")
    from calkit.binning import assign_bins, resampled_tables, uniform_edges

    s, t = np.array([0.1, 0.6, 0.9]), np.array([0, 1, 1])
    edges = uniform_edges(2)
    batch = resampled_tables(assign_bins(s, edges), s, t, np.array([[0, 1, 2], [2, 2, 1]]),
                             edges)
    with pytest.raises(ValueError, match="single table"):
        batch.to_frame()
