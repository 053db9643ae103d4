"""smoothed_calibration_errors(max_fit_samples=...): the documented bound on the loess cost."""

from __future__ import annotations

import numpy as np
import pytest

from calkit.metrics import smoothed_calibration_errors


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return (rng.uniform(size=n) < p ** 2).astype(int), p


def test_bound_above_n_changes_nothing():
    y, p = _data(3000)
    full = smoothed_calibration_errors(y, p)
    same = smoothed_calibration_errors(y, p, max_fit_samples=3000)
    assert np.array_equal(full.curve, same.curve) and full.ici == same.ici
    assert same.settings["fit_samples"] == 3000 and full.settings["max_fit_samples"] is None


def test_bounded_fit_estimates_the_same_curve():
    # y ~ Bernoulli(p^2) with p uniform: the true ICI is E|p - p^2| = 1/6
    y, p = _data(20_000, seed=1)
    bounded = smoothed_calibration_errors(y, p, max_fit_samples=2500)
    assert bounded.settings["fit_samples"] == 2500 and bounded.settings["n_samples"] == 20_000
    assert bounded.curve.shape == (20_000,)
    assert abs(bounded.ici - 1 / 6) < 0.012
    # the fit used every 8th sample in score order: its curve matches the loess of those
    # samples alone (no bound), interpolated to all predictions
    order = np.argsort(p, kind="stable")[::8]
    sub = smoothed_calibration_errors(y[order], p[order])
    assert sub.settings["fit_samples"] == 2500
    inside = (p > 0.05) & (p < 0.95)
    assert np.max(np.abs(np.interp(p[inside], np.sort(p[order]), sub.curve[np.argsort(
        p[order])]) - bounded.curve[inside])) < 0.02


@pytest.mark.parametrize("bad", [2, 0, 2.5, True, "all"])
def test_bound_is_validated(bad):
    y, p = _data(100)
    with pytest.raises(ValueError, match="max_fit_samples"):
        smoothed_calibration_errors(y, p, max_fit_samples=bad)
