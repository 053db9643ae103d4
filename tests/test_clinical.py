"""Logistic recalibration and loess-curve errors against R (rms 6.5-0, loess) values.

Values: ``../shared/reference/calibration_tests_and_metrics.md`` section 3 (R 4.2.2,
``rms::val.prob`` and ``loess(y ~ p, surface="direct")`` on data sets A and B).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from calkit.metrics import logistic_calibration, smoothed_calibration_errors
from calkit.metrics.clinical import _loess_at


def data_a():
    p = (2 * np.arange(1, 21) - 1) / 40
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    return y, p


def data_b():
    i = np.arange(1, 201)
    frac = lambda x: x - np.floor(x)  # noqa: E731
    p = 0.01 + 0.98 * frac(i * 0.6180339887498949)
    return (frac(i * 0.7548776662466927) < p ** 1.3).astype(int), p


def test_intercept_slope_citl_match_rms():
    y, p = data_b()
    r = logistic_calibration(y, p)
    assert r.intercept == pytest.approx(-0.47432202, abs=5e-8)
    assert r.slope == pytest.approx(1.21143320, abs=5e-8)   # rms stops a little early
    assert r.citl == pytest.approx(-0.4272977774, abs=5e-9)
    ya, pa = data_a()
    assert logistic_calibration(ya, pa).slope == pytest.approx(0.7957421, abs=1e-6)


def _loglik(beta, x, y, offset):
    eta = x @ beta + offset
    return float(np.sum(y * eta - np.logaddexp(0, eta)))


def test_standard_errors_equal_numerical_hessian():
    y, p = data_b()
    r = logistic_calibration(y, p)
    x = np.column_stack([np.ones(200), logit(p)])
    beta, h = np.array([r.intercept, r.slope]), 1e-4
    hess = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (_loglik(beta + e_i + e_j, x, y, 0) - _loglik(beta + e_i - e_j, x, y, 0)
                          - _loglik(beta - e_i + e_j, x, y, 0)
                          + _loglik(beta - e_i - e_j, x, y, 0)) / (4 * h * h)
    cov = np.linalg.inv(-hess)
    assert r.intercept_se == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-5)
    assert r.slope_se == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-5)
    # the fitted recalibration satisfies the score equations
    mu = expit(x @ beta)
    np.testing.assert_allclose(x.T @ (y - mu), 0, atol=1e-8)


def test_zero_one_predictions_are_dropped_with_a_warning():
    y, p = data_b()
    p2, y2 = np.r_[p, 0.0, 1.0], np.r_[y, 0, 1]
    with pytest.warns(UserWarning, match="2 predictions of exactly 0 or 1"):
        r = logistic_calibration(y2, p2)
    assert r.settings["n_dropped"] == 2
    assert r.slope == pytest.approx(logistic_calibration(y, p).slope, rel=1e-12)


def test_separated_outcomes_are_an_error():
    with pytest.raises(ValueError, match="separated|converge|singular"):
        logistic_calibration([0, 0, 0, 1, 1, 1], np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8]))


def test_loess_matches_r_direct():
    y, p = data_b()
    r = smoothed_calibration_errors(y, p)
    assert r.ici == pytest.approx(0.07205585, abs=1e-8)
    assert r.e50 == pytest.approx(0.06536704, abs=1e-8)
    assert r.e90 == pytest.approx(0.12363461, abs=1e-8)
    assert r.emax == pytest.approx(0.13045444, abs=1e-8)


def _loess_brute(x, y, x0, q):
    d = np.abs(x - x0)
    order = np.argsort(d, kind="stable")[:q]
    dq = d[order].max()
    w = (1 - (d[order] / dq) ** 3) ** 3
    a = np.vander(x[order] - x0, 3, increasing=True)
    coef = np.linalg.lstsq(a * np.sqrt(w)[:, None], y[order] * np.sqrt(w), rcond=None)[0]
    return coef[0]


def test_loess_equals_brute_force_with_small_blocks(monkeypatch):
    import calkit.metrics.clinical as mod

    monkeypatch.setattr(mod, "_LOESS_BLOCK", 200)
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(size=300))
    y = (rng.uniform(size=300) < x).astype(float)
    at = rng.uniform(size=40)
    got = _loess_at(x, y, at, 120)
    ref = [_loess_brute(x, y, a, 120) for a in at]
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_large_input_interpolates_and_agrees():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=2600)
    y = (rng.uniform(size=2600) < p ** 1.5).astype(int)
    r = smoothed_calibration_errors(y, p)
    assert r.settings["surface"] == "interpolate"
    direct = np.abs(p - _loess_at(np.sort(p), y[np.argsort(p, kind="stable")].astype(float),
                                  p, r.settings["neighbours"])).mean()
    assert r.ici == pytest.approx(direct, abs=1e-4)


@pytest.mark.parametrize("span", [0, 1.5, True, "0.75", float("nan")])
def test_bad_span(span):
    y, p = data_b()
    with pytest.raises(ValueError, match="span"):
        smoothed_calibration_errors(y, p, span=span)
