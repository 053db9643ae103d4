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
    sp = SplineCalibration().fit(z, y)
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
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    out = rescale_top_label(p, np.array([0.7, 0.2]))
    np.testing.assert_allclose(out, [[0.7, 0.15, 0.15], [0.2, 0.8, 0.0]])


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
    hb = HistogramBinning(n_bins=5, strategy="uniform", multiclass="one_vs_rest").fit(z, y)
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
    iso = IsotonicCalibration().fit(z, y)
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
    q = iso.predict_proba(z)
    assert np.all(q[:, 2] == 0)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(1, 20), st.integers(0, 2 ** 32 - 1))
def test_rescale_top_label_properties(k, n, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), size=n)
    c = rng.random(n)
    out = rescale_top_label(p, c)
    rows = np.arange(n)
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-12)
    assert out.min() >= 0
    np.testing.assert_array_equal(out[rows, p.argmax(1)], c)
