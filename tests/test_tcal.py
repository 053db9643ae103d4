"""T-Cal (Lee et al. 2022): the debiased plug-in estimator and the adaptive test.

Reference values: dh7401/T-Cal ``utils.py`` run on data set B of
``../shared/reference/calibration_tests_and_metrics.md`` (section 5).
"""

from __future__ import annotations

import numpy as np
import pytest

from calkit.metrics import debiased_plugin_ece, t_cal_test
from calkit.metrics.tcal import _level_dpe, _merge_plan, _partitions, n_levels


def data_b():
    i = np.arange(1, 201)
    frac = lambda x: x - np.floor(x)  # noqa: E731
    p = 0.01 + 0.98 * frac(i * 0.6180339887498949)
    return (frac(i * 0.7548776662466927) < p ** 1.3).astype(int), p


@pytest.mark.parametrize("m, value", [(2, 0.0041147338), (4, 0.0030282926),
                                      (8, 0.0013845398), (16, -0.0029459802)])
def test_dpe_matches_reference_code(m, value):
    y, p = data_b()
    assert debiased_plugin_ece(y, p, n_bins=m, view="positive") == pytest.approx(value,
                                                                                 abs=1e-10)


def _dpe_pairs(z, y, m):
    """Only the i != j products, by a double loop over each bin."""
    idx = np.minimum(np.floor(z * m), m)
    total = 0.0
    for b in np.unique(idx):
        r = (z - y)[idx == b]
        total += sum(r[i] * r[j] for i in range(len(r)) for j in range(len(r)) if i != j) \
            / len(r)
    return total / len(z)


def test_dpe_brute_force_and_score_one_bin():
    rng = np.random.default_rng(4)
    z = np.round(rng.uniform(size=60), 2)
    z[:3] = 1.0                                    # Z = 1 gets a bin of its own
    y = (rng.uniform(size=60) < z).astype(int)
    for m in (1, 3, 8):
        assert debiased_plugin_ece(y, z, n_bins=m, view="positive") == pytest.approx(
            _dpe_pairs(z, y, m), abs=1e-14)


def test_levels_from_counts_equal_explicit_resample():
    rng = np.random.default_rng(0)
    z = np.sort(rng.uniform(size=300))
    idx = rng.integers(0, 300, 300)
    y_star = (rng.uniform(size=300) < z[idx]).astype(int)
    copies = np.bincount(idx, minlength=300)[None, :]
    hits = np.bincount(idx, weights=y_star, minlength=300)[None, :]
    levels = n_levels(300)
    got = _level_dpe(_merge_plan(_partitions(z, levels), 300), z, copies, hits, levels)[0]
    for b in range(1, levels + 1):
        assert got[b - 1] == pytest.approx(
            debiased_plugin_ece(y_star, z[idx], n_bins=2 ** b, view="positive"), abs=1e-12)


def test_n_levels_and_settings():
    assert n_levels(200) == 12
    y, p = data_b()
    r = t_cal_test(y, p, view="positive", n_resamples=1200)
    assert r.settings["n_levels"] == 12 and len(r.settings["dpe"]) == 12
    assert r.settings["dpe"][4] == pytest.approx(0.0030282926, abs=1e-10)
    assert r.pvalue == pytest.approx(min(1.0, 12 * min(r.settings["level_pvalues"].values())))
    again = t_cal_test(y, p, view="positive", n_resamples=1200)
    assert again.pvalue == r.pvalue                # seeded


def test_power_against_over_confidence():
    rng = np.random.default_rng(2)
    power = []
    for _ in range(6):
        z = rng.uniform(size=1000)
        power.append(t_cal_test((rng.uniform(size=1000) < z ** 1.4).astype(int), z,
                                view="positive", n_resamples=1000,
                                random_state=rng).reject())
    assert np.mean(power) >= 0.8


def test_warns_when_too_few_resamples_to_reject():
    y, p = data_b()
    with pytest.warns(UserWarning, match="smallest p-value"):
        r = t_cal_test(y, p, view="positive", n_resamples=200)
    assert r.pvalue >= r.settings["min_pvalue"] >= 0.05


@pytest.mark.slow
def test_size_and_power():
    """1,000 calibrated seeds (binomial sd 0.7 points at 5%): the Bonferroni test is
    conservative, its type-I error at most 1.5 points above the nominal 5%."""
    rng = np.random.default_rng(1)
    rejected, power = [], []
    for _ in range(1000):
        z = rng.uniform(size=500)
        rejected.append(t_cal_test((rng.uniform(size=500) < z).astype(int), z,
                                   view="positive", n_resamples=1000,
                                   random_state=rng).reject())
    for _ in range(40):
        z = rng.uniform(size=1000)
        power.append(t_cal_test((rng.uniform(size=1000) < z ** 1.4).astype(int), z,
                                view="positive", n_resamples=1000,
                                random_state=rng).reject())
    assert np.mean(rejected) <= 0.05 + 0.015       # Bonferroni over levels: conservative
    assert np.mean(power) > 0.8


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_resamples=0), "n_resamples"), (dict(n_resamples=2.0), "n_resamples"),
    (dict(view="classwise"), "view")])
def test_bad_settings(kwargs, match):
    y, p = data_b()
    kwargs.setdefault("view", "positive")
    with pytest.raises(ValueError, match=match):
        t_cal_test(y, p, **kwargs)
    with pytest.raises(ValueError, match="n_bins"):
        debiased_plugin_ece(y, p, n_bins=0, view="positive")
    with pytest.raises(ValueError, match="3 samples"):
        t_cal_test([0, 1], np.array([0.2, 0.7]), view="positive")


def test_one_d_scores_need_their_view_said():
    y, p = data_b()
    with pytest.raises(ValueError, match="view='confidence'"):
        debiased_plugin_ece(y, p, n_bins=4)
    with pytest.raises(ValueError, match="view='confidence'"):
        t_cal_test(y, p, n_resamples=300)
