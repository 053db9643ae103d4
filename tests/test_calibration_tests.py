"""Tests of calibration (Hosmer-Lemeshow, Spiegelhalter) and the decompositions.

Reference values: R 4.2.2 with rms 6.5-0 and a transcription of
ResourceSelection's ``hoslem.test`` (see ``../shared/reference/
calibration_tests_and_metrics.md``, data sets A, B and C defined there), and
the CORP and Murphy identities computed by brute force here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from calkit.metrics import (
    brier_decomposition,
    calibration_refinement,
    ece,
    hosmer_lemeshow,
    signed_ece,
    spiegelhalter_z,
)
from calkit.metrics.calibration_tests import paul_n_groups


def _frac(x):
    return x - np.floor(x)


def data_a():
    p = (2 * np.arange(1, 21) - 1) / 40
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    return y, p


def data_b():
    i = np.arange(1, 201)
    p = 0.01 + 0.98 * _frac(i * 0.6180339887498949)
    y = (_frac(i * 0.7548776662466927) < p ** 1.3).astype(int)
    return y, p


def data_c():
    y, p = data_b()
    return y, np.clip(np.round(p, 1), 0.05, 0.95)


# ------------------------------------------------------------------ Hosmer-Lemeshow
@pytest.mark.parametrize("data, statistic, pvalue", [
    (data_a, 5.8230053, 0.6670502),     # R hoslem.test = statsmodels
    (data_b, 8.5094008, 0.3853543),
    (data_c, 9.3522018, 0.3134611),     # R: ties kept in one group
])
@pytest.mark.parametrize("grouping", ["quantile", "hoslem"])
def test_hosmer_lemeshow_matches_r(data, statistic, pvalue, grouping):
    y, p = data()
    r = hosmer_lemeshow(y, p, view="positive", grouping=grouping)
    assert r.statistic == pytest.approx(statistic, abs=5e-7)
    assert r.pvalue == pytest.approx(pvalue, abs=5e-7)
    assert r.settings["df"] == 8 and r.settings["n_groups"] == 10


def test_hosmer_lemeshow_tied_groups_are_r_s():
    y, p = data_c()
    r = hosmer_lemeshow(y, p, view="positive", grouping="hoslem")
    assert r.table.count.tolist() == [29, 19, 21, 20, 20, 22, 20, 20, 21, 8]


def test_hosmer_lemeshow_brute_force_on_explicit_groups():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 997)
    y = (rng.uniform(size=997) < p).astype(int)
    r = hosmer_lemeshow(y, p, view="positive", n_groups=7)
    order = np.argsort(p, kind="stable")
    total = 0.0
    for idx in np.array_split(order, 7):    # no ties: equal-mass groups = array_split
        o, e, n = y[idx].sum(), p[idx].sum(), len(idx)
        total += (o - e) ** 2 / (n * (e / n) * (1 - e / n))
    assert r.statistic == pytest.approx(total, rel=1e-12)
    assert r.pvalue == pytest.approx(stats.chi2.sf(total, 5), rel=1e-12)
    ext = hosmer_lemeshow(y, p, view="positive", n_groups=7, df="external")
    assert ext.settings["df"] == 7 and ext.pvalue == pytest.approx(stats.chi2.sf(total, 7))


def test_hosmer_lemeshow_top_label_is_positive_view_of_confidence():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(4), size=600)
    y = rng.integers(0, 4, 600)
    r = hosmer_lemeshow(y, prob)
    correct = (prob.argmax(1) == y).astype(int)
    ref = hosmer_lemeshow(correct, np.column_stack([1 - prob.max(1), prob.max(1)]),
                          view="positive")
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)


def test_paul_rule():
    assert paul_n_groups(1000, 500) == 10
    assert paul_n_groups(2000, 1000) == math.floor(2 + 8 * 4)
    assert paul_n_groups(20_000, 100) == 50
    with pytest.warns(UserWarning, match="25000"):
        paul_n_groups(30_000, 15_000)
    rng = np.random.default_rng(1)
    p = rng.uniform(0.1, 0.9, 3000)
    y = (rng.uniform(size=3000) < p).astype(int)
    r = hosmer_lemeshow(y, p, view="positive", n_groups="paul")
    assert r.settings["n_groups"] == paul_n_groups(3000, int(y.sum()))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_groups=1), "n_groups"),
    (dict(n_groups=True), "n_groups"),
    (dict(n_groups="sturges"), "n_groups"),
    (dict(n_groups=2.5), "n_groups"),
    (dict(df=0), "df"),
    (dict(df="internal"), "df"),
    (dict(grouping="deciles"), "grouping"),
    (dict(view="classwise"), "view"),
])
def test_hosmer_lemeshow_bad_settings(kwargs, match):
    y, p = data_b()
    kwargs.setdefault("view", "positive")
    with pytest.raises(ValueError, match=match):
        hosmer_lemeshow(y, p, **kwargs)


def test_hosmer_lemeshow_undefined_cases():
    with pytest.raises(ValueError, match="mean score 0 or 1"):
        hosmer_lemeshow([0, 0, 1, 1, 0, 1], np.array([0, 0, 0.5, 0.6, 0.7, 0.8]),
                        view="positive", n_groups=3)
    with pytest.raises(ValueError, match="all scores are equal"):
        hosmer_lemeshow([0, 1, 1], np.full(3, 0.4), view="positive", grouping="hoslem")
    with pytest.raises(ValueError, match="df='in_sample'"):
        hosmer_lemeshow([0, 1, 1, 0], np.array([0.3, 0.3, 0.7, 0.7]), view="positive")
    with pytest.raises(ValueError, match="y_prob"):
        hosmer_lemeshow([0, 1], np.array([0.3, np.nan]), view="positive", n_groups=2)


# ------------------------------------------------------------------ Spiegelhalter
@pytest.mark.parametrize("data, z, pvalue", [
    (data_a, 0.5189031816, 0.603828259),     # rms::val.prob S:z, S:p
    (data_b, -0.9086842957, 0.3635167961),
    (data_c, -0.99343640, 0.32049733),
])
def test_spiegelhalter_matches_rms(data, z, pvalue):
    y, p = data()
    r = spiegelhalter_z(y, p, view="positive")
    assert r.statistic == pytest.approx(z, abs=1e-8)
    assert r.pvalue == pytest.approx(pvalue, abs=1e-8)


def test_spiegelhalter_is_standardised_brier():
    y, p = data_b()
    brier = np.mean((p - y) ** 2)
    mean0 = np.mean(p * (1 - p))
    var0 = np.sum((1 - 2 * p) ** 2 * p * (1 - p)) / len(p) ** 2
    assert spiegelhalter_z(y, p, view="positive").statistic == pytest.approx(
        (brier - mean0) / math.sqrt(var0), rel=1e-12)


def test_spiegelhalter_undefined():
    with pytest.raises(ValueError, match="undefined"):
        spiegelhalter_z([0, 1, 1], np.array([0.5, 0.5, 1.0]), view="positive")


def test_reject_checks_alpha():
    y, p = data_b()
    r = spiegelhalter_z(y, p, view="positive")
    assert r.reject(0.5) and not r.reject(0.05)
    with pytest.raises(ValueError, match="alpha"):
        r.reject(1.5)
    assert r.to_dict()["settings"]["test"] == "spiegelhalter_z"


def _calibrated_draws(seed, reps, n):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, size=(reps, n))
    y = (rng.uniform(size=(reps, n)) < p).astype(int)
    return p, y


def test_size_and_power():
    """Type-I error within 1.5 points of 5 % on calibrated data; power against over-confidence."""
    reps, n = 1500, 400
    p, y = _calibrated_draws(0, reps, n)
    hl = np.array([hosmer_lemeshow(y[r], p[r], view="positive", df="external").pvalue
                   for r in range(reps)])
    sz = np.array([spiegelhalter_z(y[r], p[r], view="positive").pvalue for r in range(reps)])
    # df="external": the scores were not fitted on these data, so the null is chi-square(G)
    assert abs(np.mean(hl < 0.05) - 0.05) < 0.015
    assert abs(np.mean(sz < 0.05) - 0.05) < 0.015
    rng = np.random.default_rng(1)
    q = rng.beta(2, 2, size=(200, 1000))
    t = (rng.uniform(size=q.shape) < 0.5 + 0.7 * (q - 0.5)).astype(int)   # scores too extreme
    assert np.mean([hosmer_lemeshow(t[r], q[r], view="positive").reject()
                    for r in range(200)]) > 0.8
    assert np.mean([spiegelhalter_z(t[r], q[r], view="positive").reject()
                    for r in range(200)]) > 0.5


# ------------------------------------------------------------------ decompositions
def test_brier_decomposition_reference_b():
    y, p = data_b()
    d = brier_decomposition(y, p, n_bins=10, closed="left")   # bins min(floor(10 p), 9)
    ref = dict(brier=0.1585191001, reliability=0.0088400414, resolution=0.0940287803,
               uncertainty=0.2451, within_variance=0.0008041179,
               within_covariance=0.0021962790)
    for k, v in ref.items():
        assert getattr(d, k) == pytest.approx(v, abs=1e-10), k


def _brute_brier_terms(p, y, idx):
    n = len(p)
    terms = dict(reliability=0.0, resolution=0.0, within_variance=0.0, within_covariance=0.0)
    for b in np.unique(idx):
        m = idx == b
        fb, ob = p[m].mean(), y[m].mean()
        terms["reliability"] += m.sum() * (fb - ob) ** 2 / n
        terms["resolution"] += m.sum() * (ob - y.mean()) ** 2 / n
        terms["within_variance"] += np.sum((p[m] - fb) ** 2) / n
        terms["within_covariance"] += 2 * np.sum((p[m] - fb) * (y[m] - ob)) / n
    return terms


@settings(max_examples=60, deadline=None)
@given(st.integers(5, 300), st.integers(1, 12), st.sampled_from(["uniform", "quantile"]),
       st.integers(0, 10_000))
def test_brier_identity_and_brute_force(n, n_bins, strategy, seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(size=n), rng.integers(1, 4))     # ties included
    y = (rng.uniform(size=n) < p).astype(int)
    n_bins = min(n_bins, n)
    d = brier_decomposition(y, p, n_bins=n_bins, strategy=strategy)
    assert d.reliability - d.resolution + d.uncertainty + d.within_variance \
        - d.within_covariance == pytest.approx(d.brier, abs=1e-12)
    from calkit.binning import assign_bins
    ref = _brute_brier_terms(p, y, assign_bins(p, d.table.edges))
    for k, v in ref.items():
        assert getattr(d, k) == pytest.approx(v, abs=1e-12), k


def test_calibration_refinement_reference_b():
    y, p = data_b()
    r = calibration_refinement(y, p)
    assert r.miscalibration == pytest.approx(0.0138911540, abs=1e-10)
    assert r.discrimination == pytest.approx(0.1004720539, abs=1e-10)
    assert r.uncertainty == pytest.approx(0.2451, abs=1e-12)
    log = calibration_refinement(y, p, score="log")
    assert log.score == pytest.approx(0.4794890905, abs=1e-10)
    assert log.miscalibration - log.discrimination + log.uncertainty == pytest.approx(log.score)


def _pav(values, weights):
    """Textbook pool-adjacent-violators (a loop), as an independent reference."""
    blocks = [[v, w, 1] for v, w in zip(values, weights, strict=True)]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            v0, w0, c0 = blocks[i]
            v1, w1, c1 = blocks.pop(i + 1)
            blocks[i] = [(v0 * w0 + v1 * w1) / (w0 + w1), w0 + w1, c0 + c1]
            i = max(i - 1, 0)
        else:
            i += 1
    return np.concatenate([[v] * c for v, _, c in blocks])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 200), st.integers(0, 10_000))
def test_calibration_refinement_pav_and_order_invariance(n, seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(size=n), 1)
    y = (rng.uniform(size=n) < p).astype(int)
    r = calibration_refinement(y, p)
    values, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
    ref = _pav(np.bincount(inv, weights=y) / counts, counts)[inv]
    np.testing.assert_allclose(r.recalibrated, ref, atol=1e-12)
    assert r.miscalibration >= -1e-15 and r.discrimination >= -1e-15
    perm = rng.permutation(n)
    r2 = calibration_refinement(y[perm], p[perm])
    assert r2.miscalibration == pytest.approx(r.miscalibration, abs=1e-14)


def test_signed_ece_parts():
    rng = np.random.default_rng(5)
    prob = rng.dirichlet(np.ones(5) * 0.5, size=3000)
    y = rng.integers(0, 5, 3000)
    r = signed_ece(y, prob, n_bins=12)
    assert r.ece == pytest.approx(ece(y, prob, n_bins=12), rel=1e-12)
    correct = prob.argmax(1) == y
    assert r.value == pytest.approx(prob.max(1).mean() - correct.mean(), abs=1e-12)
    gaps = np.nan_to_num(r.table.gap)
    w = r.table.count / r.table.n_samples
    assert r.over == pytest.approx(np.sum(w * np.maximum(gaps, 0)), abs=1e-12)
    assert r.to_dict()["settings"]["n_bins"] == 12


@pytest.mark.parametrize("fn", [brier_decomposition, calibration_refinement, signed_ece])
def test_decomposition_bad_inputs(fn):
    y, p = data_b()
    with pytest.raises(ValueError, match="view"):
        fn(y, p, view="classwise")
    with pytest.raises(ValueError, match="y_prob"):
        fn(y, p * 2, view="positive")
    with pytest.raises(ValueError, match="y_true"):
        fn(y[:-1], p, view="positive")
    if fn is not calibration_refinement:
        with pytest.raises(ValueError, match="n_bins"):
            fn(y, p, n_bins=0, view="positive")
        with pytest.raises(ValueError, match="strategy"):
            fn(y, p, strategy="equal", view="positive")
    else:
        with pytest.raises(ValueError, match="score"):
            fn(y, p, score="crps", view="positive")


def test_torch_input_gives_the_same_numbers():
    torch = pytest.importorskip("torch")
    y, p = data_b()
    for fn in (hosmer_lemeshow, spiegelhalter_z):
        a = fn(y, p, view="positive")
        b = fn(torch.as_tensor(y), torch.as_tensor(p), view="positive")
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert brier_decomposition(torch.as_tensor(y), torch.as_tensor(p)).reliability == \
        pytest.approx(brier_decomposition(y, p).reliability, rel=1e-12)


@pytest.mark.parametrize("fn", [hosmer_lemeshow, spiegelhalter_z, signed_ece])
def test_one_d_scores_need_their_view_said(fn):
    """As for the metrics: 1-D scores are a binary P(y=1) or a confidence, never guessed."""
    y, p = data_b()
    with pytest.raises(ValueError, match="view='confidence'"):
        fn(y, p)
    # (correct, confidence) pairs and the positive view are the same pairs for 1-D scores
    assert fn(y, p, view="confidence").settings["view"] == "confidence"
    a, b = fn(y, p, view="confidence"), fn(y, p, view="positive")
    assert float(getattr(a, "statistic", getattr(a, "value", 0))) == pytest.approx(
        float(getattr(b, "statistic", getattr(b, "value", 0))), rel=1e-12)
