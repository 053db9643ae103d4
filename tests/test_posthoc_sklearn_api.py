"""The scikit-learn layer of the calibrators: weights, labels, pandas, 1-D binary scores, score.

Every weighted result is checked against the same computation on the samples repeated
by their (integer) weights, which is what a frequency weight means.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from calkit import brier_score, calibration_error, ece, nll, softmax
from calkit.metrics import accuracy, debiased_ece
from calkit.posthoc import (
    BetaCalibration,
    ConsistencyCalibration,
    DirichletCalibration,
    EnsembleTemperatureScaling,
    FeatureClipping,
    HistogramBinning,
    IsotonicCalibration,
    MatrixScaling,
    PlattScaling,
    SplineCalibration,
    TemperatureScaling,
    VectorScaling,
    VennAbersCalibration,
    load_calibrator,
    make_calibration_scorer,
)
from calkit.posthoc.consistency import perturbed_probabilities


def _logits(n=240, k=4, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    p = softmax(z / 2)
    y = (p.cumsum(1) < rng.random((n, 1))).sum(1)
    return z, np.minimum(y, k - 1)


def _weights(n, seed=1, low=0):
    return np.random.default_rng(seed).integers(low, 4, n)


# ------------------------------------------------------------------ weights = repeated rows
MULTICLASS_WEIGHTED = [
    TemperatureScaling(), TemperatureScaling(solver="lbfgs"),
    TemperatureScaling(solver="grid"), TemperatureScaling(solver="grid", selection="ece_em"),
    EnsembleTemperatureScaling(), EnsembleTemperatureScaling(loss="nll"),
    VectorScaling(), MatrixScaling(), DirichletCalibration(reg_lambda=1e-2),
    SplineCalibration(), SplineCalibration(multiclass="one_vs_rest"),
    HistogramBinning(n_bins=10), HistogramBinning(n_bins=8, strategy="uniform"),
    HistogramBinning(n_bins=6, multiclass="one_vs_rest", closed="left"),
    IsotonicCalibration(), IsotonicCalibration(multiclass="one_vs_rest"),
    VennAbersCalibration(), VennAbersCalibration(multiclass="one_vs_one"),
]


@pytest.mark.parametrize("est", MULTICLASS_WEIGHTED, ids=repr)
def test_weighted_fit_equals_repeated_rows(est):
    z, y = _logits()
    w = _weights(len(y))  # zeros included: a zero weight removes the row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = clone(est).fit(z, y, sample_weight=w)
        repeated = clone(est).fit(np.repeat(z, w, axis=0), np.repeat(y, w))
    test, _ = _logits(n=50, seed=5)
    np.testing.assert_allclose(weighted.predict_proba(test), repeated.predict_proba(test),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("est", [PlattScaling(), PlattScaling(smooth_targets=False),
                                 BetaCalibration(), IsotonicCalibration(),
                                 HistogramBinning(n_bins=5), SplineCalibration(),
                                 TemperatureScaling(), VectorScaling()], ids=repr)
def test_weighted_binary_fit_equals_repeated_rows(est):
    rng = np.random.default_rng(2)
    p = rng.uniform(0.02, 0.98, 300)
    y = (rng.random(300) < p ** 2).astype(int)
    w = _weights(300, seed=3)
    weighted = clone(est).fit(p, y, sample_weight=w)
    repeated = clone(est).fit(np.repeat(p, w), np.repeat(y, w))
    grid = np.linspace(0.01, 0.99, 37)
    np.testing.assert_allclose(weighted.predict_proba(grid), repeated.predict_proba(grid),
                               rtol=1e-6, atol=1e-8)


def test_platt_weights_match_scikit_learn():
    from sklearn.calibration import _SigmoidCalibration

    rng = np.random.default_rng(4)
    s = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-2 * s))).astype(int)
    w = rng.uniform(0.1, 3.0, 400)  # real-valued weights, not only counts
    ours = PlattScaling().fit(s, y, sample_weight=w)
    ref = _SigmoidCalibration().fit(s, y, sample_weight=w)
    grid = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(ours.predict_proba(grid), ref.predict(grid), atol=2e-6)


def test_feature_clipping_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    h = np.abs(rng.normal(0, 1, (300, 4))) + 2.0 * np.eye(3, 4)[y]
    h[:100] *= 5.0
    coef = 4.0 * np.eye(3, 4)
    w = _weights(300, seed=7)
    kw = dict(coef=coef, intercept=np.zeros(3))
    weighted = FeatureClipping(thresholds=np.linspace(0.5, 15, 30)).fit(h, y, w, **kw)
    repeated = FeatureClipping(thresholds=np.linspace(0.5, 15, 30)).fit(
        np.repeat(h, w, axis=0), np.repeat(y, w), **kw)
    assert weighted.threshold_ == repeated.threshold_
    np.testing.assert_allclose(weighted.scores_, repeated.scores_, rtol=1e-12)


def test_consistency_weights_pick_the_weighted_criterion():
    # vote shares are drawn per row, so repetition is not the reference: the weighted
    # NLL of each candidate scale, computed directly, is
    z, y = _logits(n=120, k=3)
    w = _weights(120, seed=2, low=1)
    scales = [0.3, 1.0, 3.0, 6.0]
    cc = ConsistencyCalibration(noise="gaussian", noise_scales=scales, n_perturbations=50,
                                criterion="nll").fit(z, y, sample_weight=w)
    expected = [nll(y, perturbed_probabilities(z, s, "gaussian", 50), sample_weight=w)
                for s in scales]
    np.testing.assert_allclose(cc.scores_["gaussian"][1], expected, rtol=1e-12)
    assert cc.noise_scale_ == scales[int(np.argmin(expected))]


def test_sample_weight_validation():
    z, y = _logits(n=40)
    for bad, match in [(np.ones(39), "shape"), (-np.ones(40), "non-negative"),
                       (np.zeros(40), "sums to zero"), (np.full(40, np.nan), "NaN"),
                       (np.array(["a"] * 40), "real numbers")]:
        with pytest.raises(ValueError, match=match):
            TemperatureScaling().fit(z, y, sample_weight=bad)
        with pytest.raises(ValueError, match=match):
            ece(y, softmax(z), sample_weight=bad)
    with pytest.raises(ValueError, match="integer sample weights"):
        SplineCalibration().fit(z, y, sample_weight=np.full(40, 0.5))


# ------------------------------------------------------------------ weighted metrics
@pytest.mark.parametrize("seed", range(4))
def test_weighted_metrics_equal_repeated_rows(seed):
    rng = np.random.default_rng(seed)
    n, k = 150, 3
    p = softmax(rng.normal(size=(n, k)) * 2)
    p[:20] = p[0]  # ties across bins' edges
    y = rng.integers(0, k, n)
    w = rng.integers(0, 4, n)
    rp, ry = np.repeat(p, w, axis=0), np.repeat(y, w)
    for kwargs in [dict(), dict(strategy="quantile"), dict(norm="l2"), dict(norm="max"),
                   dict(view="classwise", n_bins=7), dict(closed="left", strategy="quantile"),
                   dict(norm="l2", debias=True, strategy="quantile")]:
        got = calibration_error(y, p, sample_weight=w, **kwargs)
        ref = calibration_error(ry, rp, **kwargs)
        assert float(got) == pytest.approx(float(ref), rel=1e-12, abs=1e-15), kwargs
        np.testing.assert_allclose(got.table.count, ref.table.count)
        np.testing.assert_allclose(got.table.edges, ref.table.edges)
    assert ece(y, p, sample_weight=w) == pytest.approx(ece(ry, rp), rel=1e-12)
    assert debiased_ece(y, p, sample_weight=w) == pytest.approx(debiased_ece(ry, rp),
                                                                rel=1e-12, abs=1e-15)
    assert brier_score(y, p, sample_weight=w) == pytest.approx(brier_score(ry, rp), rel=1e-12)
    assert nll(y, p, sample_weight=w) == pytest.approx(nll(ry, rp), rel=1e-12)
    assert accuracy(y, p, sample_weight=w) == pytest.approx(accuracy(ry, rp), rel=1e-12)
    # binary 1-D input and the positive view
    q, t = p[:, 0], (y == 0).astype(int)
    for view in ("top_label", "positive"):
        assert ece(t, q, view=view, sample_weight=w) == pytest.approx(
            ece(np.repeat(t, w), np.repeat(q, w), view=view), rel=1e-12)
    assert brier_score(t, q, sample_weight=w) == pytest.approx(
        brier_score(np.repeat(t, w), np.repeat(q, w)), rel=1e-12)


def test_weighted_nll_matches_scikit_learn_log_loss():
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(200, 3)))
    y = rng.integers(0, 3, 200)
    w = rng.uniform(0, 2, 200)
    assert nll(y, p, sample_weight=w) == pytest.approx(log_loss(y, p, sample_weight=w),
                                                       rel=1e-12)


# ------------------------------------------------------------------ labels and containers
def test_string_labels_go_through_classes():
    z, y = _logits(k=3)
    names = np.array(["cat", "dog", "eel"], dtype=object)
    for est in [TemperatureScaling(), VectorScaling(), HistogramBinning(n_bins=5),
                IsotonicCalibration(), DirichletCalibration(reg_lambda=1e-2)]:
        by_name = clone(est).fit(z, names[y])
        by_index = clone(est).fit(z, y)
        assert by_name.classes_.tolist() == ["cat", "dog", "eel"]
        np.testing.assert_array_equal(by_name.predict(z), names[by_index.predict(z)])
        np.testing.assert_allclose(by_name.predict_proba(z), by_index.predict_proba(z))
        assert by_name.score(z, names[y]) == pytest.approx(by_index.score(z, y))
    with pytest.raises(ValueError, match="not among the classes"):
        by_name.score(z, np.array(["cow"] * len(y)))
    # 1-based integer labels (all K present) map to the columns in order
    ts = TemperatureScaling().fit(z, y + 1)
    assert ts.classes_.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(ts.predict(z), z.argmax(1) + 1)


def test_integer_labels_are_column_indices_even_with_a_class_missing():
    z, y = _logits(k=4)
    keep = y != 2
    ts = TemperatureScaling().fit(z[keep], y[keep])
    assert ts.classes_.tolist() == [0, 1, 2, 3]
    assert ts.predict_proba(z).shape == (len(y), 4)


def test_score_is_negative_log_loss():
    z, y = _logits()
    for est in [TemperatureScaling(), IsotonicCalibration(), EnsembleTemperatureScaling()]:
        fitted = clone(est).fit(z, y)
        p = fitted.predict_proba(z)
        assert fitted.score(z, y) == pytest.approx(-log_loss(y, p, labels=range(4)), rel=1e-12)
        w = _weights(len(y), low=1)
        assert fitted.score(z, y, sample_weight=w) == pytest.approx(
            -log_loss(y, p, sample_weight=w, labels=range(4)), rel=1e-12)


def test_pandas_input_and_feature_names():
    pd = pytest.importorskip("pandas")
    z, y = _logits(k=3)
    frame = pd.DataFrame(z, columns=["a", "b", "c"])
    ts = TemperatureScaling().fit(frame, pd.Series(y))
    assert ts.feature_names_in_.tolist() == ["a", "b", "c"] and ts.n_features_in_ == 3
    assert ts.temperature_ == TemperatureScaling().fit(z, y).temperature_
    with pytest.warns(UserWarning, match="fitted with feature names"):
        from_array = ts.predict_proba(z)
    np.testing.assert_allclose(ts.predict_proba(frame), from_array)
    with pytest.raises(ValueError, match="feature names should match"):
        ts.predict_proba(frame.rename(columns={"a": "x"}))
    iso = IsotonicCalibration().fit(pd.Series(softmax(z)[:, 1]), pd.Series(y == 1))
    assert iso.predict_proba(pd.Series([0.2, 0.8])).shape == (2,)


def test_save_load_keeps_classes_and_input_form(tmp_path):
    z, y = _logits(k=3)
    names = np.array(["a", "b", "c"])
    ts = TemperatureScaling().fit(z, names[y])
    ts.save(tmp_path / "ts.json")
    back = load_calibrator(tmp_path / "ts.json")
    np.testing.assert_array_equal(back.predict(z), ts.predict(z))
    p = softmax(z)[:, 0]
    iso = IsotonicCalibration().fit(p, y == 0)
    iso.save(tmp_path / "iso.json")
    back = load_calibrator(tmp_path / "iso.json")
    assert back.n_features_in_ == 1
    np.testing.assert_allclose(back.predict_proba(p), iso.predict_proba(p))
    import json

    doc = json.loads((tmp_path / "ts.json").read_text())
    for bad in (["a", "b"], ["b", "a", "c"], [1.5, 2, 3]):
        doc["sklearn"]["classes"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="classes"):
            load_calibrator(tmp_path / "bad.json")


# ------------------------------------------------------------------ 1-D binary scores
LOGIT_CALIBRATORS = [TemperatureScaling(), VectorScaling(), MatrixScaling(),
                     EnsembleTemperatureScaling(), DirichletCalibration(reg_lambda=1e-3),
                     ConsistencyCalibration(noise="gaussian", noise_scales=[0.5, 1.0],
                                            n_perturbations=50)]


@pytest.mark.parametrize("est", LOGIT_CALIBRATORS, ids=repr)
def test_one_d_probabilities_are_binary_logits(est):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, 400)
    y = (rng.random(400) < p ** 3).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = clone(est).fit(p, y)
        two = clone(est).fit(np.column_stack([np.log1p(-p), np.log(p)]), y)
    out = one.predict_proba(p[:20])
    assert out.shape == (20,) and one.n_features_in_ == 1
    np.testing.assert_allclose(out, two.predict_proba(np.column_stack(
        [np.log1p(-p[:20]), np.log(p[:20])]))[:, 1], atol=1e-10)
    np.testing.assert_array_equal(one.predict(p[:20]), (out > 0.5).astype(int))
    with pytest.raises(ValueError, match="1-D"):
        one.predict_proba(np.column_stack([p, p]))


def test_one_d_temperature_scaling_is_sigmoid_of_logit_over_t():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 500)
    y = (rng.random(500) < p ** 2).astype(int)
    ts = TemperatureScaling().fit(p, y)
    d = np.log(p) - np.log1p(-p)
    np.testing.assert_allclose(ts.predict_proba(p), 1 / (1 + np.exp(-d / ts.temperature_)),
                               atol=1e-12)


def test_one_d_confidences_with_correctness():
    # LLM-style: a stated confidence and whether the answer was right; confidences below
    # 0.5 are confidences too (not a prediction of the other class)
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.1, 1.0, 2000)
    right = rng.random(2000) < conf ** 2
    iso = IsotonicCalibration().fit(conf, right)
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(conf, right)
    grid = np.linspace(0, 1, 21)
    floor = iso.floor   # the documented least probability (1e-12 by default)
    np.testing.assert_allclose(iso.predict_proba(grid),
                               np.clip(ref.predict(grid), floor, 1 - floor))
    hb = HistogramBinning(n_bins=10, floor=0.0).fit(conf, right)
    table_acc = [right[(conf > a) & (conf <= b)].mean()
                 for a, b in zip(hb.nodes_x_[:-1], hb.nodes_x_[1:], strict=True)]
    np.testing.assert_allclose(hb.predict_proba((hb.nodes_x_[:-1] + hb.nodes_x_[1:]) / 2),
                               table_acc)
    sp = SplineCalibration().fit(conf, right)
    assert float(ece(right, sp.predict_proba(conf), view="positive")) < float(
        ece(right, conf, view="positive"))
    # string answers ("no"/"yes") as the two classes: classes_[1] is the positive one
    yn = np.where(right, "yes", "no")
    iso_s = IsotonicCalibration().fit(conf, yn)
    assert iso_s.classes_.tolist() == ["no", "yes"]
    np.testing.assert_allclose(iso_s.predict_proba(grid), iso.predict_proba(grid))
    assert set(iso_s.predict(grid)) <= {"no", "yes"}


def test_one_d_isotonic_takes_real_valued_scores():
    rng = np.random.default_rng(3)
    d = rng.normal(size=500) * 4
    y = (rng.random(500) < 1 / (1 + np.exp(-d))).astype(int)
    iso = IsotonicCalibration(floor=0.0).fit(d, y)
    ref = IsotonicRegression(out_of_bounds="clip").fit(d, y)
    np.testing.assert_allclose(iso.predict_proba(np.linspace(-9, 9, 41)),
                               ref.predict(np.linspace(-9, 9, 41)))


def test_one_d_bad_input():
    with pytest.raises(ValueError, match="1-D X is read as probabilities"):
        TemperatureScaling().fit(np.array([-1.0, 2.0, 0.5]), [0, 1, 1])
    with pytest.raises(ValueError, match="1-D .* 2 classes"):
        HistogramBinning(n_bins=2).fit(np.array([0.1, 0.5, 0.9, 0.2]), [0, 1, 2, 0])


# ------------------------------------------------------------------ model selection
def test_cross_val_score_neg_log_loss_is_finite_and_exact():
    z, y = _logits(n=300)
    cv = KFold(5)
    scores = cross_val_score(TemperatureScaling(), z, y, scoring="neg_log_loss", cv=cv)
    assert np.isfinite(scores).all()
    for score, (train, test) in zip(scores, cv.split(z), strict=True):
        p = TemperatureScaling().fit(z[train], y[train]).predict_proba(z[test])
        assert score == pytest.approx(-log_loss(y[test], p, labels=range(4)), rel=1e-12)


def test_cross_val_score_with_a_class_missing_from_a_fold():
    # class 3 only in the first fold: that fold's calibrator never sees it, yet keeps its
    # column (classes_ are the logit columns), so every fold scores all four classes
    z, y = _logits(n=200, k=4)
    y[y == 3] = 2
    y[:3] = 3
    scorer = make_scorer(log_loss, greater_is_better=False, response_method="predict_proba",
                         labels=[0, 1, 2, 3])  # log_loss needs the labels when a fold lacks one
    scores = cross_val_score(TemperatureScaling(), z, y, scoring=scorer, cv=KFold(4))
    assert np.isfinite(scores).all()
    p = TemperatureScaling().fit(z[50:], y[50:]).predict_proba(z[:50])
    assert p.shape == (50, 4)
    assert scores[0] == pytest.approx(-log_loss(y[:50], p, labels=range(4)), rel=1e-12)


def test_calibration_scorer_and_grid_search_over_a_calibrator():
    z, y = _logits(n=600)
    scorer = make_calibration_scorer("ece", n_bins=10)
    search = GridSearchCV(HistogramBinning(), {"n_bins": [5, 10, 20]}, scoring=scorer,
                          cv=KFold(3)).fit(z, y)
    train, test = next(KFold(3).split(z))
    fold = HistogramBinning(n_bins=search.best_params_["n_bins"]).fit(z[train], y[train])
    assert scorer(fold, z[test], y[test]) == pytest.approx(
        -ece(y[test], fold.predict_proba(z[test]), n_bins=10))
    names = np.array(["a", "b", "c", "d"])
    search = GridSearchCV(TemperatureScaling(solver="grid"),
                          {"selection": ["nll", "ece_ew"]},
                          scoring=make_calibration_scorer("nll"), cv=3).fit(z, names[y])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_weights_and_one_d_scores_with_torch():
    torch = pytest.importorskip("torch")
    z, y = _logits(n=200, k=3)
    w = _weights(200)
    p = softmax(z)
    for kw in (dict(), dict(strategy="quantile")):
        got = ece(torch.tensor(y), torch.tensor(p), sample_weight=torch.tensor(w), **kw)
        assert float(got) == pytest.approx(ece(y, p, sample_weight=w, **kw), rel=1e-12)
    assert float(nll(torch.tensor(y), torch.tensor(p), sample_weight=w)) == pytest.approx(
        nll(y, p, sample_weight=w), rel=1e-12)
    t_torch = TemperatureScaling().fit(torch.tensor(z), torch.tensor(y), sample_weight=w)
    assert t_torch.temperature_ == pytest.approx(
        TemperatureScaling().fit(z, y, sample_weight=w).temperature_, rel=1e-9)
    q = p[:, 1]
    ts = TemperatureScaling().fit(torch.tensor(q), torch.tensor(y == 1))
    out = ts.predict_proba(torch.tensor(q[:5]))
    assert isinstance(out, torch.Tensor) and out.shape == (5,)
    np.testing.assert_allclose(out.numpy(), TemperatureScaling().fit(q, y == 1).predict_proba(
        q[:5]), rtol=1e-9)
