"""Bootstrap intervals: against scipy.stats.bootstrap, the vectorised binned route against the
generic per-resample route, coverage on simulated data, progress bar and errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats

from calkit import brier_score, calibration_error, debiased_ece, ece, nll, softmax
from calkit.metrics.bootstrap import ProgressBar, bootstrap


def overconfident(n, seed, gap=0.1):
    """Binary P(y=1) in [0.5, 1] with true accuracy ``p - gap``: population ECE = gap in every
    fixed-edge bin, whatever the bins (all gaps have the same sign)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.5, 1, n)
    return (rng.uniform(size=n) < p - gap).astype(int), p


def multiclass(n=400, k=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    p = softmax(z)
    y = np.where(rng.uniform(size=n) < 0.7, p.argmax(1), rng.integers(0, k, n))
    return y, p


@pytest.mark.parametrize("method", ["percentile", "basic", "bca"])
def test_matches_scipy_bootstrap(method):
    y, p = overconfident(300, 0)
    ours = bootstrap(ece, y, p, view="positive", n_bins=10, n_resamples=200, random_state=1,
                     method=method, batch=200)
    theirs = stats.bootstrap((y, p), lambda a, b: float(ece(a, b, view="positive", n_bins=10)),
                             paired=True, vectorized=False, n_resamples=200, batch=200,
                             random_state=np.random.default_rng(1), method=method,
                             confidence_level=0.95)
    np.testing.assert_allclose(ours.distribution, theirs.bootstrap_distribution, atol=1e-15)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=1e-14)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=1e-14)
    assert ours.settings["route"] == "binned"


CASES = [
    (ece, dict()),
    (ece, dict(n_bins=7, closed="left")),
    (calibration_error, dict(norm="l2", n_bins=10)),
    (calibration_error, dict(norm="max", n_bins=5, closed="left")),
    (debiased_ece, dict(strategy="uniform", n_bins=8)),
    (calibration_error, dict(norm="l2", debias=True, n_bins=12)),
]


@pytest.mark.parametrize("metric, kwargs", CASES)
@pytest.mark.parametrize("binary", [False, True])
def test_binned_route_equals_generic_route(metric, kwargs, binary):
    """The vectorised route gives the metric's own value on every resample (and jackknife)."""
    y, p = overconfident(250, 3) if binary else multiclass(250)
    if binary:
        kwargs = dict(kwargs, view="positive")

    def wrapped(a, b, **kw):  # same metric, but not recognised: forces the generic route
        return metric(a, b, **kw)

    for method in ("percentile", "bca"):
        fast = bootstrap(metric, y, p, n_resamples=60, random_state=5, method=method, **kwargs)
        slow = bootstrap(wrapped, y, p, n_resamples=60, random_state=5, method=method, **kwargs)
        assert fast.settings["route"] == "binned" and slow.settings["route"] == "generic"
        np.testing.assert_allclose(fast.distribution, slow.distribution, atol=1e-12)
        assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), abs=1e-12)


def test_data_dependent_bins_take_the_generic_route():
    y, p = multiclass(200)
    for kwargs in (dict(strategy="quantile"), dict(view="classwise")):
        r = bootstrap(ece, y, p, n_resamples=20, random_state=0, **kwargs)
        assert r.settings["route"] == "generic"
    r = bootstrap(debiased_ece, y, p, n_resamples=20, random_state=0)  # quantile by default
    assert r.settings["route"] == "generic"


def test_seeded_and_batch_independent_values():
    y, p = multiclass(300)
    a = bootstrap(brier_score, y, p, n_resamples=50, random_state=11)
    b = bootstrap(brier_score, y, p, n_resamples=50, random_state=np.random.default_rng(11))
    c = bootstrap(brier_score, y, p, n_resamples=50, random_state=12)
    np.testing.assert_array_equal(a.distribution, b.distribution)
    assert not np.array_equal(a.distribution, c.distribution)
    # each replicate is the metric on an index resample drawn by rng.integers(0, N, (R, N))
    idx = np.random.default_rng(11).integers(0, 300, (50, 300))
    expected = [brier_score(y[i], p[i]) for i in idx]
    np.testing.assert_allclose(a.distribution, expected, rtol=1e-13)
    assert a.value == pytest.approx(brier_score(y, p))
    assert a.standard_error == pytest.approx(np.std(expected, ddof=1))


def test_basic_interval_is_the_reflected_percentile_interval():
    y, p = overconfident(400, 2)
    perc = bootstrap(ece, y, p, view="positive", n_resamples=300, random_state=0)
    basic = bootstrap(ece, y, p, view="positive", n_resamples=300, random_state=0,
                      method="basic")
    assert basic.low == pytest.approx(2 * perc.value - perc.high, abs=1e-15)
    assert basic.high == pytest.approx(2 * perc.value - perc.low, abs=1e-15)
    assert "90% percentile CI" in repr(bootstrap(ece, y, p, view="positive", n_resamples=20,
                                                 confidence=0.9, random_state=0))


def _coverage(metric, truth, simulate, n_reps, **kw):
    hits = 0
    for rep in range(n_reps):
        y, p = simulate(rep)
        r = bootstrap(metric, y, p, n_resamples=400, confidence=0.9, random_state=rep, **kw)
        hits += r.low <= truth <= r.high
    return hits / n_reps


def test_coverage_of_nominal_90_percent_binned_route():
    """Over-confident data with a known population ECE (0.1 with any fixed-edge bins)."""
    cover = _coverage(ece, 0.1, lambda rep: overconfident(1000, 1000 + rep), 300,
                      view="positive", n_bins=10)
    # 300 replications: the standard error of a 90 % coverage is 1.7 %
    assert 0.85 <= cover <= 0.95, cover


def _calibrated(rep, n=500):
    """Calibrated by construction: y ~ Bernoulli(p), p ~ U(0, 1)."""
    rng = np.random.default_rng(rep)
    p = rng.uniform(size=n)
    return (rng.uniform(size=n) < p).astype(int), p


def test_coverage_of_nominal_90_percent_on_calibrated_data():
    """True Brier score E[p(1 - p)] = 1/6 (an unbiased estimator), generic route."""
    assert 0.85 <= _coverage(brier_score, 1 / 6, _calibrated, 200) <= 0.95


@pytest.mark.slow
def test_coverage_of_nominal_90_percent_on_calibrated_data_more_metrics():
    """True NLL E[-p log p - (1-p) log(1-p)] = 1/2, and the Brier score with BCa intervals."""
    assert 0.85 <= _coverage(nll, 0.5, _calibrated, 400) <= 0.95
    assert 0.85 <= _coverage(brier_score, 1 / 6, _calibrated, 400, method="bca") <= 0.95


@pytest.mark.peers
@pytest.mark.slow
def test_uncertainty_calibration_90_percent_interval_is_much_wider():
    """Its alpha=0.1 is read as 0.1 %: the '90 %' interval is the basic interval between the
    0.05 % and 99.95 % points of 100 resamples, i.e. nearly their full range (reference notes
    3.5).  It is about 1.5 times as wide as a true 90 % interval and as wide as our 99.9 %
    basic interval from 100 resamples (averaged over 5 data sets: 100 resamples are noisy)."""
    calibration = pytest.importorskip("calibration")
    to_90, to_999 = [], []
    for seed in range(5):
        y, p = overconfident(2000, seed)
        np.random.seed(seed)  # noqa: NPY002 (it resamples with the global generator)
        lo, _, hi = calibration.get_calibration_error_uncertainties(p, y, p=1, alpha=0.1,
                                                                    mode="top-label")
        ours90 = bootstrap(ece, y, p, n_resamples=1000, confidence=0.9, method="basic",
                           random_state=seed)
        ours999 = bootstrap(ece, y, p, n_resamples=100, confidence=0.999, method="basic",
                            random_state=seed)
        to_90.append((hi - lo) / (ours90.high - ours90.low))
        to_999.append((hi - lo) / (ours999.high - ours999.low))
    assert np.mean(to_90) > 1.3
    assert 0.75 < np.mean(to_999) < 1.3


def test_torch_input_and_generic_metric():
    torch = pytest.importorskip("torch")
    y, p = multiclass(200)
    a = bootstrap(nll, torch.as_tensor(y), torch.as_tensor(p), n_resamples=30, random_state=0)
    b = bootstrap(nll, y, p, n_resamples=30, random_state=0)
    np.testing.assert_allclose(a.distribution, b.distribution, rtol=1e-12)


def test_progress_bar_plain_fallback(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import fails: plain counter
    y, p = multiclass(100)
    bootstrap(brier_score, y, p, n_resamples=40, random_state=0, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap brier_score: 40/40 (100%)\n" in err and "\r" in err
    bootstrap(brier_score, y, p, n_resamples=40, random_state=0)
    assert capsys.readouterr().err == ""


def test_progress_bar_uses_tqdm_when_installed(capsys):
    pytest.importorskip("tqdm")
    bar = ProgressBar(5, "work")
    assert bar._tqdm is not None
    bar.update(5)
    bar.close()
    assert bar.done == 5 and "work" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_resamples=1), "n_resamples"),
    (dict(n_resamples=True), "n_resamples"),
    (dict(confidence=1.0), "confidence"),
    (dict(method="student"), "method"),
])
def test_bad_options(kwargs, match):
    y, p = multiclass(50)
    with pytest.raises(ValueError, match=match):
        bootstrap(ece, y, p, **kwargs)


def test_bad_metric_and_degenerate_bca():
    y, p = multiclass(50)
    with pytest.raises(ValueError, match="callable"):
        bootstrap("ece", y, p)
    with pytest.raises(ValueError, match="BCa"):  # a constant metric: zero jackknife variance
        bootstrap(lambda a, b: 0.5, y, p, n_resamples=20, method="bca", random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap(lambda a, b: float("nan"), y, p, n_resamples=20, random_state=0)
