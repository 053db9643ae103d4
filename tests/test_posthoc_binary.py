"""Platt scaling and beta calibration against scikit-learn and betacal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.calibration import _sigmoid_calibration

from calkit.posthoc.binary import BetaCalibration, PlattScaling


def _scores(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n) * 2
    y = (rng.random(n) < expit(1.5 * s + 0.3)).astype(int)
    return s, y


def test_platt_equals_sklearn_sigmoid_calibration():
    s, y = _scores()
    pl = PlattScaling().fit(s, y)
    a, b = _sigmoid_calibration(s, y)  # sklearn: P = 1 / (1 + exp(a s + b))
    assert pl.coef_ == pytest.approx(-a, rel=1e-6)
    assert pl.intercept_ == pytest.approx(-b, rel=1e-6, abs=1e-8)


def test_platt_without_smoothing_is_the_logistic_mle():
    s, y = _scores(seed=1)
    pl = PlattScaling(smooth_targets=False).fit(s, y)
    p = pl.predict_proba(s)
    # the MLE's score equations: residuals orthogonal to (s, 1)
    assert abs(np.mean(p - y)) < 1e-7 and abs(np.mean((p - y) * s)) < 1e-7


def _log_loss(p, y):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_beta_solves_the_constrained_mle():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 3000)
    y = (rng.random(3000) < p ** 3 / (p ** 3 + (1 - p) ** 1.5)).astype(int)
    bc = BetaCalibration().fit(p, y)
    a, b = bc.coef_
    assert a > 0 and b > 0
    q = bc.predict_proba(p)
    f1, f2 = np.log(p), -np.log(1 - p)
    for feature in (f1, f2, np.ones_like(p)):  # interior optimum: zero gradient
        assert abs(np.mean((q - y) * feature)) < 1e-6
    np.testing.assert_allclose(q, expit(a * f1 + b * f2 + bc.intercept_))


def test_beta_clamps_a_negative_coefficient_to_zero():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, 3000)
    y = (rng.random(3000) < 1 - p).astype(int)  # decreasing: a, b would be negative
    bc = BetaCalibration().fit(p, y)
    assert np.all(bc.coef_ >= 0) and np.any(bc.coef_ == 0)


@pytest.mark.peers
def test_beta_matches_betacal():
    betacal = pytest.importorskip("betacal")
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, 3000)
    y = (rng.random(3000) < p ** 3 / (p ** 3 + (1 - p) ** 1.5)).astype(int)
    ours = BetaCalibration().fit(p, y)
    ref = betacal.BetaCalibration(parameters="abm").fit(p, y)
    np.testing.assert_allclose(ours.predict_proba(p), ref.predict(p), atol=1e-3)
    # betacal's LogisticRegression stops at tol 1e-4 and has a tiny L2 term; we solve the MLE
    assert _log_loss(ours.predict_proba(p), y) <= _log_loss(ref.predict(p), y) + 1e-12


def test_fit_platt_vectorised_newton_equals_each_column_optimum():
    """fit_platt solves every column at once; each equals scipy's tight single-column optimum."""
    from scipy.optimize import minimize
    from scipy.special import log_expit

    from calkit.posthoc.binary import fit_platt, platt_targets

    rng = np.random.default_rng(3)
    s = rng.normal(size=(700, 6)) * [1, 2, 0.1, 5, 1, 1]
    t = (rng.random((700, 6)) < 1 / (1 + np.exp(-(s * [1, -0.5, 8, 0.2, 2, 0] + 0.3)))) * 1.0
    w = rng.uniform(0.1, 2, 700)
    for weights in (None, w):
        targets = platt_targets(t, weights)
        a, b = fit_platt(s, targets, weights)
        ww = np.full(700, 1 / 700) if weights is None else weights / weights.sum()
        for j in range(6):
            def loss(theta, x=s[:, j], y=targets[:, j], ww=ww):
                z = theta[0] * x + theta[1]
                return -ww @ (y * log_expit(z) + (1 - y) * log_expit(-z))
            ref = minimize(loss, [1.0, 0.0], method="Nelder-Mead",
                           options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000}).x
            np.testing.assert_allclose([a[j], b[j]], ref, rtol=1e-6, atol=1e-7)


def test_fit_platt_degenerate_columns_stay_finite():
    from calkit.posthoc.binary import fit_platt

    s = np.column_stack([np.full(50, 2.0), np.r_[-np.ones(25), np.ones(25)]])
    t = np.column_stack([np.r_[np.zeros(20), np.ones(30)], np.r_[np.zeros(25), np.ones(25)]])
    a, b = fit_platt(s, t)  # constant score; perfectly separable 0/1 targets
    assert np.isfinite(a).all() and np.isfinite(b).all()
    p0 = 1 / (1 + np.exp(-(a[0] * 2 + b[0])))
    assert abs(p0 - 0.6) < 1e-6  # a constant score can only learn the base rate
    assert a[1] > 5  # separable: a steep (finite) slope
