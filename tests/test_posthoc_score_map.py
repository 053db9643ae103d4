"""Spline calibration, histogram binning and isotonic calibration against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from sklearn.isotonic import IsotonicRegression

from calkit.posthoc._score_map import rescale_top_label
from calkit.posthoc.histogram import HistogramBinning
from calkit.posthoc.isotonic import IsotonicCalibration
from calkit.posthoc.spline import SplineCalibration, fit_spline_map


def _logits(n=3000, k=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    y = np.where(rng.random(n) < 0.6, z.argmax(1), rng.integers(0, k, n))
    return z, y


# ----------------------------------------------------------------------------- spline
def _reference_spline_fit(scores, labels, n_knots=6):
    """Gupta et al.'s recalibrate.py / utilities/spline.py, restated from the reference notes.

    Natural cubic spline by the tridiagonal second-derivative system and the explicit
    segment formulas, design matrix built column by column, least squares on the knot
    values; calibrated score = S'(t_i) + score_i.
    """
    order = np.argsort(scores, kind="stable")
    s, t = scores[order], labels[order]
    n = len(s)
    diff = np.cumsum(t) / n - np.cumsum(s) / n
    x = np.linspace(0, 1, n)
    kx = np.linspace(0, 1, n_knots)
    h = kx[1] - kx[0]

    def second_derivatives(ky):
        m = np.zeros(n_knots)
        a = np.zeros((n_knots - 2, n_knots - 2))
        for i in range(n_knots - 2):
            a[i, i] = 4.0
            if i > 0:
                a[i, i - 1] = 1.0
            if i < n_knots - 3:
                a[i, i + 1] = 1.0
        rhs = 6 / h ** 2 * (ky[:-2] - 2 * ky[1:-1] + ky[2:])
        m[1:-1] = np.linalg.solve(a, rhs)
        return m

    j = np.clip(np.floor(x / h).astype(int), 0, n_knots - 2)
    u = x - j * h

    def evaluate(ky, derivative):
        m = second_derivatives(ky)
        if derivative:
            return (m[j] * (-u ** 2 / (2 * h) + u - h / 3) + m[j + 1] * (u ** 2 / (2 * h) - h / 6)
                    + (ky[j + 1] - ky[j]) / h)
        return (m[j] * (-u ** 3 / (6 * h) + u ** 2 / 2 - h * u / 3)
                + m[j + 1] * (u ** 3 / (6 * h) - h * u / 6)
                + ky[j] * (1 - u / h) + ky[j + 1] * (u / h))

    design = np.column_stack([evaluate(e, False) for e in np.eye(n_knots)])
    ky = np.linalg.lstsq(design, diff, rcond=-1)[0]
    return s, evaluate(ky, True) + s


def test_spline_map_matches_the_reference_solver():
    rng = np.random.default_rng(0)
    s = rng.uniform(0.3, 1.0, 2000)
    t = (rng.random(2000) < s ** 2).astype(float)
    x_ref, acc_ref = _reference_spline_fit(s, t)
    x, acc = fit_spline_map(s, t)
    np.testing.assert_array_equal(x, x_ref)  # distinct scores: one node each
    np.testing.assert_allclose(acc, acc_ref, atol=1e-10)


def test_spline_recovers_a_known_miscalibration():
    rng = np.random.default_rng(1)
    s = rng.uniform(0.0, 1.0, 5000)
    t = (rng.random(5000) < s ** 2).astype(float)  # P(correct | s) = s^2
    x, acc = fit_spline_map(s, t)
    test = rng.uniform(0.05, 0.95, 1000)
    calibrated = np.clip(np.interp(test, x, acc), 0, 1)
    assert np.mean(np.abs(calibrated - test ** 2)) < 0.03  # the reference notes: 0.013
    assert np.mean(np.abs(test - test ** 2)) > 0.15


def test_spline_ties_are_merged_and_order_does_not_matter():
    rng = np.random.default_rng(2)
    s = np.round(rng.uniform(0.2, 1, 1000), 2)
    t = (rng.random(1000) < s).astype(float)
    x, acc = fit_spline_map(s, t)
    assert len(x) == len(np.unique(s))
    perm = rng.permutation(1000)
    x2, acc2 = fit_spline_map(s[perm], t[perm])
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(acc, acc2, atol=1e-12)


def test_spline_calibration_full_vector_rule():
    z, y = _logits()
    sp = SplineCalibration(ts_weight=0).fit(z, y)  # the map alone
    p = softmax(z, axis=1)
    q = sp.predict_proba(z)
    top = p.argmax(1)
    rows = np.arange(len(z))
    x, acc = fit_spline_map(p.max(1), (top == y).astype(float))
    np.testing.assert_allclose(q[rows, top], np.clip(np.interp(p.max(1), x, acc), 0, 1),
                               atol=1e-12)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-12)
    # the other classes keep their proportions
    others = p.copy()
    others[rows, top] = 0
    q_others = q.copy()
    q_others[rows, top] = 0
    ratio = q_others / np.where(others > 0, others, 1)
    mask = others > 1e-12
    np.testing.assert_allclose(ratio[mask], np.broadcast_to(
        ((1 - q[rows, top]) / others.sum(1))[:, None], ratio.shape)[mask], rtol=1e-9)


def test_rescale_top_label_edge_cases():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.4, 0.35, 0.15]])
    out = rescale_top_label(p, np.array([0.7, 0.2, 0.3]))
    third = 1 / 3
    # row 0: proportional (the zeros share equally); row 1: c below 1/K is raised to 1/K;
    # row 2: c = 0.3 < 1/K as well; the top class stays the (strict) largest in every row
    np.testing.assert_allclose(out, [[0.7, 0.15, 0.15], [third, third, third],
                                     [third, third, third]], atol=1e-9)
    np.testing.assert_array_equal(out.argmax(1), [0, 0, 0])
    # water-filling by hand: the runner-up 0.35 * 0.7 / 0.6 = 0.408 > c is capped at c, the
    # remaining 1 - 0.3 - 0.3 = 0.4 goes to 0.15 : 0.1, i.e. 0.24 and 0.16
    out = rescale_top_label(np.array([[0.4, 0.35, 0.15, 0.1]]), np.array([0.3]))
    np.testing.assert_allclose(out, [[0.3, 0.3, 0.24, 0.16]], atol=1e-8)
    assert out[0, 0] > out[0, 1]
    # the floor: exact zeros get it, taken from the others in proportion
    out = rescale_top_label(np.array([[0.9, 0.1, 0.0]]), np.array([0.95]), floor=1e-3)
    np.testing.assert_allclose(out, [[0.95, 0.049, 1e-3]], atol=1e-12)
    with pytest.raises(ValueError, match="floor must be"):
        rescale_top_label(p, np.array([0.7, 0.2, 0.3]), floor=0.5)


def _reference_share(p_row, c, floor):
    """One row by root-finding: others clip(lam p_k, floor, c / (1 + margin)) summing to 1 - c."""
    from scipy.optimize import brentq

    from calkit.posthoc._score_map import TIE_MARGIN

    k = len(p_row)
    top = int(np.argmax(p_row))
    c = float(np.clip(c, (1 + TIE_MARGIN) / k, 1 - (k - 1) * floor))
    cap = c / (1 + TIE_MARGIN)
    q = np.delete(np.maximum(p_row, np.finfo(float).tiny), top)

    def excess(log_lam):
        return np.clip(np.exp(np.minimum(log_lam + np.log(q), 1.0)), floor, cap).sum() - (1 - c)

    if excess(-700) >= 0:  # c = 1 - (K - 1) floor: every other class gets the floor
        return c, np.insert(np.full(k - 1, floor), top, c)
    log_lam = brentq(excess, -700, 1500, xtol=1e-14)
    return c, np.insert(np.clip(np.exp(log_lam + np.log(q)), floor, cap), top, c)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.integers(1, 20), st.sampled_from([0.0, 1e-12, 1e-4]),
       st.integers(0, 2 ** 32 - 1))
def test_rescale_top_label_properties(k, n, floor, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), size=n)
    p[rng.random(p.shape) < 0.2] = 0.0  # exact zeros (underflowed softmax)
    p[np.arange(n), rng.integers(0, k, n)] += 0.01  # no all-zero row
    p /= p.sum(1, keepdims=True)
    c = rng.random(n)
    out = rescale_top_label(p, c, floor)
    rows, top = np.arange(n), p.argmax(1)
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-12)
    assert out.min() >= floor * (1 - 1e-12)
    np.testing.assert_array_equal(out.argmax(1), top)  # the prediction never moves
    others = out.copy()
    others[rows, top] = -np.inf
    assert np.all(others.max(1) < out[rows, top])
    for i in range(n):
        c_i, expected = _reference_share(p[i], c[i], floor)
        assert out[i, top[i]] == c_i
        np.testing.assert_allclose(out[i], expected, atol=1e-10)


def _tie_free_logits(draw_seed, n, k):
    rng = np.random.default_rng(draw_seed)
    z = rng.normal(size=(n, k)) * rng.uniform(0.5, 6)
    y = np.where(rng.random(n) < 0.5, z.argmax(1), rng.integers(0, k, n))
    return z, y


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(2, 12),
       st.sampled_from(["isotonic", "histogram", "spline"]))
def test_top_label_calibrators_keep_the_predicted_class(seed, k, method):
    cls = {"isotonic": IsotonicCalibration, "histogram": HistogramBinning,
           "spline": SplineCalibration}[method]
    z, y = _tie_free_logits(seed, 300, k)
    cal = cls().fit(z, y)
    z_new, _ = _tie_free_logits(seed + 1, 200, k)
    q = cal.predict_proba(z_new)
    np.testing.assert_array_equal(q.argmax(1), z_new.argmax(1))
    np.testing.assert_array_equal(cal.predict(z_new), z_new.argmax(1))
    assert q.min() >= 1e-12 * (1 - 1e-9)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-12)
    assert cal.accuracy_change_ == 0.0


def test_one_vs_rest_records_its_accuracy_change_and_floors():
    z, y = _logits(k=3)
    y = np.where(y == 2, 0, y)  # class 2 never seen: its map is 0 everywhere
    iso = IsotonicCalibration(multiclass="one_vs_rest").fit(z, y)
    q = iso.predict_proba(z)
    expected = np.mean(q.argmax(1) == y) - np.mean(z.argmax(1) == y)
    assert iso.accuracy_change_ == pytest.approx(expected, abs=1e-15)
    assert iso.accuracy_change_ != 0.0  # class 2 is never predicted any more
    np.testing.assert_allclose(q[:, 2], 1e-12, rtol=1e-9)


# ----------------------------------------------------------------------------- histogram
def _brute_histogram(scores, targets, edges, closed):
    values = np.empty(len(edges) - 1)
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        if closed == "right":
            member = (scores > lo) & (scores <= hi) if b > 0 else (scores <= hi)
        else:
            member = (scores >= lo) & (scores < hi) if b < len(edges) - 2 else (scores >= lo)
        values[b] = targets[member].mean() if member.any() else (lo + hi) / 2
    return values


@pytest.mark.parametrize("closed", ["right", "left"])
def test_histogram_uniform_bins_match_a_brute_force_loop(closed):
    z, y = _logits()
    hb = HistogramBinning(n_bins=10, strategy="uniform", closed=closed).fit(z, y)
    p = softmax(z, axis=1)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.arange(11) / 10
    np.testing.assert_array_equal(hb.nodes_x_, edges)
    np.testing.assert_allclose(hb.nodes_y_, _brute_histogram(conf, correct, edges, closed),
                               atol=1e-12)
    # confidence never drops below 1/K = 0.25, so the first two bins are empty: midpoints
    np.testing.assert_allclose(hb.nodes_y_[:2], [0.05, 0.15], rtol=1e-15)


def test_histogram_quantile_bins_have_equal_mass_and_bin_accuracy():
    z, y = _logits(n=3000)
    hb = HistogramBinning(n_bins=15).fit(z, y)
    p = softmax(z, axis=1)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = hb.nodes_x_
    np.testing.assert_allclose(hb.nodes_y_, _brute_histogram(conf, correct, edges, "right"),
                               atol=1e-12)
    counts = np.histogram(conf, edges)[0]
    assert counts.min() == counts.max() == 200
    calibrated = hb.calibrate_scores(conf)
    for v in np.unique(calibrated):  # each bin's samples are mapped to their own accuracy
        assert correct[calibrated == v].mean() == pytest.approx(v, abs=1e-12)


def test_histogram_one_vs_rest_renormalises_per_class_maps():
    z, y = _logits(k=3)
    hb = HistogramBinning(n_bins=5, strategy="uniform", multiclass="one_vs_rest",
                          ts_weight=0).fit(z, y)  # the map alone: the paper's estimator
    p = softmax(z, axis=1)
    edges = np.arange(6) / 5
    raw = np.column_stack([
        _brute_histogram(p[:, k], (y == k).astype(float), edges, "right")[
            np.clip(np.ceil(p[:, k] * 5).astype(int) - 1, 0, 4)] for k in range(3)])
    np.testing.assert_allclose(hb.predict_proba(z), raw / raw.sum(1, keepdims=True),
                               atol=1e-12)


# ----------------------------------------------------------------------------- isotonic
def test_isotonic_top_label_equals_sklearn_isotonic_regression():
    z, y = _logits()
    iso = IsotonicCalibration(ts_weight=0).fit(z, y)  # the map alone
    p = softmax(z, axis=1)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(conf, correct)
    z_new, _ = _logits(seed=5)
    p_new = softmax(z_new, axis=1)
    np.testing.assert_allclose(iso.calibrate_scores(p_new.max(1)), ref.predict(p_new.max(1)),
                               atol=1e-12)
    q = iso.predict_proba(z_new)
    np.testing.assert_allclose(q.max(1), np.maximum(ref.predict(p_new.max(1)), q.max(1)))
    np.testing.assert_allclose(q[np.arange(len(q)), p_new.argmax(1)],
                               ref.predict(p_new.max(1)), atol=1e-12)


def test_isotonic_one_vs_rest_absent_class_maps_to_zero():
    z, y = _logits(k=3)
    y = np.where(y == 2, 0, y)  # class 2 never seen
    iso = IsotonicCalibration(multiclass="one_vs_rest").fit(z, y)
    q = IsotonicCalibration(multiclass="one_vs_rest", floor=0.0).fit(z, y).predict_proba(z)
    assert np.all(q[:, 2] == 0)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-12)
    assert iso.predict_proba(z)[:, 2].min() > 0  # the default floor


def test_rescale_top_label_subnormal_rest_does_not_overflow():
    """Before: a row whose other classes summed to a subnormal number (3e-310) overflowed
    the proportional scale (1 - c) / rest (found by the mixture's hypothesis test)."""
    import warnings

    from calkit.posthoc._score_map import rescale_top_label

    p = np.array([[1.0, 3e-310, 0.0], [1.0, 5e-324, 0.0], [0.7, 0.2, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rescale_top_label(p, np.array([0.9, 0.95, 0.8]), floor=1e-12)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-15)
    assert (out.argmax(axis=1) == 0).all() and out.min() >= 1e-12
    np.testing.assert_allclose(out[:, 0], [0.9, 0.95, 0.8])
