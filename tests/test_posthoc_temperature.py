"""Temperature scaling, vector/matrix scaling and ETS against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from calkit import ece
from calkit.posthoc import temperature as temperature_module
from calkit.posthoc.ensemble import EnsembleTemperatureScaling
from calkit.posthoc.temperature import (
    MatrixScaling,
    TemperatureScaling,
    VectorScaling,
    _affine_nll,
    _grid_temperatures,
)


def _overconfident(n, k, seed=0, t_true=2.0, dtype=np.float64):
    """Logits whose labels are drawn from softmax(z / t_true): the best T is near t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 4
    p = softmax(z / t_true, axis=1)
    u = rng.random((n, 1))
    y = np.minimum((p.cumsum(1) < u).sum(1), k - 1)
    return z.astype(dtype), y


def _dense_t(z, y):
    """Reference T: Brent on the float64 NLL over log T (dense 1-D minimisation)."""
    z = np.asarray(z, dtype=np.float64)
    zy = z[np.arange(len(y)), y]

    def nll(u):
        t = np.exp(u)
        return float(np.mean(logsumexp(z / t, axis=1) - zy / t))

    return float(np.exp(minimize_scalar(nll, bracket=(-1.0, 1.0), tol=1e-12).x))


@pytest.mark.parametrize("k", [2, 10, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ts_matches_dense_nll_minimisation(k, dtype):
    n = 3000 if k < 1000 else 600
    z, y = _overconfident(n, k, seed=k, dtype=dtype)
    ref = _dense_t(z, y)
    ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ == pytest.approx(ref, rel=1e-6)
    assert ts.temperature_ != 1.0 and ts.n_iter_ <= 12
    lb = TemperatureScaling(solver="lbfgs").fit(z, y)
    assert lb.temperature_ == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("k", [3, 200])
def test_ts_both_memory_layouts_give_the_same_moments(k, monkeypatch):
    # the objective stores few-class logits as (K, N) and many-class ones as (N, K)
    z, y = _overconfident(5_000, k, seed=1, dtype=np.float32)
    layouts = {}
    for threshold in (1, 10_000):
        monkeypatch.setattr(temperature_module, "_SAMPLES_ALONG_ROWS_BELOW_K", threshold)
        obj = temperature_module._TemperatureObjective(z, y)
        layouts[obj.class_axis] = (obj.mean_true, obj.moments(0.7, 2))
    (mean_a, moments_a), (mean_b, moments_b) = layouts[0], layouts[1]
    assert mean_a == pytest.approx(mean_b, rel=1e-12)
    for a, b in zip(moments_a, moments_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_ts_recovers_the_generating_temperature_and_t1_on_calibrated_data():
    z, y = _overconfident(20000, 5, t_true=2.0)
    assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(2.0, rel=0.05)
    z, y = _overconfident(20000, 5, t_true=1.0, seed=1)
    assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(1.0, rel=0.05)


def test_ts_keeps_argmax_and_scales_by_t():
    z, y = _overconfident(500, 6)
    ts = TemperatureScaling().fit(z, y)
    np.testing.assert_array_equal(ts.predict(z), z.argmax(1))
    np.testing.assert_allclose(ts.predict_proba(z), softmax(z / ts.temperature_, axis=1),
                               rtol=1e-12)
    np.testing.assert_array_equal(ts.predict_proba(z).argmax(1), z.argmax(1))


def test_ts_float32_is_fitted_in_float32_and_not_stuck_at_one():
    z, y = _overconfident(4000, 10, t_true=1.7, dtype=np.float32)
    ts = TemperatureScaling().fit(z, y)
    ref = TemperatureScaling().fit(z.astype(np.float64), y)
    assert ts.temperature_ == pytest.approx(ref.temperature_, rel=1e-5)
    assert abs(ts.temperature_ - 1) > 0.3
    assert ts.predict_proba(z).dtype == np.float32


def test_ts_separable_data_goes_to_the_bound_with_a_warning():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4))
    y = z.argmax(1)  # every prediction right: the NLL falls as T -> 0
    with pytest.warns(ConvergenceWarning, match="bound"):
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ == pytest.approx(0.01)
    assert np.isfinite(ts.predict_proba(z)).all()
    with pytest.warns(ConvergenceWarning):
        wide = TemperatureScaling(t_bounds=(1e-4, 10)).fit(z, y)
    assert wide.temperature_ == pytest.approx(1e-4)


def test_ts_all_wrong_goes_to_the_upper_bound():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 3)) * 5
    y = (z.argmax(1) + 1) % 3
    with pytest.warns(ConvergenceWarning):
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ == pytest.approx(100.0)


def test_ts_single_class_calibration_set_is_accepted():
    z, _ = _overconfident(400, 3)
    z[:, 0] += 2  # class 0 usually (not always) on top: a finite optimum
    y = np.zeros(400, dtype=int)
    ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ == pytest.approx(_dense_t(z, y), rel=1e-6)
    z[:, 0] -= 4  # class 0 rarely on top: the NLL keeps falling as T grows, so the bound
    with pytest.warns(ConvergenceWarning, match="bound"):
        assert TemperatureScaling().fit(z, y).temperature_ == 100.0


def test_grid_is_exact_and_includes_ten():
    grid = _grid_temperatures()
    assert len(grid) == 100 and grid[0] == 0.1 and grid[-1] == 10.0
    assert grid[2] == 0.3 and np.all(grid == np.array([k / 10 for k in range(1, 101)]))


@pytest.mark.parametrize("selection,strategy", [("ece_ew", "uniform"), ("ece_em", "quantile")])
def test_grid_search_matches_brute_force_ece(selection, strategy):
    z, y = _overconfident(2000, 10, t_true=2.3)
    values = [ece(y, softmax(z / (k / 10), axis=1), n_bins=15, strategy=strategy)
              for k in range(1, 101)]
    best = (int(np.argmin(values)) + 1) / 10
    ts = TemperatureScaling(solver="grid", selection=selection).fit(z, y)
    assert ts.temperature_ == best


def test_grid_nll_picks_the_grid_point_next_to_the_optimum():
    z, y = _overconfident(2000, 10, t_true=2.3)
    t = TemperatureScaling(solver="grid", selection="nll").fit(z, y).temperature_
    assert abs(t - _dense_t(z, y)) <= 0.05 + 1e-12


def test_grid_ties_go_to_the_smallest_temperature():
    z = np.zeros((50, 2))  # every T gives the same probabilities, so all ECEs tie
    y = np.arange(50) % 2
    assert TemperatureScaling(solver="grid").fit(z, y).temperature_ == 0.1


# ----------------------------------------------------------------------------- vector / matrix
@pytest.mark.parametrize("diagonal", [True, False])
def test_affine_gradient_is_correct(diagonal):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4))
    onehot = np.eye(4)[rng.integers(0, 4, 50)]
    center = np.ones(4) if diagonal else np.eye(4)
    x = rng.normal(size=center.size + 4)
    err = check_grad(lambda p: _affine_nll(p, z, onehot, 0.1, center.shape, center)[0],
                     lambda p: _affine_nll(p, z, onehot, 0.1, center.shape, center)[1], x)
    assert err < 1e-6


def test_matrix_scaling_without_penalty_equals_multinomial_logistic_regression():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 3)) * 2
    y = np.where(rng.random(2000) < 0.7, z.argmax(1), rng.integers(0, 3, 2000))
    ms = MatrixScaling(reg=0.0).fit(z, y)
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(z, y)
    np.testing.assert_allclose(ms.predict_proba(z), lr.predict_proba(z), atol=1e-5)


def test_vector_scaling_recovers_generating_parameters():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30000, 3)) * 2
    w, b = np.array([0.5, 0.8, 0.3]), np.array([0.2, -0.1, 0.0])
    p = softmax(z * w + b, axis=1)
    y = np.minimum((p.cumsum(1) < rng.random((30000, 1))).sum(1), 2)
    vs = VectorScaling(reg=0.0).fit(z, y)
    np.testing.assert_allclose(vs.coef_, w, atol=0.05)
    np.testing.assert_allclose(vs.intercept_ - vs.intercept_.mean(), b - b.mean(), atol=0.05)


def test_vector_scaling_with_tied_weights_is_temperature_scaling():
    z, y = _overconfident(3000, 4)
    vs = VectorScaling(reg=0.0).fit(z, y)
    ts = TemperatureScaling().fit(z, y)
    # VS has more freedom: its NLL is no worse than TS's
    nll_vs = -np.mean(np.log(vs.predict_proba(z)[np.arange(3000), y]))
    nll_ts = -np.mean(np.log(ts.predict_proba(z)[np.arange(3000), y]))
    assert nll_vs <= nll_ts + 1e-9


# ----------------------------------------------------------------------------- ETS
def _mse(p, y):
    return float(np.mean((p - np.eye(p.shape[1])[y]) ** 2))


def test_ets_temperature_is_the_mse_minimiser_on_the_reference_bounds():
    z, y = _overconfident(3000, 10, t_true=1.8)
    ets = EnsembleTemperatureScaling(loss="mse").fit(z, y)
    coarse = np.arange(5, 501) / 100
    t0 = coarse[np.argmin([_mse(softmax(z / t, axis=1), y) for t in coarse])]
    fine = t0 + np.arange(-100, 101) * 1e-4
    ref = fine[np.argmin([_mse(softmax(z / t, axis=1), y) for t in fine])]
    assert ets.temperature_ == pytest.approx(ref, abs=2e-4)


def test_ets_default_temperature_is_temperature_scaling():
    """The default (NLL) ETS temperature is TS's, so its NLL is never above TS's."""
    z, y = _overconfident(3000, 10, t_true=1.8)
    ets = EnsembleTemperatureScaling().fit(z, y)
    ts = TemperatureScaling(t_bounds=(0.05, 5.0)).fit(z, y)
    assert ets.temperature_ == ts.temperature_
    rows = np.arange(len(y))
    nll_ets = -np.mean(np.log(ets.predict_proba(z)[rows, y]))
    nll_ts = -np.mean(np.log(ts.predict_proba(z)[rows, y]))
    assert nll_ets <= nll_ts + 1e-9


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_ets_weights_beat_a_simplex_grid(loss):
    z, y = _overconfident(2000, 5, t_true=1.8, seed=3)
    ets = EnsembleTemperatureScaling(loss=loss).fit(z, y)
    k = z.shape[1]
    comps = [softmax(z / ets.temperature_, axis=1), softmax(z, axis=1), np.full(z.shape, 1 / k)]

    def objective(w):
        p = sum(wi * c for wi, c in zip(w, comps, strict=True))
        if loss == "mse":
            return _mse(p, y)
        return float(-np.mean(np.log(p[np.arange(len(y)), y])))

    steps = np.arange(0, 101) / 100
    best = min(objective((a, b, 1 - a - b)) for a in steps for b in steps if a + b <= 1 + 1e-12)
    w = ets.weights_
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert objective(w) <= best + 1e-10
    mixed = sum(wi * c for wi, c in zip(w, comps, strict=True))
    np.testing.assert_allclose(ets.predict_proba(z), mixed, rtol=1e-12)


def test_ets_keeps_the_argmax_and_mixes_in_uniform_on_noisy_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 4)) * 4
    y = np.where(rng.random(3000) < 0.7, z.argmax(1), rng.integers(0, 4, 3000))
    ets = EnsembleTemperatureScaling().fit(z, y)
    assert ets.weights_[2] > 0.1  # 30 % random labels: the uniform component matters
    np.testing.assert_array_equal(ets.predict(z), z.argmax(1))
    np.testing.assert_array_equal(ets.predict_proba(z).argmax(1), z.argmax(1))
    assert ets.predict_proba(z).min() > 0


def test_ts_fits_torch_tensors_in_their_precision():
    torch = pytest.importorskip("torch")
    z, y = _overconfident(3000, 10, t_true=1.6)
    ref = TemperatureScaling().fit(z, y).temperature_
    for dtype, rel in [(torch.float64, 1e-7), (torch.float32, 1e-5), (torch.float16, 1e-2)]:
        ts = TemperatureScaling().fit(torch.tensor(z, dtype=dtype), torch.tensor(y))
        assert ts.temperature_ == pytest.approx(ref, rel=rel)
        out = ts.predict_proba(torch.tensor(z, dtype=dtype))
        assert out.dtype == dtype


def test_ts_invariances_row_shift_and_logit_scale():
    z, y = _overconfident(2000, 7, t_true=1.7)
    t = TemperatureScaling().fit(z, y).temperature_
    shift = np.random.default_rng(1).normal(size=(2000, 1)) * 50  # softmax ignores row shifts
    assert TemperatureScaling().fit(z + shift, y).temperature_ == pytest.approx(t, rel=1e-7)
    # T(a z) = a T(z): scaling the logits scales the temperature
    assert TemperatureScaling().fit(3 * z, y).temperature_ == pytest.approx(3 * t, rel=1e-7)


@pytest.mark.peers
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ts_matches_probmetrics_bisection(dtype):
    torch = pytest.importorskip("torch")
    calibrators = pytest.importorskip("probmetrics.calibrators")
    from probmetrics.distributions import CategoricalLogits

    z, y = _overconfident(3000, 10, t_true=2.2, dtype=dtype)
    ref = calibrators.TemperatureScalingCalibrator()  # bisection on log(1/T), 30 steps
    ref.fit_torch(CategoricalLogits(torch.tensor(z)), torch.tensor(y))
    assert TemperatureScaling().fit(z, y).temperature_ == pytest.approx(1 / ref.invtemp_,
                                                                       rel=1e-6)
