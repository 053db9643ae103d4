"""KDE calibration errors: Mix-n-Match's KDE-ECE and Popordanoska et al.'s ECE^KDE.

Reference values on data set B are those of the papers' reference code
(shared/reference/calibration_tests_and_metrics.md, section 8); the brute-force
checks below evaluate the kernels sample by sample (no grid binning, scipy's
Beta / Dirichlet densities) and apply the reference's rules in plain loops.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from calkit import softmax
from calkit.metrics import KDECalibrationResult, KDEECEResult, canonical_kde_ece, kde_ece
from calkit.metrics.kde_ece import mixnmatch_bandwidth


def data_b():
    i = np.arange(1, 201)
    frac = lambda x: x - np.floor(x)  # noqa: E731
    p = 0.01 + 0.98 * frac(i * 0.6180339887498949)
    return (frac(i * 0.7548776662466927) < p ** 1.3).astype(int), p


def sample(n, k, seed, temperature=1.0, scale=2.0):
    """Probabilities and labels drawn from them, optionally sharpened (over-confident)."""
    rng = np.random.default_rng(seed)
    p = softmax(scale * rng.normal(size=(n, k)))
    y = (rng.uniform(size=(n, 1)) > p.cumsum(1)).sum(1).clip(0, k - 1)
    return y, softmax(np.log(p) / temperature)


# ------------------------------------------------------------------ Mix-n-Match KDE-ECE


def test_reference_values_b():
    # Same grid, kernel sampling and linear binning as the reference's KDEpy FFTKDE: only
    # float rounding separates the two (measured 1e-16), so 1e-10 is a real check.
    y, p = data_b()
    r1 = kde_ece(y, p, view="positive")
    assert float(r1) == pytest.approx(0.0722387755, abs=1e-10)
    assert r1.bandwidth == pytest.approx(0.0626021194, abs=1e-10)
    assert float(kde_ece(y, p, view="positive", order=2)) == pytest.approx(0.0063684542,
                                                                             abs=1e-10)
    # two columns: the reference reads p[:, 1] against y = 1 (not the top label)
    two = kde_ece(y, np.column_stack([1 - p, p]))
    assert two.settings["view"] == "positive" and float(two) == float(r1)


def _triweight(d, h):
    u = d / (3 * h)
    return np.clip(1 - u * u, 0, None) ** 3 * (35 / 32 / (3 * h))


def _exact_density(s, x, h):
    """Reflected triweight KDE at ``x`` by direct sums over the samples and their mirrors."""
    f = np.zeros_like(x)
    inside = (x > 0) & (x < 1)
    if s.size:
        pts = np.concatenate([s, np.where(s < 0.5, -s, 2 - s)])
        f[inside] = _triweight(x[inside, None] - pts[None, :], h).sum(1) / s.size
    return f


def brute_kde_ece(s, t, h, x, orders=(1, 2)):
    """The reference's rule, point by point, on exact (unbinned) densities at ``x``."""
    f1, f = _exact_density(s[t == 1], x, h), _exact_density(s, x, h)
    pi = t.mean()
    inside = (x >= 0) & (x <= 1)
    out = []
    for order in orders:
        integrand = np.zeros_like(x)
        for i in range(x.size):
            if max(f1[i], f[i]) > 1e-6:
                acc = min(pi * f1[i] / f[i], 1.0) if f[i] > 0 else 1.0
                integrand[i] = abs(x[i] - acc) ** order * f[i]
            elif i > 1:
                integrand[i] = integrand[i - 1]
        out.append(np.trapezoid(integrand[inside], x[inside])
                   / np.trapezoid(f[inside], x[inside]))
    return out


def test_matches_exact_kernel_sums_on_the_grid():
    # linear binning moves the density by O(spacing^2 |K''|), about 1e-6 relative here
    x = np.linspace(-0.6, 1.6, 2 ** 14)
    y, p = data_b()
    exact = brute_kde_ece(p, y.astype(float), mixnmatch_bandwidth(p, y), x)
    for order, value in zip((1, 2), exact, strict=True):
        assert float(kde_ece(y, p, view="positive", order=order)) == pytest.approx(value,
                                                                                   rel=1e-5)
    rng = np.random.default_rng(5)
    # two clusters: the densities vanish in (0.36, 0.64), where the integrand is carried on
    s = np.concatenate([rng.uniform(0.1, 0.3, 150), rng.uniform(0.7, 0.95, 150)])
    t = (rng.uniform(size=300) < s ** 2).astype(float)
    exact = brute_kde_ece(s, t, 0.02, x)
    gap = (x > 0.37) & (x < 0.63)
    assert np.all(_exact_density(s, x[gap], 0.02) == 0)
    for order, value in zip((1, 2), exact, strict=True):
        r = kde_ece(t.astype(int), s, view="confidence", order=order, bandwidth=0.02)
        assert float(r) == pytest.approx(value, rel=1e-5)


def test_grid_free_integral():
    # The continuous KDE-ECE (exact densities, a 2.7x finer trapezoid on all of [0, 1]) differs
    # from the reference's 2^14 grid (spacing 1.3e-4) mostly by the two end pieces of [0, 1]
    # that the grid misses, O(spacing) relative (measured 1.2e-4): that is what the grid
    # permits, so the check is at 3e-4.
    y, p = data_b()
    h = mixnmatch_bandwidth(p, y)
    c = np.linspace(0, 1, 20_001)
    c[0], c[-1] = 1e-12, 1 - 1e-12        # the one-sided limits at the ends
    f1, f = _exact_density(p[y == 1], c, h), _exact_density(p, c, h)
    acc = np.minimum(y.mean() * f1 / f, 1)
    continuous = np.trapezoid(np.abs(c - acc) * f, c) / np.trapezoid(f, c)
    assert float(kde_ece(y, p, view="positive")) == pytest.approx(continuous, rel=3e-4)


def kdepy_reference(s, t, order, h=None):
    """The reference convention written on KDEpy's FFTKDE (the package the paper's code uses)."""
    fftkde = pytest.importorskip("KDEpy").FFTKDE
    x = np.linspace(-0.6, 1.6, 2 ** 14)
    h = np.std(s[t == 1]) * (2 * s.size) ** -0.2 if h is None else h

    def dens(d):
        m = np.concatenate([-d[d < 0.5], d, 2 - d[d >= 0.5]])
        out = fftkde(bw=h, kernel="triweight").fit(m).evaluate(x)
        out[(x <= 0) | (x >= 1)] = 0
        return 2 * out

    f1, f = dens(s[t == 1]), dens(s)
    integrand = np.zeros_like(x)
    for i in range(x.size):
        if max(f1[i], f[i]) > 1e-6:
            with np.errstate(divide="ignore"):
                acc = min(t.mean() * f1[i] / f[i], 1.0)
            integrand[i] = abs(x[i] - acc) ** order * f[i]
        elif i > 1:
            integrand[i] = integrand[i - 1]
    inside = (x >= 0) & (x <= 1)
    return np.trapezoid(integrand[inside], x[inside]) / np.trapezoid(f[inside], x[inside])


@pytest.mark.parametrize("n,k,order", [(500, 10, 1), (2000, 3, 2), (3000, 2, 1)])
def test_matches_kdepy(n, k, order):
    y, p = sample(n, k, seed=n, temperature=0.7)
    r = kde_ece(y, p, order=order)
    if k == 2:
        s, t = p[:, 1], (y == 1).astype(float)
        assert r.settings["view"] == "positive"
    else:
        s, t = p.max(1), (p.argmax(1) == y).astype(float)
        assert r.settings["view"] == "top_label"
    assert float(r) == pytest.approx(kdepy_reference(s, t, order), rel=1e-9, abs=1e-12)


def test_views_and_top_label_default():
    y, p = sample(1000, 4, seed=1, temperature=0.6)
    top = kde_ece(y, p)
    pairs = kde_ece((p.argmax(1) == y).astype(int), p.max(1), view="confidence")
    assert top.settings["view"] == "top_label" and float(top) == float(pairs)
    yb, pb = sample(800, 2, seed=2)
    forced = kde_ece(yb, pb, view="top_label")
    assert float(forced) == float(kde_ece((pb.argmax(1) == yb).astype(int), pb.max(1),
                                          view="confidence"))


def test_invariances():
    y, p = sample(1500, 5, seed=3, temperature=0.8)
    ref = float(kde_ece(y, p))
    perm = np.random.default_rng(0).permutation(1500)
    assert float(kde_ece(y[perm], p[perm])) == pytest.approx(ref, rel=1e-12)
    assert float(kde_ece(np.eye(5)[y], p)) == ref          # one-hot labels


def test_result_carries_settings_and_curve():
    y, p = data_b()
    r = kde_ece(y, p, view="positive", order=2, bandwidth=0.08)
    assert isinstance(r, KDEECEResult) and r.bandwidth == 0.08
    s = r.settings
    assert (s["view"], s["order"], s["bandwidth_rule"], s["kernel"], s["n_samples"],
            s["n_positive"]) == ("positive", 2, "given", "triweight", 200, 86)
    assert r.grid.min() >= 0 and r.grid.max() <= 1
    assert r.grid.shape == r.curve.shape == r.density.shape
    assert r.density.mean() == pytest.approx(1.0)
    assert np.all((r.curve >= 0) & (r.curve <= 1))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["value"] == pytest.approx(float(r)) and d["settings"]["order"] == 2
    assert "KDE-ECE^2" in repr(r)


def test_no_positive_with_given_bandwidth():
    # acc = 0 everywhere: the KDE-ECE is the density-weighted mean score
    s = np.random.default_rng(0).uniform(0.2, 0.8, 400)
    r = kde_ece(np.zeros(400, int), s, view="confidence", bandwidth=0.05)
    x = np.linspace(-0.6, 1.6, 2 ** 14)
    f = _exact_density(s, x, 0.05)
    inside = (x >= 0) & (x <= 1)
    expected = np.trapezoid(x[inside] * f[inside], x[inside]) / np.trapezoid(f[inside],
                                                                              x[inside])
    assert float(r) == pytest.approx(expected, rel=1e-5)
    assert float(r) == pytest.approx(s.mean(), abs=5e-3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(order=3), "order"), (dict(order=1.5), "order"), (dict(bandwidth=0), "bandwidth"),
    (dict(bandwidth=-1.0), "bandwidth"), (dict(bandwidth="scott"), "bandwidth"),
    (dict(bandwidth=1e-5), "grid resolution"), (dict(n_grid=10), "n_grid"),
    (dict(view="classwise"), "view"),
])
def test_kde_ece_bad_settings(kwargs, match):
    y, p = sample(100, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        kde_ece(y, p, **kwargs)


def test_kde_ece_bad_data():
    y, p = data_b()
    with pytest.raises(ValueError, match="view="):
        kde_ece(y, p)                                           # 1-D needs a view
    with pytest.raises(ValueError, match="bandwidth"):
        kde_ece(np.zeros(200, int), p, view="positive")         # no positives for the rule
    with pytest.raises(ValueError, match="sum to 1"):
        kde_ece([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="y_prob"):
        kde_ece([0, 1], np.array([0.2, 1.3]), view="positive")


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 400), st.integers(0, 10_000), st.sampled_from([1, 2]),
       st.floats(0.3, 3.0))
def test_kde_ece_in_unit_interval(n, seed, order, temperature):
    y, p = sample(n, 4, seed, temperature)
    v = float(kde_ece(y, p, order=order, bandwidth=0.05))
    assert 0.0 <= v <= 1.0


def test_calibrated_small_miscalibrated_large():
    rng = np.random.default_rng(11)
    s = rng.uniform(size=50_000)
    t = (rng.uniform(size=50_000) < s).astype(int)
    assert float(kde_ece(t, s, view="positive")) < 0.01
    assert float(kde_ece(t, s ** 3, view="positive")) > 0.15   # under-confident map


def test_torch_input_matches_numpy():
    torch = pytest.importorskip("torch")
    y, p = sample(600, 3, seed=4, temperature=0.7)
    a = kde_ece(torch.from_numpy(y), torch.from_numpy(p))
    assert float(a) == float(kde_ece(y, p))
    b = canonical_kde_ece(torch.from_numpy(y), torch.from_numpy(p))
    assert float(b) == float(canonical_kde_ece(y, p))


def test_real_cifar10_close_to_binned_ece(cifar10_ce_test):
    from calkit import ece
    logits, labels = cifar10_ce_test
    p = softmax(logits.astype(np.float64))
    v, e = float(kde_ece(labels, p)), float(ece(labels, p))
    assert v == pytest.approx(e, abs=0.01) and v > 0.01


# ------------------------------------------------------------------ Popordanoska ECE^KDE


def test_canonical_reference_values_b():
    # Transcription of ece_kde.get_ece_kde on one-column input (2 x the binary error).
    y, p = data_b()
    assert float(canonical_kde_ece(y, p, bandwidth=0.05, view="positive")) == pytest.approx(
        0.1408722817, abs=1e-10)
    assert float(canonical_kde_ece(y, p, bandwidth=0.1, view="positive")) == pytest.approx(
        0.1399546617, abs=1e-10)
    r2 = canonical_kde_ece(y, p, bandwidth=0.1, order=2, view="positive")
    assert float(r2) == pytest.approx(0.0106983779, abs=1e-10) and r2.settings["factor"] == 2
    # the one-column 2x convention is the canonical error of [1 - p, p] (Beta = 2-D Dirichlet)
    two = canonical_kde_ece(y, np.column_stack([1 - p, p]), bandwidth=0.1, order=2)
    assert two.settings["view"] == "canonical" and float(two) == pytest.approx(float(r2),
                                                                               rel=1e-12)
    assert float(canonical_kde_ece(y, p, bandwidth=0.1, order=2, view="classwise")) == \
        pytest.approx(float(r2), rel=1e-12)


def brute_loo(points, targets, h, density):
    """``r_i`` with kernel ``density(x_i, centre_j)`` by a double loop."""
    n = len(points)
    r = np.zeros((n, targets.shape[1]))
    for i in range(n):
        k = np.array([density(points[i], points[j]) if j != i else 0.0 for j in range(n)])
        r[i] = k @ targets / k.sum()
    return r


def _beta(h):
    return lambda x, c: stats.beta.pdf(x, c / h + 1, (1 - c) / h + 1)


def test_canonical_brute_force():
    y, p = sample(40, 3, seed=7, temperature=0.7)
    h, order = 0.15, 1.5
    onehot = np.eye(3)[y]
    r = brute_loo(p, onehot, h, lambda x, c: stats.dirichlet.pdf(x, c / h + 1))
    got = canonical_kde_ece(y, p, bandwidth=h, order=order)
    assert np.allclose(got.recalibrated, r, rtol=1e-9, atol=1e-12)
    assert float(got) == pytest.approx(np.mean((np.abs(r - p) ** order).sum(1)), rel=1e-9)
    # class-wise: a Beta kernel per column, sum over classes of the mean error
    per = [np.mean(np.abs(brute_loo(p[:, c], onehot[:, [c]], h, _beta(h))[:, 0] - p[:, c])
                   ** order) for c in range(3)]
    cw = canonical_kde_ece(y, p, bandwidth=h, order=order, view="classwise")
    assert np.allclose(cw.per_class, per, rtol=1e-9) and float(cw) == pytest.approx(sum(per))
    # top-label: a Beta kernel on the confidence against correctness, no factor 2
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    rt = brute_loo(conf, correct[:, None], h, _beta(h))[:, 0]
    top = canonical_kde_ece(y, p, bandwidth=h, order=order, view="top_label")
    assert float(top) == pytest.approx(np.mean(np.abs(rt - conf) ** order), rel=1e-9)
    assert float(canonical_kde_ece(correct, conf, bandwidth=h, order=order,
                                   view="confidence")) == pytest.approx(float(top), rel=1e-12)


def test_canonical_blocks_and_small_bandwidth(monkeypatch):
    # several row blocks give the same numbers; a tiny bandwidth stays finite (log space)
    import sys
    mod = sys.modules["calkit.metrics.kde_ece"]   # the name calkit.metrics.kde_ece is the function
    y, p = sample(300, 4, seed=8)
    whole = canonical_kde_ece(y, p, bandwidth=0.05)
    monkeypatch.setattr(mod, "_BLOCK_ELEMENTS", 300 * 7)
    assert float(canonical_kde_ece(y, p, bandwidth=0.05)) == pytest.approx(float(whole),
                                                                            rel=1e-12)
    tiny = canonical_kde_ece(y, p, bandwidth=1e-4)
    assert np.isfinite(float(tiny)) and np.all(np.isfinite(tiny.recalibrated))


def test_canonical_zeros_allowed():
    p = np.array([[1.0, 0.0], [0.7, 0.3], [0.2, 0.8], [0.0, 1.0], [0.4, 0.6]])
    y = np.array([0, 0, 1, 1, 1])
    r = canonical_kde_ece(y, p, bandwidth=0.2)
    assert np.isfinite(float(r)) and np.allclose(r.recalibrated.sum(1), 1)


def test_canonical_invariances_and_result():
    y, p = sample(400, 3, seed=9, temperature=0.7)
    r = canonical_kde_ece(y, p, bandwidth=0.1)
    perm = np.random.default_rng(1).permutation(400)
    assert float(canonical_kde_ece(y[perm], p[perm], bandwidth=0.1)) == pytest.approx(
        float(r), rel=1e-12)
    assert float(canonical_kde_ece(np.eye(3)[y], p, bandwidth=0.1)) == float(r)
    assert isinstance(r, KDECalibrationResult) and r.settings["kernel"] == "dirichlet"
    d = json.loads(json.dumps(r.to_dict()))
    assert d["value"] == pytest.approx(float(r)) and d["settings"]["view"] == "canonical"


@settings(max_examples=20, deadline=None)
@given(st.integers(5, 150), st.integers(0, 10_000), st.floats(0.3, 3.0),
       st.sampled_from([1.0, 2.0]), st.sampled_from([0.02, 0.1, 0.5]))
def test_canonical_bounds(n, seed, temperature, order, h):
    y, p = sample(n, 3, seed, temperature)
    assert 0.0 <= float(canonical_kde_ece(y, p, bandwidth=h, order=order)) <= 2.0
    assert 0.0 <= float(canonical_kde_ece(y, p, bandwidth=h, order=order,
                                          view="top_label")) <= 1.0


def test_canonical_calibrated_small_miscalibrated_large():
    # the Dirichlet-kernel estimate has a bias of its own (0.07 here on calibrated data)
    y, p = sample(2000, 3, seed=12)
    calibrated = float(canonical_kde_ece(y, p, bandwidth=0.05))
    sharp = float(canonical_kde_ece(y, softmax(3 * np.log(p)), bandwidth=0.05))
    flat = float(canonical_kde_ece(y, softmax(0.3 * np.log(p)), bandwidth=0.05))
    assert calibrated < 0.1 and min(sharp, flat) > 2.5 * calibrated


@pytest.mark.parametrize("kwargs,match", [
    (dict(bandwidth=0), "bandwidth"), (dict(bandwidth=float("nan")), "bandwidth"),
    (dict(order=0.5), "order"), (dict(order=-1), "order"), (dict(view="marginal"), "view"),
    (dict(max_samples=50), "max_samples"), (dict(max_samples=1), "max_samples"),
])
def test_canonical_bad_settings(kwargs, match):
    y, p = sample(100, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        canonical_kde_ece(y, p, **kwargs)


def test_canonical_bad_data():
    y, p = data_b()
    with pytest.raises(ValueError, match="view="):
        canonical_kde_ece(y, p)
    with pytest.raises(ValueError, match="2 samples"):
        canonical_kde_ece([1], np.array([[0.3, 0.7]]))
    with pytest.raises(ValueError, match="binary"):
        canonical_kde_ece([0, 1, 2], np.eye(3), view="positive")


def test_results_export_strict_json_frame_and_html():
    y, p = sample(300, 3, seed=13, temperature=0.7)
    for r in (kde_ece(y, p), canonical_kde_ece(y, p), canonical_kde_ece(y, p, view="classwise")):
        d = r.to_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d
        assert "<table>" in r._repr_html_()
    pytest.importorskip("pandas")
    frame = kde_ece(y, p).to_frame()
    assert list(frame.columns) == ["grid", "curve", "residual", "density"]
    assert canonical_kde_ece(y, p).to_frame().shape[0] == 1


def test_bandwidth_rule_checks_its_arrays():
    assert mixnmatch_bandwidth(np.array([0.1, 0.5, 0.9]), np.array([1, 0, 1])) == \
        pytest.approx(0.4 * 6 ** -0.2)
    with pytest.raises(ValueError, match="one length"):
        mixnmatch_bandwidth(np.array([0.1, 0.5]), np.array([1, 0, 1]))
