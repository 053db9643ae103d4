"""Consistency resampling (bands and test) and per-bin binomial intervals.

References: a brute-force loop over resamples with the engine's own ``bin_table``;
``scipy.stats.binomtest(...).proportion_ci`` and hand formulas for the intervals;
simulated calibrated data for coverage and type-I error, a known miscalibration for power.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calkit import calibration_error, softmax
from calkit.binning import bin_table
from calkit.datasets import load_example
from calkit.metrics import consistency as cons
from calkit.metrics import error_from_table
from calkit.metrics.consistency import (
    consistency_band,
    consistency_resample,
    consistency_test,
)
from calkit.metrics.intervals import bin_intervals, binomial_interval
from calkit.metrics.smooth import smooth_ece


def _calibrated(seed: int, n: int, low: float = 0.0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(low, 1, n)
    return p, rng.uniform(size=n) < p


# ---------------------------------------------------------------------------- resampler

@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_resampler_equals_a_loop_of_engine_tables(strategy):
    p, _ = _calibrated(3, 700)
    batch = consistency_resample(p, n_bins=8, strategy=strategy, n_resamples=25,
                                 random_state=11)
    draws = np.random.default_rng(11).random((25, 700)) < p
    edges = bin_table(p, draws[0], n_bins=8, strategy=strategy).edges
    assert np.array_equal(batch.edges, edges)
    for r in range(25):
        t = bin_table(p, draws[r], edges=edges)
        assert np.array_equal(batch.count[r], t.count)
        assert np.array_equal(batch.sum_target[r], t.sum_target)
        assert np.allclose(batch.sum_score[r], t.sum_score, rtol=1e-14)
        assert error_from_table(batch)[r] == pytest.approx(float(error_from_table(t)),
                                                            rel=1e-12)
    assert batch.sum_target.dtype == np.float64


def test_resampler_blocks_do_not_change_the_result(monkeypatch):
    p, _ = _calibrated(4, 300)
    whole = consistency_resample(p, n_bins=6, n_resamples=50, random_state=2)
    monkeypatch.setattr(cons, "_BLOCK_ELEMENTS", 7 * 300 + 5)  # blocks of 7 rows
    blocked = consistency_resample(p, n_bins=6, n_resamples=50, random_state=2)
    assert np.array_equal(whole.sum_target, blocked.sum_target)


def test_resampler_validates():
    with pytest.raises(ValueError, match="n_resamples"):
        consistency_resample([0.2, 0.4], n_resamples=0)
    with pytest.raises(TypeError, match="n_resamples"):
        consistency_resample([0.2, 0.4], n_resamples=2.5)
    with pytest.raises(ValueError, match="edges"):
        consistency_resample([0.2, 0.4], edges=[0.0, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="strategy"):
        consistency_resample([0.2, 0.4], strategy="wide")
    with pytest.raises(ValueError):
        consistency_resample([0.2, 1.4])


# ---------------------------------------------------------------------------- bands

def test_band_contains_calibrated_accuracies_at_the_nominal_rate():
    """Over 300 calibrated data sets, the share of non-empty bins whose accuracy is inside
    its 90% band is close to 90% (a little above: bin accuracies are discrete)."""
    inside = total = 0
    for seed in range(300):
        p, y = _calibrated(seed, 400)
        band = consistency_band(p, n_bins=10, confidence=0.9, n_resamples=400,
                                random_state=seed + 10_000)
        acc = bin_table(p, y, n_bins=10).mean_target
        ok = band.count > 0
        inside += int(np.sum(~band.outside(acc)[ok]))
        total += int(ok.sum())
    rate = inside / total
    assert 0.89 <= rate <= 0.935, rate


def test_band_quantiles_match_the_binomial_for_a_constant_score():
    """All scores equal c in a bin: the resampled accuracy is Binomial(n, c) / n, whose
    quantiles scipy gives exactly."""
    band = consistency_band(np.full(500, 0.7), edges=[0.0, 0.5, 1.0], confidence=0.9,
                            n_resamples=20_000, random_state=0)
    lo, hi = stats.binom.ppf([0.05, 0.95], 500, 0.7) / 500
    assert abs(band.low[1] - lo) <= 1 / 500 + 1e-12
    assert abs(band.high[1] - hi) <= 1 / 500 + 1e-12
    assert band.mean_score[1] == pytest.approx(0.7)
    assert np.isnan(band.high[0]) and band.count[0] == 0


def test_band_marks_a_miscalibrated_bin():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=3000)
    y = rng.uniform(size=3000) < np.where(p > 0.8, p - 0.2, p)  # only the top bins are off
    band = consistency_band(p, n_bins=10, random_state=1)
    out = band.outside(bin_table(p, y, n_bins=10).mean_target)
    assert out[8:].all() and out[:6].sum() <= 2  # 6 calibrated bins at 95%


# ---------------------------------------------------------------------------- test

def test_statistic_is_the_metric(example_probs):
    labels, probs = example_probs
    for strategy in ("uniform", "quantile"):
        for norm in ("l1", "l2", "max"):
            r = consistency_test(labels, probs, n_bins=12, strategy=strategy, norm=norm,
                                 n_resamples=20, random_state=0)
            expected = float(calibration_error(labels, probs, n_bins=12, strategy=strategy,
                                               norm=norm))
            assert r.statistic == pytest.approx(expected, rel=1e-12, abs=1e-15)
            assert r.null_distribution.shape == (20,)
    s = consistency_test(labels, probs, metric="smooth_ece", n_resamples=5, random_state=0)
    assert s.statistic == pytest.approx(float(smooth_ece(labels, probs)), rel=1e-12)


def test_p_value_counts_the_null():
    rng = np.random.default_rng(5)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    r = consistency_test(y, p, view="positive", n_resamples=99, random_state=3)
    assert r.pvalue == (1 + np.sum(r.null_distribution >= r.statistic)) / 100
    # the null is the metric on the resampled targets, recomputed from scratch
    draws = np.random.default_rng(3).random((99, 200)) < p
    brute = [float(calibration_error(d.astype(int), p, view="positive")) for d in draws[:5]]
    assert np.allclose(r.null_distribution[:5], brute, rtol=1e-12)


def test_callable_metric_and_seed():
    p, y = _calibrated(8, 300)

    def mean_gap(s, t):
        return abs(float(np.mean(s) - np.mean(t)))

    a = consistency_test(y.astype(int), p, metric=mean_gap, view="positive", n_resamples=50,
                         random_state=4)
    b = consistency_test(y.astype(int), p, metric=mean_gap, view="positive", n_resamples=50,
                         random_state=4)
    assert np.array_equal(a.null_distribution, b.null_distribution)
    assert a.settings["metric"] == "mean_gap"
    draws = np.random.default_rng(4).random((50, 300)) < p
    assert np.allclose(a.null_distribution, [mean_gap(p, d) for d in draws])


def test_test_validates():
    with pytest.raises(ValueError, match="metric"):
        consistency_test([0, 1], [0.2, 0.7], metric="brier", view="positive")
    with pytest.raises(ValueError, match="view"):
        consistency_test([0, 1], [0.2, 0.7], view="classwise")
    with pytest.raises(ValueError, match="norm"):
        consistency_test([0, 1], [0.2, 0.7], view="positive", norm="l3")


def test_type_one_error_and_power():
    """alpha = 0.05: calibrated data are rejected at about 5% of 600 seeds (binomial
    sd 0.9 points), an over-confidence of 0.08 at N = 500 almost always."""
    rejected = 0
    for seed in range(600):
        p, y = _calibrated(seed, 300, low=0.3)
        r = consistency_test(y.astype(int), p, view="positive", n_bins=10, n_resamples=199,
                             random_state=seed + 50_000)
        rejected += r.pvalue <= 0.05
    assert 0.03 <= rejected / 600 <= 0.07, rejected / 600
    power = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        p = rng.uniform(0.5, 1, 500)
        y = (rng.uniform(size=500) < p - 0.08).astype(int)
        power += consistency_test(y, p, view="positive", n_bins=10, n_resamples=199,
                                  random_state=seed + 1).pvalue <= 0.05
    assert power / 40 >= 0.9


@pytest.mark.slow
def test_type_one_error_tight_over_many_seeds():
    """5,000 seeds (sd 0.31 points): within 1.5 points of 5%, binned and equal-mass."""
    for strategy in ("uniform", "quantile"):
        rejected = 0
        for seed in range(5000):
            p, y = _calibrated(seed, 200, low=0.2)
            rejected += consistency_test(y.astype(int), p, view="positive", n_bins=8,
                                         strategy=strategy, n_resamples=99,
                                         random_state=seed + 7).pvalue <= 0.05
        assert abs(rejected / 5000 - 0.05) <= 0.015, (strategy, rejected / 5000)


@pytest.fixture(scope="module")
def example_probs():
    logits, labels = load_example()
    return labels, softmax(logits.astype(np.float64))


# ---------------------------------------------------------------------------- intervals

@pytest.mark.parametrize(("method", "scipy_method"), [("wilson", "wilson"),
                                                      ("clopper-pearson", "exact")])
def test_intervals_equal_scipy_binomtest(method, scipy_method):
    cases = [(0, 1), (0, 7), (3, 7), (7, 7), (1, 250), (249, 250), (17, 40), (500, 1000)]
    k, n = np.array(cases).T
    for conf in (0.9, 0.95, 0.99):
        low, high = binomial_interval(k, n, method=method, confidence=conf)
        for i, (kk, nn) in enumerate(cases):
            ci = stats.binomtest(int(kk), int(nn)).proportion_ci(conf, method=scipy_method)
            assert low[i] == pytest.approx(ci.low, abs=1e-12)
            assert high[i] == pytest.approx(ci.high, abs=1e-12)


def test_wilson_hand_formula():
    k, n, z = 7.0, 20.0, stats.norm.ppf(0.975)
    centre = (k + z * z / 2) / (n + z * z)
    half = z * np.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    low, high = binomial_interval([k], [n])
    assert low[0] == pytest.approx(centre - half, rel=1e-13)
    assert high[0] == pytest.approx(centre + half, rel=1e-13)


def test_intervals_empty_bins_and_errors():
    t = bin_table(np.array([0.1, 0.15, 0.9]), np.array([0, 1, 1]), n_bins=4)
    low, high = bin_intervals(t, "clopper-pearson")
    assert np.isnan(low[1]) and np.isnan(high[2]) and not np.isnan(low[0])
    with pytest.raises(ValueError, match="method"):
        binomial_interval([1], [2], method="agresti")
    with pytest.raises(ValueError, match="confidence"):
        binomial_interval([1], [2], confidence=1.5)
    with pytest.raises(ValueError, match="successes"):
        binomial_interval([3], [2])
    with pytest.raises(ValueError, match="shape"):
        binomial_interval([1, 1], [2])


@pytest.mark.parametrize(("method", "band"), [("wilson", (0.93, 0.97)),
                                              ("clopper-pearson", (0.95, 0.985))])
def test_interval_coverage_on_calibrated_bins(method, band):
    """Over 400 simulated calibrated data sets, the 95% interval of a bin's accuracy holds
    the bin's true mean probability (its mean confidence, since the model is calibrated)
    for about 95% of the bins: Wilson within [93%, 97%]; Clopper-Pearson at least 95%."""
    hits = total = 0
    for seed in range(400):
        p, y = _calibrated(seed, 600)
        t = bin_table(p, y, n_bins=10)
        low, high = bin_intervals(t, method)
        truth = t.mean_score  # E[y | bin] of a calibrated model
        ok = t.count > 0
        hits += int(np.sum((low <= truth) & (truth <= high) & ok))
        total += int(ok.sum())
    assert band[0] <= hits / total <= band[1], hits / total
