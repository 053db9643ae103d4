"""Binned metrics, sweep ECE and proper scores against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from references import brute_ece, caltrain_sweep, uc_debiased_l2, uc_equal_mass_bins

from calkit import (
    accuracy,
    brier_score,
    calibration_error,
    debiased_ece,
    ece,
    nll,
    softmax,
    sweep_ece,
    uniform_edges,
)
from conftest import shared_path


def _dirichlet_probs(n=3000, k=10, seed=0, sharpen=3.0, dtype=np.float64):
    """Over-confident multiclass probabilities whose reliability curve crosses the diagonal."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * sharpen
    y = np.array([rng.choice(k, p=row) for row in softmax(logits / sharpen * 1.5)])
    p = softmax(logits).astype(dtype)
    p[:30] = np.round(p[:30], 1)  # confidences on edges
    p[:30] /= p[:30].sum(1, keepdims=True)
    return y, p


def _top_label(y, p):
    return p.max(1), (p.argmax(1) == y)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("closed", ["right", "left"])
def test_top_label_ece_matches_brute_force(norm, closed):
    y, p = _dirichlet_probs()
    conf, correct = _top_label(y, p)
    expected = brute_ece(conf, correct, uniform_edges(15), closed, norm)
    assert ece(y, p, norm=norm, closed=closed) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_classwise_ece_matches_brute_force(norm):
    y, p = _dirichlet_probs(n=800, k=4, seed=1)
    per_class = [brute_ece(p[:, k], y == k, uniform_edges(10), "right", norm) for k in range(4)]
    expected = {"l1": np.mean(per_class), "l2": np.sqrt(np.mean(np.square(per_class))),
                "max": np.max(per_class)}[norm]
    got = ece(y, p, n_bins=10, norm=norm, view="classwise")
    assert got == pytest.approx(expected, rel=1e-12)


def test_quantile_ece_matches_brute_force_on_uc_bins():
    y, p = _dirichlet_probs(seed=2)
    p = p + 0.0
    conf, correct = _top_label(y, p)
    result = calibration_error(y, p, strategy="quantile")
    edges = np.concatenate([[0.0], uc_equal_mass_bins(conf, 15)])
    assert float(result) == pytest.approx(brute_ece(conf, correct, edges), rel=1e-12)
    assert result.settings["strategy"] == "quantile"


def test_binary_views():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p ** 1.5).astype(int)
    pos = brute_ece(p, y == 1, uniform_edges(15))
    top = brute_ece(np.maximum(p, 1 - p), (p > 0.5).astype(int) == y, uniform_edges(15))
    assert ece(y, p, view="positive") == pytest.approx(pos, rel=1e-12)
    assert ece(y, p, view="top_label") == pytest.approx(top, rel=1e-12)
    with pytest.raises(ValueError, match="view="):  # 1-D scores: the reading must be said
        ece(y, p)
    two_col = np.stack([1 - p, p], axis=1)
    assert ece(y, two_col, view="positive") == pytest.approx(pos, rel=1e-12)
    assert ece(y, two_col) == pytest.approx(top, rel=1e-12)  # (N, K): top-label by default
    with pytest.raises(ValueError, match="binary"):
        ece([0, 1, 2], np.eye(3), n_bins=2, view="positive")


def test_hand_computed_ece_mce_rmsce():
    # top-label: conf (0.9 T), (0.8 F), (0.7 T), (0.6 T); 4 uniform bins
    # bin (0.75, 1]: conf 0.85 acc 0.5 -> gap 0.35 (2 samples); bin (0.5, 0.75]: 0.65 vs 1.0
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = [0, 1, 1, 1]
    assert ece(y, p, n_bins=4) == pytest.approx(0.35)
    assert ece(y, p, n_bins=4, norm="max") == pytest.approx(0.35)
    assert ece(y, p, n_bins=4, norm="l2") == pytest.approx(0.35)
    y2 = [0, 1, 1, 0]  # now bin (0.5, 0.75] has conf 0.65 acc 0.5
    assert ece(y2, p, n_bins=4) == pytest.approx((2 * 0.35 + 2 * 0.15) / 4)
    assert ece(y2, p, n_bins=4, norm="l2") == pytest.approx(np.sqrt((0.35**2 + 0.15**2) / 2))


def test_result_object_carries_its_settings_and_table():
    y, p = _dirichlet_probs(n=500)
    r = calibration_error(y, p, n_bins=10, strategy="quantile", norm="l2", closed="left")
    assert r.settings == dict(norm="l2", n_bins=10, strategy="quantile", closed="left",
                              view="top_label", debiased=False, n_samples=500)
    assert r.table.n_samples == 500 and "RMSCE" in repr(r)
    assert len(calibration_error(y, p, view="classwise").tables) == 10


def test_debiased_matches_uncertainty_calibration_algorithm():
    y, p = _dirichlet_probs(seed=5)
    conf, correct = _top_label(y, p)
    expected = uc_debiased_l2(conf, correct.astype(float), uc_equal_mass_bins(conf, 15))
    assert debiased_ece(y, p) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    marginal = [uc_debiased_l2(p[:, k], (y == k).astype(float), uc_equal_mass_bins(p[:, k], 15))
                for k in range(p.shape[1])]
    expected_marginal = np.sqrt(np.mean(np.square(marginal)))
    got = debiased_ece(y, p, view="classwise")
    assert got == pytest.approx(expected_marginal, rel=1e-9, abs=1e-12)


def test_debiased_matches_installed_uncertainty_calibration():
    calibration = pytest.importorskip("calibration")
    y, p = _dirichlet_probs(seed=6)
    p = p[30:]  # keep distinct values so uc does not switch to per-value bins
    y = y[30:]
    theirs = calibration.get_calibration_error(p, y, p=2, debias=True, mode="top-label")
    assert debiased_ece(y, p) == pytest.approx(theirs, rel=1e-9)
    theirs_marginal = calibration.get_calibration_error(p, y, p=2, debias=True, mode="marginal")
    assert debiased_ece(y, p, view="classwise") == pytest.approx(theirs_marginal, rel=1e-9)


def test_debiased_is_smaller_than_plugin_and_near_zero_when_calibrated():
    rng = np.random.default_rng(7)
    p = rng.uniform(0.5, 1, 20000)
    y = (rng.uniform(size=20000) < p).astype(int)
    plug = ece(y, p, strategy="quantile", norm="l2", view="positive")
    deb = debiased_ece(y, p, view="positive")
    assert deb < plug
    assert deb < 0.01


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
@pytest.mark.parametrize("p_norm", [1, 2])
def test_sweep_matches_caltrain_algorithm(strategy, p_norm):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(200, 1500))
        scores = rng.uniform(size=n)
        targets = (rng.uniform(size=n) < scores ** 1.3).astype(int)
        expected, b_star = caltrain_sweep(scores, targets, strategy, p_norm)
        r = sweep_ece(targets, scores, strategy=strategy, norm=f"l{p_norm}", view="positive")
        assert float(r) == pytest.approx(expected, rel=1e-12)
        assert r.settings["n_bins"] == b_star


def test_sweep_rank_rule_reproduces_float_floor():
    # n=44, b=22, r=30: (30/44)*22 = 14.999999999999998 -> floor 14, not 15
    from calkit.metrics.sweep import _rank_boundaries

    bounds = _rank_boundaries(44, 22)
    ranks = np.arange(44)
    bins = np.minimum(21, np.floor((ranks / 44) * 22))
    expected = np.concatenate([[0], [np.argmax(bins >= j) for j in range(1, 22)], [44]])
    np.testing.assert_array_equal(bounds, expected)


def test_sweep_ties_are_order_independent():
    rng = np.random.default_rng(8)
    s = np.round(rng.uniform(size=600), 1)
    t = (rng.uniform(size=600) < s).astype(int)
    perm = rng.permutation(600)
    a = sweep_ece(t, s, view="positive")
    b = sweep_ece(t[perm], s[perm], view="positive")
    assert float(a) == float(b) and a.settings["n_bins"] == b.settings["n_bins"]


def test_brier_nll_accuracy_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = _dirichlet_probs(n=1000, seed=9, dtype=np.float32)
    p64 = p.astype(np.float64)
    p64 /= p64.sum(1, keepdims=True)
    assert brier_score(y, p) == pytest.approx(
        metrics.brier_score_loss(y, p64, labels=list(range(10))), rel=1e-6)
    assert nll(y, p64) == pytest.approx(metrics.log_loss(y, p64, labels=list(range(10))),
                                        rel=1e-9)
    assert accuracy(y, p) == pytest.approx(metrics.accuracy_score(y, p.argmax(1)))
    rng = np.random.default_rng(10)
    q = rng.uniform(size=300)
    yb = (rng.uniform(size=300) < q).astype(int)
    assert brier_score(yb, q) == pytest.approx(metrics.brier_score_loss(yb, q), rel=1e-12)
    assert nll(yb, q) == pytest.approx(metrics.log_loss(yb, q), rel=1e-12)


def test_nll_zero_probability_is_finite():
    value = nll([1], np.array([[1.0, 0.0]]))
    assert np.isfinite(value) and value == pytest.approx(-np.log(np.finfo(np.float64).eps))


def test_one_hot_labels_equal_integer_labels():
    y, p = _dirichlet_probs(n=300)
    one_hot = np.eye(10)[y]
    assert ece(one_hot, p) == ece(y, p)
    assert brier_score(one_hot, p) == brier_score(y, p)


def test_real_cifar100_probabilities_against_brute_force(netcal_cifar100):
    p, y = netcal_cifar100
    conf, correct = p.max(1), p.argmax(1) == y
    for closed in ("right", "left"):
        expected = brute_ece(conf.astype(np.float64), correct, uniform_edges(15), closed)
        assert ece(y, p, closed=closed) == pytest.approx(expected, rel=1e-9)
    # the DenseNet is over-confident: ECE well above zero, accuracy ~ 0.76
    assert 0.05 < ece(y, p) < 0.2
    assert accuracy(y, p) == pytest.approx(correct.mean())


def test_real_cifar10_logits(cifar10_ce_test):
    logits, y = cifar10_ce_test
    p = softmax(logits)
    assert p.dtype == np.float32
    conf, correct = p.max(1).astype(np.float64), p.argmax(1) == y
    expected = brute_ece(conf, correct, uniform_edges(15))
    assert ece(y, p) == pytest.approx(expected, rel=1e-9)
    assert float(sweep_ece(y, p)) > 0


def test_real_20newsgroups_is_under_confident():
    p = np.load(shared_path("cv_probs_label_errors", "20news_test_set_pyx.npy"))
    y = np.load(shared_path("cv_probs_label_errors", "20news_test_set_original_labels.npy"))
    table = calibration_error(y, p, n_bins=10).table
    under = table.gap[table.nonempty] < 0  # accuracy above confidence
    assert under.mean() > 0.5


BAD_INPUTS = [
    (dict(y_prob=np.array([[0.5, np.nan], [0.5, 0.5]])), "NaN"),
    (dict(y_prob=np.array([[np.inf, 0.0], [0.5, 0.5]])), "NaN or infinite"),
    (dict(y_prob=np.array([[0.7, 0.7], [0.5, 0.5]])), "sum to 1"),
    (dict(y_prob=np.array([[1.2, -0.2], [0.5, 0.5]])), "negative"),
    (dict(y_prob=np.array([0.5, 1.5])), r"\[0, 1\]"),
    (dict(y_prob=np.zeros((2, 2, 2))), "1-D or 2-D"),
    (dict(y_prob=np.zeros((0, 2))), "empty"),
    (dict(y_prob=np.array([[1], [1]], dtype=float)), "at least 2"),
    (dict(y_prob=np.array([[1, 0], [0, 1]])), "floating-point"),
    (dict(y_true=[0, 2]), r"\[0, 1\]"),
    (dict(y_true=[0, -1]), r"\[0, 1\]"),
    (dict(y_true=[0, 1, 1]), "3 samples"),
    (dict(y_true=[0.5, 1.0]), "integer"),
    (dict(y_true=np.array([[1, 1], [0, 1]])), "one-hot"),
    (dict(y_true=np.zeros((2, 3))), "one-hot"),
    (dict(n_bins=3), "more than the number of samples"),
    (dict(norm="l3"), "norm"),
    (dict(view="marginal"), "view"),
]


@pytest.mark.parametrize("bad, message", BAD_INPUTS)
def test_bad_input_raises_clear_error(bad, message):
    kwargs = dict(y_true=[0, 1], y_prob=np.array([[0.8, 0.2], [0.3, 0.7]]), n_bins=2)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        calibration_error(kwargs.pop("y_true"), kwargs.pop("y_prob"), **kwargs)


def test_debias_needs_l2():
    with pytest.raises(ValueError, match="l2"):
        calibration_error([0, 1], np.array([[0.8, 0.2], [0.3, 0.7]]), n_bins=2, debias=True)


def test_scores_validate_too():
    with pytest.raises(ValueError, match="sum to 1"):
        brier_score([0], np.array([[0.2, 0.2]]))
    with pytest.raises(ValueError, match="NaN"):
        nll([0], np.array([[np.nan, 1.0]]))


@st.composite
def prob_matrices(draw):
    n = draw(st.integers(2, 40))
    k = draw(st.integers(2, 5))
    raw = draw(st.lists(st.floats(0.01, 10), min_size=n * k, max_size=n * k))
    p = np.array(raw).reshape(n, k)
    p /= p.sum(1, keepdims=True)
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    return y, p


@settings(max_examples=60, deadline=None)
@given(prob_matrices(), st.integers(1, 10), st.sampled_from(["uniform", "quantile"]),
       st.sampled_from(["l1", "l2", "max"]), st.sampled_from(["top_label", "classwise"]))
def test_properties_range_and_permutation_invariance(data, n_bins, strategy, norm, view):
    y, p = data
    n_bins = min(n_bins, len(y))
    value = ece(y, p, n_bins=n_bins, strategy=strategy, norm=norm, view=view)
    assert 0.0 <= value <= 1.0
    perm = np.random.default_rng(0).permutation(len(y))
    again = ece(y[perm], p[perm], n_bins=n_bins, strategy=strategy, norm=norm, view=view)
    assert again == pytest.approx(value, abs=1e-12)
    assert 0.0 <= float(sweep_ece(y, p)) <= 1.0
    assert 0.0 <= brier_score(y, p) <= 2.0
