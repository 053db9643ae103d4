"""Issue 14, items 8 and 7: (correct, confidence) pairs are never read as P(y=1), and one
name means one definition (functions, report keys, accumulator keys, Brier layouts)."""

import json

import numpy as np
import pytest

import calkit
from calkit import (
    accuracy,
    brier_score,
    calibration_error,
    debiased_ece,
    ece,
    nll,
    smooth_ece,
    softmax,
    sweep_ece,
)
from calkit.binning import bin_table, quantile_edges, uniform_edges
from calkit.datasets import load_example
from calkit.metrics import aurc, bootstrap, risk_coverage
from calkit.metrics.grouped import grouped_calibration
from calkit.report import METRIC_LABELS, format_table, summarize
from calkit.stream import CalibrationAccumulator
from conftest import shared_path


def _brute_ece(scores, targets, edges):
    """L1 ECE by a loop over right-closed bins (first bin closed)."""
    total = 0.0
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        inside = (scores > lo) & (scores <= hi) if b else (scores >= lo) & (scores <= hi)
        if inside.any():
            total += inside.sum() * abs(scores[inside].mean() - targets[inside].mean())
    return total / len(scores)


def _top1_pairs(seed=0, n=4000, k=100):
    """Top-1 (correct, confidence) of an over-confident many-class model: many below 0.5."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.6
    y = rng.integers(0, k, n)
    z[np.arange(n), y] += rng.uniform(0, 5, n)
    p = softmax(z)
    return y, p, (p.argmax(1) == y).astype(int), p.max(1)


# ---------------------------------------------------------------- item 8: the 1-D reading
def test_confidence_pairs_are_not_read_as_a_binary_p_of_one():
    y, p, correct, conf = _top1_pairs()
    assert (conf < 0.5).mean() > 0.2  # the pairs the old default misread
    want = _brute_ece(conf, correct, uniform_edges(15))
    assert ece(y, p) == pytest.approx(want, rel=1e-12)  # the matrix, top-label
    assert ece(correct, conf, view="confidence") == pytest.approx(want, rel=1e-12)
    # the old silent default: max(p, 1 - p) against p > 0.5 -- a different, plausible number
    misread = ece(correct, conf, view="top_label")
    assert abs(misread - want) > 0.01
    with pytest.raises(ValueError, match="view='confidence'"):
        ece(correct, conf)


def test_confidence_view_on_real_cifar100_top1_pairs():
    path = shared_path("cifar_softmax_netcal", "wideresnet-16-4-cifar-100.npz")
    with np.load(path, allow_pickle=False) as d:
        p, y = d["predictions"].astype(np.float64), d["ground_truth"]
    correct, conf = (p.argmax(1) == y).astype(int), p.max(1)
    for kw in (dict(), dict(strategy="quantile"), dict(norm="l2")):
        assert ece(correct, conf, view="confidence", **kw) == pytest.approx(
            ece(y, p, **kw), rel=1e-12)
    assert float(sweep_ece(correct, conf, view="confidence")) == pytest.approx(
        float(sweep_ece(y, p)), rel=1e-12)
    assert float(debiased_ece(correct, conf, view="confidence")) == pytest.approx(
        float(debiased_ece(y, p)), rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda c, s: calibration_error(c, s),
    lambda c, s: ece(c, s),
    lambda c, s: debiased_ece(c, s),
    lambda c, s: sweep_ece(c, s),
    lambda c, s: smooth_ece(c, s),
    lambda c, s: accuracy(c, s),
    lambda c, s: bootstrap(ece, c, s, n_resamples=5),
    lambda c, s: summarize(c, s),
    lambda c, s: aurc(c, s),
], ids=["calibration_error", "ece", "debiased_ece", "sweep_ece", "smooth_ece", "accuracy",
        "bootstrap", "summarize", "aurc"])
def test_every_metric_refuses_to_guess_the_reading_of_1d_scores(call):
    correct, conf = np.array([1, 0, 1, 0, 1, 1]), np.array([0.3, 0.4, 0.9, 0.7, 0.45, 0.8])
    with pytest.raises(ValueError, match="view="):
        call(correct, conf)


def test_each_view_of_1d_scores_matches_its_brute_force():
    rng = np.random.default_rng(1)
    s = rng.uniform(size=800)
    y = (rng.uniform(size=800) < s ** 1.3).astype(int)
    edges = uniform_edges(10)
    for view, (scores, targets) in {
            "positive": (s, y), "confidence": (s, y),
            "top_label": (np.maximum(s, 1 - s), (s > 0.5).astype(int) == y)}.items():
        assert ece(y, s, n_bins=10, view=view) == pytest.approx(
            _brute_ece(scores, targets.astype(float), edges), rel=1e-12), view


def test_confidence_view_refuses_a_matrix_and_records_itself():
    with pytest.raises(ValueError, match="1-D"):
        ece([0, 1], np.array([[0.3, 0.7], [0.6, 0.4]]), view="confidence")
    r = calibration_error([1, 0, 1], np.array([0.9, 0.2, 0.6]), n_bins=2, view="confidence")
    assert r.settings["view"] == "confidence" and "confidence" in r.describe()
    with pytest.raises(ValueError, match="labels must lie in"):
        ece([1, 2, 0], np.array([0.9, 0.2, 0.6]), view="confidence")   # correctness is 0/1


def test_accuracy_and_risk_coverage_of_confidence_pairs():
    correct, conf = np.array([1, 1, 0, 1]), np.array([0.2, 0.9, 0.8, 0.4])
    assert accuracy(correct, conf, view="confidence") == 0.75
    assert accuracy(correct, conf, view="positive") == 0.25  # the p > 0.5 reading
    rc = risk_coverage(correct, conf, view="confidence")   # ranked .9 ok, .8 wrong, .4, .2 ok
    assert rc.risk.tolist() == pytest.approx([0, 1 / 2, 1 / 3, 1 / 4])
    # all scores above 0.5: both readings are the same pairs, so no view is needed
    high = np.array([0.6, 0.9, 0.7])
    assert aurc([1, 0, 1], high) == aurc([1, 0, 1], high, view="confidence")


def test_proper_scores_of_1d_scores_are_the_same_in_both_readings():
    correct, conf = np.array([1, 0, 1]), np.array([0.9, 0.3, 0.6])
    assert brier_score(correct, conf) == pytest.approx(np.mean((conf - correct) ** 2))
    assert nll(correct, conf) == pytest.approx(-np.mean(np.log([0.9, 0.7, 0.6])))


def test_bootstrap_and_grouped_use_the_confidence_view():
    y, p, correct, conf = _top1_pairs(seed=2, n=600, k=20)
    r = bootstrap(ece, correct, conf, view="confidence", n_resamples=30, random_state=0)
    assert r.settings["route"] == "binned" and r.value == pytest.approx(ece(y, p), rel=1e-12)
    rows = grouped_calibration({"c": conf, "ok": correct}, confidence="c", correct="ok")
    assert rows[0]["ece_uniform"] == pytest.approx(ece(y, p), rel=1e-12)
    assert rows[0]["accuracy"] == pytest.approx(correct.mean())


def test_summarize_confidence_form_uses_the_confidence_view():
    y, p, correct, conf = _top1_pairs(seed=3, n=500, k=10)
    s = summarize(correct, conf, confidence_form=True, n_bins=10)
    assert s.settings["view"] == "confidence"
    assert s.metrics["ece_uniform"] == pytest.approx(ece(y, p, n_bins=10), rel=1e-12)
    assert s.metrics["accuracy"] == pytest.approx(correct.mean())


# ---------------------------------------------------------------- item 7: one name, one number
def test_debiased_ece_names_one_definition_everywhere():
    logits, labels = load_example()
    p = softmax(logits)
    acc = CalibrationAccumulator(n_bins=15, exact=True)
    for start in range(0, len(labels), 700):
        acc.update(labels[start:start + 700], p[start:start + 700])
    out = acc.compute()
    assert "debiased_ece" not in out   # the fixed-bin estimator says its bins in its key
    # Kumar et al.'s estimator by hand on each table
    def kumar(table):
        n, a = table.count, table.mean_target
        ok = n >= 2
        term = (table.mean_score - a) ** 2 - a * (1 - a) / np.where(ok, n - 1, 1)
        return np.sqrt(max(0.0, float(np.sum(np.where(ok, n * term, 0.0)) / n.sum())))
    conf, correct = p.max(1), p.argmax(1) == labels
    uniform = bin_table(conf, correct, n_bins=15)
    quantile = bin_table(conf, correct, n_bins=15, strategy="quantile")
    assert out["debiased_ece_uniform"] == pytest.approx(kumar(uniform), rel=1e-9)
    assert out["debiased_ece_quantile"] == pytest.approx(kumar(quantile), rel=1e-5)
    assert debiased_ece(labels, p) == pytest.approx(kumar(quantile), rel=1e-12)
    assert summarize(labels, p).metrics["debiased_ece"] == debiased_ece(labels, p)
    assert np.array_equal(quantile.edges, quantile_edges(conf, 15))


def test_binary_brier_is_one_number_in_both_layouts():
    rng = np.random.default_rng(4)
    q = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < q).astype(int)
    two = np.stack([1 - q, q], axis=1)
    classic = np.mean((q - y) ** 2)
    assert brier_score(y, q) == pytest.approx(classic, rel=1e-12)
    assert brier_score(y, two) == pytest.approx(classic, rel=1e-12)
    assert brier_score(y, two, scale_by_half=False) == pytest.approx(2 * classic, rel=1e-12)
    assert brier_score(y, q, scale_by_half=False) == pytest.approx(2 * classic, rel=1e-12)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert brier_score(y, two) == pytest.approx(sklearn.brier_score_loss(y, two), rel=1e-12)
    for layout in (q, two):
        acc = CalibrationAccumulator(view="positive").update(y, layout)
        assert acc.compute()["brier"] == pytest.approx(classic, rel=1e-12)
        assert summarize(y, layout, view="positive").metrics["brier"] == pytest.approx(classic)
    with pytest.raises(ValueError, match="scale_by_half"):
        brier_score(y, q, scale_by_half="yes")


def test_multiclass_brier_is_the_sum_form():
    logits, labels = load_example()
    p = softmax(logits).astype(np.float64)
    onehot = np.eye(p.shape[1])[labels]
    assert brier_score(labels, p) == pytest.approx(((p - onehot) ** 2).sum(1).mean(), rel=1e-12)
    assert brier_score(labels, p, scale_by_half=True) == pytest.approx(
        ((p - onehot) ** 2).sum(1).mean() / 2, rel=1e-12)


def test_report_labels_name_the_norm_of_every_calibration_error():
    for key, label in METRIC_LABELS.items():
        if "ece" in key or "mce" in key:
            assert any(norm in label for norm in ("(L1", "(L2", "(max")), key
    assert "L2" in METRIC_LABELS["debiased_ece"] and "L1" in METRIC_LABELS["ece_uniform"]
    logits, labels = load_example()
    text = format_table(summarize(labels, softmax(logits)))
    assert "debiased ECE (L2), 15 equal-mass bins" in text and "ECE (L1), 15 equal-width" in text


def test_report_json_keys_are_the_function_values():
    logits, labels = load_example()
    p = softmax(logits)
    d = json.loads(json.dumps(summarize(labels, p, n_bins=10).to_dict()))
    m = d["metrics"]
    assert m["ece_uniform"] == pytest.approx(ece(labels, p, n_bins=10))
    assert m["ece_quantile"] == pytest.approx(ece(labels, p, n_bins=10, strategy="quantile"))
    assert m["debiased_ece"] == pytest.approx(debiased_ece(labels, p, n_bins=10))
    assert m["brier"] == pytest.approx(brier_score(labels, p))
    assert calkit.metrics.debiased_ece is debiased_ece
