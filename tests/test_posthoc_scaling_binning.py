"""ScalingBinning (Kumar, Liang & Ma 2019): brute-force reference, the paper's variance
advantage over histogram binning, argmax and floor guarantees, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from calkit import debiased_ece, softmax
from calkit.posthoc import HistogramBinning, ScalingBinning, TemperatureScaling, load_calibrator

K_SIM, T_TRUE = 4, 1.7


def _draw(rng, n, k=K_SIM):
    """Logits, labels drawn from softmax(z / T_TRUE), and the true P(top label right | z)."""
    z = rng.normal(size=(n, k)) * 2.5
    p_true = softmax(z / T_TRUE)
    y = (rng.random(n)[:, None] > np.cumsum(p_true, axis=1)).sum(axis=1)
    y = np.minimum(y, k - 1)
    return z, y, p_true[np.arange(n), z.argmax(1)]


# --------------------------------------------------------------------------- brute force
def _brute_force_top_label(z, y, n_bins, z_new):
    """The three steps written out with loops (authors' code: same data for every step)."""
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top = p.max(1)
    correct = (p.argmax(1) == y).astype(int)
    logit = np.log(top / (1 - top))
    clf = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(logit[:, None], correct)

    def scale(conf):
        return 1 / (1 + np.exp(-(clf.coef_[0, 0] * np.log(conf / (1 - conf))
                                 + clf.intercept_[0])))

    g = sorted(scale(top))
    size, extra = divmod(len(g), n_bins)  # np.array_split: the first `extra` parts are longer
    parts, start = [], 0
    for j in range(n_bins):
        stop = start + size + (1 if j < extra else 0)
        parts.append(g[start:stop])
        start = stop
    upper = [(parts[j][-1] + parts[j + 1][0]) / 2 for j in range(n_bins - 1)] + [1.0]
    means = []
    for j in range(n_bins):
        lo = upper[j - 1] if j else -np.inf
        members = [v for v in g if lo < v <= upper[j]]
        means.append(sum(members) / len(members))
    pn = np.exp(z_new - z_new.max(1, keepdims=True))
    pn /= pn.sum(1, keepdims=True)
    out = []
    for v in scale(pn.max(1)):
        j = next(i for i, u in enumerate(upper) if v <= u or i == n_bins - 1)
        out.append(means[j])
    return np.array(out), (clf.coef_[0, 0], clf.intercept_[0])


def test_matches_brute_force_on_a_small_case():
    rng = np.random.default_rng(3)
    z, y, _ = _draw(rng, 300)
    z_new = rng.normal(size=(50, K_SIM)) * 2.5
    expected, (a, b) = _brute_force_top_label(z, y, 7, z_new)
    sb = ScalingBinning(n_bins=7, prob_floor=0.0, ts_weight=0).fit(z, y)  # published
    np.testing.assert_allclose(sb.coef_[0], [a, b], rtol=1e-4)
    got = sb.predict_proba(z_new).max(axis=1)
    # where the argmax guard does not bind, the top-label output is the bin mean exactly
    p = softmax(z_new)
    part = np.sort(p, axis=1)
    bound = part[:, -2] / (1 - part[:, -1] + part[:, -2])
    free = expected > bound * (1 + 1e-6)
    assert free.sum() > 30
    np.testing.assert_allclose(got[free], expected[free], rtol=1e-6)
    assert len(np.unique(got[free].round(12))) <= 7
    # elsewhere the confidence is raised just enough for the top class to stay on top
    np.testing.assert_allclose(got[~free], np.maximum(expected, bound)[~free], rtol=1e-6)


def test_split_paper_uses_three_disjoint_thirds():
    rng = np.random.default_rng(4)
    z, y, _ = _draw(rng, 900)
    sb = ScalingBinning(n_bins=5, split="paper", random_state=7, prob_floor=0.0).fit(z, y)
    order = np.random.default_rng(7).permutation(900)
    first, second, third = (np.sort(p) for p in np.array_split(order, 3))
    # step 1 on the first third only: the same Platt map as fitting that third alone
    alone = ScalingBinning(n_bins=5, prob_floor=0.0).fit(z[first], y[first])
    np.testing.assert_allclose(sb.coef_, alone.coef_, rtol=1e-10)
    # steps 2 and 3 by hand: equal-mass edges of the second third, means over the third
    g = sb._scaled(z)[:, 0]
    s2 = np.sort(g[second])
    cuts = [len(c) for c in np.array_split(s2, 5)]
    ends = np.cumsum(cuts)[:-1]
    inner = (s2[ends - 1] + s2[ends]) / 2
    np.testing.assert_allclose(sb.edges_, np.concatenate([[0.0], inner, [1.0]]))
    g3 = g[third]
    idx = np.searchsorted(inner, g3, side="left")  # (a, b] bins
    means = np.array([g3[idx == j].mean() for j in range(5)])
    np.testing.assert_allclose(sb.values_, means, rtol=1e-12)


# --------------------------------------------------------------------------- the paper's claim
def _true_squared_ce(conf, p_correct):
    """E[(c - P(correct | c))^2] of an output taking finitely many values, from the truth."""
    values, inverse = np.unique(conf, return_inverse=True)
    weight = np.bincount(inverse) / len(conf)
    acc = np.bincount(inverse, p_correct) / np.bincount(inverse)
    return float(np.sum(weight * (values - acc) ** 2))


def test_lower_calibration_error_and_variance_than_histogram_binning():
    """Kumar et al. (2019), Sec. 4: with the same number of bins and samples, the
    scaling-binning output has lower variance than histogram binning (bin values are
    means of smooth scaled scores, not of 0/1 labels) and so a lower calibration error.
    Measured against the true P(correct | z) of simulated data over 10 calibration sets."""
    rng = np.random.default_rng(0)
    z_eval, y_eval, p_eval = _draw(rng, 20_000)
    ce = {"sb": [], "hb": []}
    outputs = {"sb": [], "hb": []}
    estimates = {"sb": [], "hb": []}
    for _ in range(10):
        z, y, _ = _draw(rng, 1000)
        for name, cal in (("sb", ScalingBinning(n_bins=30, ts_weight=0)),  # the estimators
                          ("hb", HistogramBinning(n_bins=30, ts_weight=0))):  # of the paper
            p = cal.fit(z, y).predict_proba(z_eval)
            conf = p.max(axis=1)
            ce[name].append(_true_squared_ce(conf.round(12), p_eval))
            outputs[name].append(conf[:2000])
            estimates[name].append(float(debiased_ece(y_eval, p)))
    variance = {k: np.var(np.array(v), axis=0).mean() for k, v in outputs.items()}
    assert variance["sb"] < variance["hb"] / 4
    assert np.mean(ce["sb"]) < np.mean(ce["hb"]) / 4
    # and so the debiased ECE measured on a fixed evaluation set varies less across
    # calibration sets (and is lower)
    assert np.var(estimates["sb"]) < np.var(estimates["hb"])
    assert np.mean(estimates["sb"]) < np.mean(estimates["hb"])


# --------------------------------------------------------------------------- guarantees
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), n_bins=st.integers(1, 12),
       multiclass=st.sampled_from(["top_label", "one_vs_rest"]),
       scaling=st.sampled_from(["platt", "temperature"]))
def test_rows_are_distributions_above_the_floor_and_top_label_keeps_the_argmax(
        seed, k, n_bins, multiclass, scaling):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(200, k)) * rng.uniform(0.5, 30)
    y = np.where(rng.random(200) < 0.7, z.argmax(1), rng.integers(0, k, 200))
    sb = ScalingBinning(n_bins=n_bins, multiclass=multiclass, scaling=scaling).fit(z, y)
    z_new = rng.normal(size=(100, k)) * rng.uniform(0.5, 60)
    p = sb.predict_proba(z_new)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert p.min() >= 1e-12 * (1 - 1e-9)
    if multiclass == "top_label":
        assert (p.argmax(axis=1) == z_new.argmax(axis=1)).all()
        assert (sb.predict(z_new) == z_new.argmax(axis=1)).all()


def test_extreme_logits_give_no_zero_or_nan():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(500, 10)) * 5
    y = z.argmax(1)
    y[:100] = rng.integers(0, 10, 100)
    sb = ScalingBinning().fit(z, y)
    z_new = np.array([[1000.0] + [0.0] * 9, [0.0] * 10, [-800.0] * 9 + [800.0]])
    p = sb.predict_proba(z_new)
    assert np.isfinite(p).all() and p.min() >= 1e-12 * (1 - 1e-9)
    assert p.argmax(1).tolist() == [0, 0, 9]


def test_temperature_scaling_step_is_temperature_scaling():
    rng = np.random.default_rng(2)
    z, y, _ = _draw(rng, 2000)
    sb = ScalingBinning(scaling="temperature").fit(z, y)
    assert sb.temperature_ == pytest.approx(TemperatureScaling().fit(z, y).temperature_)
    assert sb.coef_.tolist() == [[1.0, 0.0]]


def test_one_vs_rest_has_one_map_per_class():
    rng = np.random.default_rng(5)
    z, y, _ = _draw(rng, 1500)
    sb = ScalingBinning(n_bins=6, multiclass="one_vs_rest").fit(z, y)
    assert sb.coef_.shape == (K_SIM, 2) and sb.offsets_.shape == (K_SIM + 1, 2)
    # each class's map is the top-label construction applied to that class's score
    for c in range(K_SIM):
        values = sb.calibrate_scaled(sb._scaled(z)[:, c], c)
        assert len(np.unique(values)) <= 6


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    z, y, _ = _draw(rng, 800)
    for kw in ({}, {"multiclass": "one_vs_rest", "split": "paper"}):
        sb = ScalingBinning(n_bins=8, **kw).fit(z, y)
        sb.save(tmp_path / "sb.json")
        back = load_calibrator(tmp_path / "sb.json")
        assert type(back) is ScalingBinning and back.get_params() == sb.get_params()
        np.testing.assert_array_equal(back.predict_proba(z), sb.predict_proba(z))
        np.testing.assert_array_equal(clone(sb).fit(z, y).predict_proba(z), sb.predict_proba(z))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_bins": 0}, "n_bins"),
    ({"scaling": "beta"}, "scaling"),
    ({"multiclass": "all"}, "multiclass"),
    ({"split": "halves"}, "split"),
    ({"prob_floor": 0.5}, "prob_floor"),
    ({"prob_floor": -1e-3}, "prob_floor"),
    ({"n_bins": 500}, "n_bins"),
])
def test_bad_parameters_raise(kwargs, match):
    rng = np.random.default_rng(0)
    z, y, _ = _draw(rng, 100)
    with pytest.raises(ValueError, match=match):
        ScalingBinning(**kwargs).fit(z, y)


def test_wrong_number_of_classes_at_predict_raises():
    rng = np.random.default_rng(0)
    z, y, _ = _draw(rng, 100)
    sb = ScalingBinning(n_bins=4).fit(z, y)
    with pytest.raises(ValueError, match="features"):
        sb.predict_proba(np.zeros((3, K_SIM + 1)))
