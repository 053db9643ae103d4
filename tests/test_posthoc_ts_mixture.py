"""The top-label maps' mixture with temperature scaling (issue 18): ``ts_weight``.

Every number is checked against an independent computation: the out-of-fold
log-loss against the maps refitted by hand through the public API on the same
folds, the weight against a brute-force grid, ``ts_weight=1`` against
:class:`TemperatureScaling`, a fixed weight against the two ends mixed by hand,
and on real CIFAR outputs the test NLL against the uncalibrated model's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calkit import nll, softmax
from calkit.posthoc import (
    HistogramBinning,
    IsotonicCalibration,
    SplineCalibration,
    TemperatureScaling,
)
from calkit.posthoc._mixture import (
    N_FOLDS,
    cross_val_weight,
    nll_mixture_weight,
    score_folds,
)
from calkit.posthoc.scaling_binning import ScalingBinning
from tests.conftest import shared_path

MAPS = [IsotonicCalibration, HistogramBinning, SplineCalibration, ScalingBinning]
NETCAL = ("densenet-bc-100-cifar-100", "wideresnet-16-4-cifar-100", "lenet-5-cifar-100",
          "wideresnet-16-4-cifar-10", "lenet-5-cifar-10")


def _logits(n=1500, k=4, seed=0, scale=3.0, noise=0.6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = scale * (np.eye(k)[y] + rng.normal(0, noise, (n, k)))
    return z, y


def _temperature_attr(cal) -> str:
    return "ts_temperature_" if isinstance(cal, ScalingBinning) else "temperature_"


def _mean_nll(py, w=None):
    w = np.ones(len(py)) if w is None else w
    return float(w @ -np.log(py) / w.sum())


# ----------------------------------------------------------------------------- helpers
def test_nll_mixture_weight_matches_a_grid():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5) * 0.3, 400)
    q = rng.dirichlet(np.ones(5) * 3.0, 400)
    y = rng.integers(0, 5, 400)
    w = rng.uniform(0.5, 2.0, 400)
    grid = np.linspace(0, 1, 20001)
    rows = np.arange(400)
    loss = -np.log((1 - grid[:, None]) * p[rows, y] + grid[:, None] * q[rows, y]) @ w
    a = nll_mixture_weight(p, q, y, w)
    assert abs(a - grid[int(np.argmin(loss))]) < 1e-3
    # the ends: a reference better on every row wins outright, a worse one is never used
    assert nll_mixture_weight(p, np.eye(5)[y], y) == 1.0
    assert nll_mixture_weight(np.eye(5)[y], q, y) == 0.0


def test_score_folds_deal_distinct_pairs_round_in_score_order():
    scores = np.array([0.9, 0.2, 0.5, 0.2, 0.7, 0.5, 0.3])
    labels = np.array([1, 0, 0, 0, 1, 1, 0])
    folds = score_folds(scores, labels, n_folds=3)
    # distinct (score, label) sorted: (.2,0) (.3,0) (.5,0) (.5,1) (.7,1) (.9,1) -> 0 1 2 0 1 2
    assert folds.tolist() == [2, 0, 2, 0, 1, 0, 1]
    # identical samples share a fold; weight 0 counts nowhere (fold -1, never held out)
    w = np.array([1, 2, 0, 1, 3, 1, 1])
    assert score_folds(scores, labels, w, n_folds=3).tolist() == [1, 0, -1, 0, 0, 2, 1]
    # fewer distinct pairs than folds: one fold per pair
    assert score_folds(np.array([0.4, 0.4, 0.8]), np.array([1, 1, 0])).tolist() == [0, 0, 1]


@given(st.integers(0, 10_000), st.integers(2, 6))
@settings(max_examples=25, deadline=None)
def test_score_folds_weights_equal_repeated_rows(seed, n_folds):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    s = rng.choice(rng.uniform(size=8), n)
    y = rng.integers(0, 2, n)
    w = rng.integers(0, 4, n)
    weighted = score_folds(s, y, w, n_folds)
    repeated = score_folds(np.repeat(s, w), np.repeat(y, w), n_folds=n_folds)
    np.testing.assert_array_equal(np.repeat(weighted, w), repeated)


def test_cross_val_weight_is_the_out_of_fold_loop():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 60)
    ref = rng.dirichlet(np.ones(3), 60)
    folds = np.arange(60) % 4
    seen = []

    def fit_predict(train, test):
        seen.append((np.flatnonzero(train), np.flatnonzero(test)))
        # a "map" that predicts the training rows' class frequencies
        freq = np.bincount(y[train], minlength=3) / train.sum()
        return np.tile(freq, (int(test.sum()), 1))

    a, out = cross_val_weight(fit_predict, ref, y, folds)
    assert len(seen) == 4
    for f, (train, test) in enumerate(seen):
        assert set(test) == set(np.flatnonzero(folds == f))
        assert set(train) == set(range(60)) - set(test)
    oof = np.empty((60, 3))
    for f in range(4):
        oof[folds == f] = np.bincount(y[folds != f], minlength=3) / np.sum(folds != f)
    rows = np.arange(60)
    assert out["map"] == pytest.approx(_mean_nll(oof[rows, y]), rel=1e-12)
    assert out["reference"] == pytest.approx(_mean_nll(ref[rows, y]), rel=1e-12)
    mix = (1 - a) * oof[rows, y] + a * ref[rows, y]
    assert out["mixture"] == pytest.approx(_mean_nll(mix), rel=1e-12)
    assert out["mixture"] <= min(out["map"], out["reference"]) + 1e-12
    assert cross_val_weight(fit_predict, ref, y, np.zeros(60, dtype=int)) == (0.0, {})
    # rows of fold -1 are always trained on, never held out
    seen.clear()
    folds[:10] = -1
    cross_val_weight(fit_predict, ref, y, folds)
    assert len(seen) == 4 and all(set(range(10)) <= set(train) for train, _ in seen)


# ----------------------------------------------------------------------------- calibrators
@pytest.mark.parametrize("cls", MAPS)
def test_out_of_fold_nll_equals_maps_refitted_by_hand(cls):
    z, y = _logits(seed=3)
    cal = cls().fit(z, y)
    p = softmax(z)
    folds = score_folds(p.max(1), y)
    assert np.unique(folds).size == N_FOLDS
    oof = np.empty_like(p)
    for f in range(N_FOLDS):
        test = folds == f
        oof[test] = cls(ts_weight=0).fit(z[~test], y[~test]).predict_proba(z[test])
    t = getattr(cal, _temperature_attr(cal))
    assert t == pytest.approx(TemperatureScaling().fit(z, y).temperature_, rel=1e-9)
    ref = cls(ts_weight=1).fit(z, y).predict_proba(z)
    rows = np.arange(len(y))
    assert cal.cv_nll_["map"] == pytest.approx(_mean_nll(oof[rows, y]), rel=1e-10)
    assert cal.cv_nll_["reference"] == pytest.approx(_mean_nll(ref[rows, y]), rel=1e-10)
    grid = np.linspace(0, 1, 2001)
    loss = [_mean_nll((1 - a) * oof[rows, y] + a * ref[rows, y]) for a in grid]
    assert abs(cal.ts_weight_ - grid[int(np.argmin(loss))]) < 2e-3
    assert cal.cv_nll_["mixture"] <= min(loss) + 1e-9


@pytest.mark.parametrize("cls", MAPS)
def test_fixed_weights_are_the_two_ends_mixed(cls):
    z, y = _logits(seed=4, k=5)
    z_new, _ = _logits(seed=5, k=5, n=300)
    pure = cls(ts_weight=0).fit(z, y)
    ts = TemperatureScaling().fit(z, y)
    one = cls(ts_weight=1).fit(z, y)
    assert pure.ts_weight_ == 0.0 and pure.cv_nll_ == {}
    # ts_weight=1: temperature scaling itself (floored at 1e-12)
    np.testing.assert_allclose(one.predict_proba(z_new), ts.predict_proba(z_new), atol=1e-9)
    mixed = cls(ts_weight=0.3).fit(z, y)
    np.testing.assert_allclose(mixed.predict_proba(z_new),
                               0.7 * pure.predict_proba(z_new) + 0.3 * one.predict_proba(z_new),
                               atol=1e-12)


def _check_default_never_worse(cls, seed, k, scale, noise):
    z, y = _logits(n=400, k=k, seed=seed, scale=scale, noise=noise)
    cal = cls().fit(z, y)
    uncal = float(nll(y, softmax(z)))
    assert cal.cv_nll_["mixture"] <= cal.cv_nll_["reference"] + 1e-12
    assert cal.cv_nll_["reference"] <= uncal + 1e-6
    assert 0.0 <= cal.ts_weight_ <= 1.0
    q = cal.predict_proba(z)
    assert np.isfinite(q).all() and q.min() >= 1e-12 * (1 - 1e-9)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(np.argmax(q, axis=1), np.argmax(z, axis=1))


@pytest.mark.parametrize("cls", MAPS[:3])
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), scale=st.floats(0.5, 8.0),
       noise=st.floats(0.2, 1.5))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_default_is_never_worse_than_the_input_by_construction(cls, seed, k, scale, noise):
    """Out of fold, the chosen mixture's NLL is at most temperature scaling's, which is
    at most the input's on the fitting data (T = 1 is a candidate); the class is kept
    and every probability is at least the floor."""
    _check_default_never_worse(cls, seed, k, scale, noise)


@pytest.mark.parametrize("case", [(0, 2, 0.5, 1.5), (1, 4, 3.0, 0.6), (2, 6, 8.0, 0.2)])
def test_scaling_binning_default_is_never_worse_than_the_input(case):
    """The same property for ScalingBinning (slower to fit: fixed cases)."""
    _check_default_never_worse(ScalingBinning, *case)


def test_weighted_default_fit_equals_repeated_rows():
    z, y = _logits(n=300, seed=6)
    w = np.random.default_rng(6).integers(0, 4, 300)
    for cls in (IsotonicCalibration, HistogramBinning):
        weighted = cls().fit(z, y, sample_weight=w)
        repeated = cls().fit(np.repeat(z, w, axis=0), np.repeat(y, w))
        assert weighted.ts_weight_ == pytest.approx(repeated.ts_weight_, abs=1e-6)
        np.testing.assert_allclose(weighted.predict_proba(z), repeated.predict_proba(z),
                                   atol=1e-6)


def test_ts_weight_errors_name_the_argument():
    z, y = _logits(n=200)
    for bad in (-0.1, 1.5, "yes", True, None):
        with pytest.raises(ValueError, match="ts_weight"):
            HistogramBinning(ts_weight=bad).fit(z, y)
        with pytest.raises(ValueError, match="ts_weight"):
            ScalingBinning(ts_weight=bad).fit(z, y)
    s = np.random.default_rng(0).uniform(size=200)
    with pytest.raises(ValueError, match="ts_weight"):
        SplineCalibration(ts_weight=0.5).fit(s, (s > 0.5).astype(int))
    assert SplineCalibration().fit(s, (s > 0.5).astype(int)).ts_weight_ == 0.0
    # 16 samples, 15 bins: the map fits, but not on 4/5 of them
    with pytest.raises(ValueError, match="ts_weight='auto'.*5-fold"):
        HistogramBinning().fit(z[:16], y[:16])
    assert HistogramBinning(ts_weight=0).fit(z[:16], y[:16]).ts_weight_ == 0.0


@pytest.mark.parametrize("cls", [IsotonicCalibration, SplineCalibration])
def test_one_vs_rest_mixes_too(cls):
    z, y = _logits(seed=7)
    cal = cls(multiclass="one_vs_rest").fit(z, y)
    pure = cls(multiclass="one_vs_rest", ts_weight=0).fit(z, y)
    one = cls(multiclass="one_vs_rest", ts_weight=1).fit(z, y)
    a = cal.ts_weight_
    np.testing.assert_allclose(cal.predict_proba(z), (1 - a) * pure.predict_proba(z)
                               + a * one.predict_proba(z), atol=1e-12)
    assert cal.cv_nll_["mixture"] <= cal.cv_nll_["reference"] + 1e-12


def test_saved_and_loaded_mixture_predicts_the_same(tmp_path):
    from calkit.posthoc import load_calibrator

    z, y = _logits(seed=8)
    for cls in MAPS:
        cal = cls().fit(z, y)
        cal.save(tmp_path / "c.json")
        back = load_calibrator(tmp_path / "c.json")
        assert back.ts_weight_ == cal.ts_weight_
        np.testing.assert_array_equal(back.predict_proba(z), cal.predict_proba(z))


# ----------------------------------------------------------------------------- real data
def _netcal_folds(model):
    with np.load(shared_path("cifar_softmax_netcal", f"{model}.npz"), allow_pickle=False) as d:
        p, y = d["predictions"].astype(np.float64), d["ground_truth"].astype(np.int64)
    z = np.log(np.clip(p, 1e-12, None))  # as benchmarks/posthoc_table.py and the CLI
    order = np.random.default_rng(0).permutation(len(y))
    a, b = order[: len(y) // 2], order[len(y) // 2:]
    return [(z[a], y[a], z[b], y[b]), (z[b], y[b], z[a], y[a])]


def _check_real(model, classes):
    for zv, yv, zt, yt in _netcal_folds(model):
        uncal = float(nll(yt, softmax(zt)))
        for cls in classes:
            q = cls().fit(zv, yv).predict_proba(zt)
            got = float(nll(yt, q))
            assert np.isfinite(got) and q.min() > 0
            assert got <= uncal + 1e-4, (model, cls.__name__, got, uncal)
            np.testing.assert_array_equal(q.argmax(1), zt.argmax(1))


def test_default_never_worse_than_uncalibrated_on_lenet5_cifar100():
    """The already calibrated LeNet-5 CIFAR-100, where the maps alone lost 0.0006-0.004
    (ScalingBinning, slower, in the slow run below)."""
    _check_real("lenet-5-cifar-100", MAPS[:3])


@pytest.mark.slow
@pytest.mark.parametrize("model", NETCAL)
def test_default_never_worse_than_uncalibrated_on_netcal_models(model):
    _check_real(model, MAPS)


def test_loaded_mixture_without_its_temperature_is_refused(tmp_path):
    import json

    from calkit.posthoc import load_calibrator

    z, y = _logits(seed=9)
    for cls in (HistogramBinning, ScalingBinning):
        cal = cls(ts_weight=0.5).fit(z, y)
        cal.save(tmp_path / "c.json")
        doc = json.loads((tmp_path / "c.json").read_text())
        doc["fitted"].pop(_temperature_attr(cal))
        (tmp_path / "c.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="ts_weight_ > 0 needs"):
            load_calibrator(tmp_path / "c.json")
