"""SKCE estimators and tests against pycalibration/CalibrationTests.jl reference values.

Values from ``../shared/reference/calibration_tests_and_metrics.md`` section 6
(pycalibration's README and tests; data set B transcribed from the formulas)
and a brute-force double loop here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from calkit.metrics import skce, skce_test
from calkit.metrics.kernel_calibration import median_bandwidth


def data_b():
    i = np.arange(1, 201)
    frac = lambda x: x - np.floor(x)  # noqa: E731
    p = 0.01 + 0.98 * frac(i * 0.6180339887498949)
    return (frac(i * 0.7548776662466927) < p ** 1.3).astype(int), p


def test_pycalibration_readme_value():
    p = np.array([[0.1, 0.8, 0.1], [0.2, 0.5, 0.3]])
    assert skce([1, 2], p, bandwidth=1.0) == pytest.approx(-0.10317943453412069, abs=1e-15)


@pytest.mark.parametrize("y, biased, unbiased", [
    ([0, 1], 0.0, 0.0), ([0, 0], 0.5, 0.0), ([1, 0], 1 - math.exp(-1), -2 * math.exp(-1)),
    ([1, 1], 0.5, 0.0)])
def test_pycalibration_gaussian_white_kernel(y, biased, unbiased):
    e = np.eye(2)
    assert skce(y, e, kernel="gaussian", bandwidth=1.0, estimator="biased") == \
        pytest.approx(biased, abs=1e-15)
    assert skce(y, e, kernel="gaussian", bandwidth=1.0) == pytest.approx(unbiased, abs=1e-15)


def test_binary_reference_b():
    y, p = data_b()
    assert skce(y, p, bandwidth=1.0) == pytest.approx(0.006701173288, abs=1e-12)
    assert skce(y, p, bandwidth=1.0, estimator="biased") == pytest.approx(0.008252858423,
                                                                          abs=1e-12)
    assert skce(y, p, bandwidth=1.0, estimator="linear") == pytest.approx(0.0354440336,
                                                                          abs=1e-10)
    assert skce_test(y, p, bandwidth=1.0).statistic == pytest.approx(1.789751609, abs=1e-9)
    boot = skce_test(y, p, bandwidth=1.0, method="bootstrap")
    assert boot.statistic == pytest.approx(-0.001518010897, abs=1e-12)


def _brute(y, p, kernel, bw):
    n = len(y)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = np.linalg.norm(p[i] - p[j])
            k = math.exp(-d / bw) if kernel == "laplacian" else math.exp(-0.5 * (d / bw) ** 2)
            ei, ej = np.eye(p.shape[1])[y[i]], np.eye(p.shape[1])[y[j]]
            total += k * float((ei - p[i]) @ (ej - p[j]))
    return total / (n * (n - 1))


@pytest.mark.parametrize("kernel", ["laplacian", "gaussian"])
def test_unbiased_equals_double_loop(kernel, monkeypatch):
    import calkit.metrics.kernel_calibration as mod

    monkeypatch.setattr(mod, "_BLOCK_ELEMENTS", 37)    # many small row blocks
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4), size=45)
    y = rng.integers(0, 4, 45)
    assert skce(y, p, kernel=kernel, bandwidth=0.7) == pytest.approx(
        _brute(y, p, kernel, 0.7), rel=1e-12)


def test_binary_1d_equals_two_column_with_scaled_distance():
    y, p = data_b()
    two = np.column_stack([1 - p, p])
    # the 2-vector distance is sqrt(2) |p - p'|, so scale the bandwidth to match
    assert skce(y, p, bandwidth=1.0) == pytest.approx(skce(y, two, bandwidth=math.sqrt(2)),
                                                       rel=1e-12)


def test_median_bandwidth():
    p = np.array([0.1, 0.2, 0.4, 0.8])
    assert median_bandwidth(p) == pytest.approx(np.median([0.1, 0.3, 0.7, 0.2, 0.6, 0.4]))
    with pytest.raises(ValueError, match="bandwidth"):
        skce([0, 1, 1], np.array([0.5, 0.5, 0.5]))


def test_linear_test_size_and_power():
    rng = np.random.default_rng(0)
    pvals, power = [], []
    for _ in range(600):
        p = rng.dirichlet(np.ones(3), size=1000)
        y = (rng.uniform(size=(1000, 1)) > p.cumsum(1)).sum(1)
        pvals.append(skce_test(y, p, bandwidth=0.5).pvalue)
    for _ in range(100):    # power against over-confidence (probabilities sharpened)
        p = rng.dirichlet(np.ones(3), size=3000)
        y = (rng.uniform(size=(3000, 1)) > p.cumsum(1)).sum(1)
        sharp = p ** 3 / (p ** 3).sum(1, keepdims=True)
        power.append(skce_test(y, sharp, bandwidth=0.5).reject())
    assert abs(np.mean(np.array(pvals) < 0.05) - 0.05) < 0.02
    assert np.mean(power) > 0.7


@pytest.mark.slow
def test_size_of_both_tests_many_seeds():
    rng = np.random.default_rng(1)
    lin, boot = [], []
    for r in range(2000):
        p = rng.dirichlet(np.ones(3), size=2000)
        y = (rng.uniform(size=(2000, 1)) > p.cumsum(1)).sum(1)
        lin.append(skce_test(y, p, bandwidth=0.5).pvalue < 0.05)
        if r < 600:
            boot.append(skce_test(y[:200], p[:200], method="bootstrap", n_bootstrap=300,
                                  random_state=r).pvalue < 0.05)
    assert abs(np.mean(lin) - 0.05) < 0.015
    assert abs(np.mean(boot) - 0.05) < 0.02


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimator="quadratic"), "estimator"), (dict(kernel="rbf"), "kernel"),
    (dict(bandwidth=0.0), "bandwidth"), (dict(bandwidth=float("nan")), "bandwidth"),
    (dict(bandwidth="scott"), "bandwidth"), (dict(bandwidth=True), "bandwidth")])
def test_bad_settings(kwargs, match):
    y, p = data_b()
    with pytest.raises(ValueError, match=match):
        skce(y, p, **kwargs)


def test_bad_test_settings():
    y, p = data_b()
    with pytest.raises(ValueError, match="method"):
        skce_test(y, p, method="asymptotic")
    with pytest.raises(ValueError, match="n_bootstrap"):
        skce_test(y, p, method="bootstrap", n_bootstrap=0)
    with pytest.raises(ValueError, match="y_prob"):
        skce_test(y, p + 1)
