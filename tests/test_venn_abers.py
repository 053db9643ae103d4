"""Venn-Abers predictors: the fast interval against brute force, the calibrator's API.

References: the worked example of the reference note (section 10: the same numbers
as two scikit-learn isotonic fits per test score and ``venn-abers`` 1.5.4), a
brute-force IVAP (two ``IsotonicRegression`` fits per test score, ties pooled by
scikit-learn), hand-built CVAP merges and Manokhin's pairwise formula, and the
``venn-abers`` package itself (optional).
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression

import calkit.posthoc.venn_abers as va_module
from calkit.posthoc import VennAbersCalibration, load_calibrator, venn_abers_interval


def brute_force(scores, targets, test, weights=None):
    """``(p0, p1)`` by two isotonic fits per test score (the definition)."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, float)
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, float)
    out = np.empty((len(test), 2))
    for r, s in enumerate(test):
        for label in (0, 1):
            iso = IsotonicRegression(out_of_bounds="clip").fit(
                np.r_[scores, s], np.r_[targets, label], np.r_[w, 1.0])
            out[r, label] = iso.predict([s])[0]
    return out[:, 0], out[:, 1]


def _tied_data(rng, n, levels):
    s = rng.integers(0, levels, n).astype(float) / levels
    y = (rng.random(n) < 0.2 + 0.6 * s).astype(float)
    return s, y


def _logits(n=400, k=3, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.5
    y = np.where(rng.random(n) < 0.65, z.argmax(1), rng.integers(0, k, n))
    return z, y


# ---------------------------------------------------------------------------- the interval
def test_worked_example_exactly():
    s = [0.1, 0.2, 0.3, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95]
    y = [0, 0, 1, 0, 0, 1, 0, 1, 1, 1]
    test = [0.05, 0.30, 0.50, 0.65, 0.99]
    p0, p1 = venn_abers_interval(s, y, test)
    want = [(0, Fraction(1, 3)), (Fraction(1, 4), Fraction(1, 2)),
            (Fraction(1, 4), Fraction(2, 3)), (Fraction(1, 3), Fraction(2, 3)), (Fraction(3, 4), 1)]
    np.testing.assert_allclose(p0, [float(a) for a, _ in want], rtol=0, atol=1e-15)
    np.testing.assert_allclose(p1, [float(b) for _, b in want], rtol=0, atol=1e-15)
    merged = VennAbersCalibration(floor=0.0).fit(np.array(s), y).predict_proba(np.array(test))
    np.testing.assert_allclose(merged, [float(b / (1 - a + b)) for a, b in want], atol=1e-15)
    np.testing.assert_allclose(merged[2], 0.470588, atol=1e-6)  # the note's printed value


def test_matches_two_isotonic_fits_per_test_score(monkeypatch):
    rng = np.random.default_rng(3)
    for trial in range(24):
        n = int(rng.integers(1, 50))
        s, y = _tied_data(rng, n, int(rng.integers(1, 16)))
        w = None if trial % 3 == 0 else rng.integers(1, 4, n).astype(float)
        if trial % 3 == 2:
            w = w * 0.05  # light points: the test object's pool reaches far (long walks)
        c = np.unique(s)
        test = np.r_[c, c + 0.5 / 16, -1.0, 2.0]  # every tie group, every gap, both ends
        want = brute_force(s, y, test, w)
        for linear in (16, 1):  # 1: every walk past one step goes through binary lifting
            monkeypatch.setattr(va_module, "_LINEAR", linear)
            got = venn_abers_interval(s, y, test, sample_weight=w)
            np.testing.assert_allclose(got[0], want[0], atol=1e-12)
            np.testing.assert_allclose(got[1], want[1], atol=1e-12)


def test_long_bridge_walks_on_light_weights(monkeypatch):
    """Slow drifts with tiny weights: bridges many hull vertices away (binary lifting)."""
    rng = np.random.default_rng(7)
    s = np.arange(300.0)
    y = (rng.random(300) < np.linspace(0.05, 0.95, 300)).astype(float)
    w = np.full(300, 0.01)
    test = np.r_[s, s + 0.5][::13]
    want = brute_force(s, y, test, w)
    for linear in (16, 2):
        monkeypatch.setattr(va_module, "_LINEAR", linear)
        got = venn_abers_interval(s, y, test, sample_weight=w)
        np.testing.assert_allclose(np.c_[got], np.c_[want], atol=1e-12)


def test_zero_weights_remove_points_and_an_empty_set_gives_the_widest_interval():
    s, y = np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1])
    w = np.array([1.0, 0.0, 2.0, 1.0])
    got = venn_abers_interval(s, y, [0.3, 0.4, 0.9], sample_weight=w)
    keep = w > 0
    want = venn_abers_interval(s[keep], y[keep], [0.3, 0.4, 0.9], sample_weight=w[keep])
    np.testing.assert_array_equal(np.c_[got], np.c_[want])
    c, p0, p1 = va_module._fit_slots(np.empty(0), np.empty(0), None)  # a pair never seen
    assert c.size == 0 and p0.tolist() == [0.0] and p1.tolist() == [1.0]  # the test alone


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1)), min_size=1, max_size=30),
       st.lists(st.integers(-1, 7), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_interval_properties(cal, test, rnd):
    s = np.array([a for a, _ in cal], float)
    y = np.array([b for _, b in cal], float)
    t = np.array(test, float)
    p0, p1 = venn_abers_interval(s, y, t)
    assert np.all(p0 <= p1) and np.all(p0 >= 0) and np.all(p1 <= 1)
    assert np.all(p1 > 0) and np.all(p0 < 1)  # the test object is in its own pool
    order = list(range(len(s)))
    rnd.shuffle(order)
    q0, q1 = venn_abers_interval(s[order], y[order], t)  # calibration order plays no part
    np.testing.assert_array_equal(q0, p0)
    np.testing.assert_array_equal(q1, p1)
    cal_est = VennAbersCalibration(floor=0.0).fit(s, y.astype(int))
    p = cal_est.predict_proba(t)
    assert np.all(p >= p0 - 1e-15) and np.all(p <= p1 + 1e-15)
    assert np.all(np.diff(cal_est.predict_interval(np.sort(t)), axis=0) >= 0)  # monotone


# ---------------------------------------------------------------------------- the calibrator
def test_binary_logits_are_the_1d_score_difference():
    z, y = _logits(k=2)
    d = z[:, 1] - z[:, 0]
    a = VennAbersCalibration(multiclass="one_vs_one", ts_weight=0).fit(z, y).predict_proba(z)
    b = VennAbersCalibration().fit(d, y).predict_proba(d)
    np.testing.assert_allclose(a[:, 1], b, atol=1e-15)
    iv = VennAbersCalibration(multiclass="one_vs_one", ts_weight=0).fit(z, y).predict_interval(z)
    p0, p1 = venn_abers_interval(d, y, d)
    np.testing.assert_allclose(iv[:, 1], np.c_[p0, p1], atol=1e-15)
    np.testing.assert_allclose(iv[:, 0], np.c_[1 - p1, 1 - p0], atol=1e-15)


def test_one_vs_rest_and_pairwise_by_hand():
    z, y = _logits(k=4)
    test, _ = _logits(n=30, k=4, seed=9)
    p = softmax(z, axis=1)
    pt = softmax(test, axis=1)
    ovr = VennAbersCalibration(multiclass="one_vs_rest", floor=0.0, ts_weight=0).fit(z, y)
    q = np.empty((30, 4))
    for c in range(4):  # the order of p_k is what counts
        p0, p1 = venn_abers_interval(p[:, c], y == c, pt[:, c])
        np.testing.assert_allclose(ovr.predict_interval(test)[:, c], np.c_[p0, p1], atol=1e-15)
        q[:, c] = p1 / (1 - p0 + p1)
    np.testing.assert_allclose(ovr.predict_proba(test), q / q.sum(1, keepdims=True), atol=1e-14)

    ovo = VennAbersCalibration(multiclass="one_vs_one", floor=0.0, ts_weight=0).fit(z, y)
    inv = np.zeros((30, 4))
    for i in range(4):
        for j in range(i + 1, 4):
            rows = (y == i) | (y == j)
            p0, p1 = venn_abers_interval(p[rows, j] / (p[rows, i] + p[rows, j]), y[rows] == j,
                                         pt[:, j] / (pt[:, i] + pt[:, j]))
            pj = p1 / (1 - p0 + p1)
            inv[:, j] += 1 / pj
            inv[:, i] += 1 / (1 - pj)
    want = 1 / (inv - 2)
    np.testing.assert_allclose(ovo.predict_proba(test), want / want.sum(1, keepdims=True),
                               atol=1e-12)
    iv = ovo.predict_interval(test)
    assert iv.shape == (30, 4, 2) and np.all(iv[..., 0] <= iv[..., 1])
    merged_unnormalised = want
    assert np.all(iv[..., 0] <= merged_unnormalised + 1e-12)
    assert np.all(merged_unnormalised <= iv[..., 1] + 1e-12)


@pytest.mark.parametrize("merge", ["log", "brier"])
def test_cross_venn_abers_merges_the_fold_intervals(merge):
    rng = np.random.default_rng(4)
    s = rng.random(300)
    y = (rng.random(300) < s ** 2).astype(int)
    test = rng.random(40)
    cv = VennAbersCalibration(n_folds=4, merge=merge, floor=0.0, random_state=3).fit(s, y)
    folds = cv._folds(y, 4)
    assert sorted(np.bincount(folds).tolist()) == [75, 75, 75, 75]
    for f in range(4):  # each fold stratified: positives split evenly
        assert abs(int(y[folds == f].sum()) - y.sum() / 4) <= 1
    iv = np.stack([np.c_[venn_abers_interval(s[folds == f], y[folds == f], test)]
                   for f in range(4)])
    np.testing.assert_allclose(cv.predict_interval(test), iv, atol=1e-15)
    p0, p1 = iv[..., 0], iv[..., 1]
    if merge == "log":
        g1 = np.prod(p1, axis=0) ** 0.25
        g0 = np.prod(1 - p0, axis=0) ** 0.25
        want = g1 / (g0 + g1)
    else:
        want = p1.mean(0) + 0.5 * (p0 ** 2).mean(0) - 0.5 * (p1 ** 2).mean(0)
    np.testing.assert_allclose(cv.predict_proba(test), want, atol=1e-14)


def test_accuracy_change_and_labels_and_frames():
    z, y = _logits(k=3)
    est = VennAbersCalibration().fit(z, y)
    before = np.mean(z.argmax(1) == y)
    assert est.accuracy_change_ == pytest.approx(np.mean(est.predict(z) == y) - before)
    names = np.array(["cat", "dog", "eel"])[y]
    named = VennAbersCalibration().fit(z, names)
    assert named.classes_.tolist() == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(named.predict(z), np.array(["cat", "dog", "eel"])[est.predict(z)])
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(z, columns=["a", "b", "c"])
    np.testing.assert_array_equal(VennAbersCalibration().fit(frame, pd.Series(y))
                                  .predict_proba(frame), est.predict_proba(z))
    conf = softmax(z, axis=1).max(1)
    right = (z.argmax(1) == y).astype(int)
    one_d = VennAbersCalibration().fit(conf, right)
    assert one_d.accuracy_change_ == pytest.approx(
        np.mean((one_d.predict_proba(conf) > 0.5) == right) - np.mean((conf > 0.5) == right))


def test_floor_keeps_log_loss_finite_and_rows_summing_to_one():
    z, y = _logits(n=60, k=5, seed=2)
    far = np.array([[40.0, -40.0, 0.0, 0.0, 0.0], [-40.0, 40.0, 0.0, 0.0, -40.0]])
    for multiclass in ("one_vs_one", "one_vs_rest"):
        p = VennAbersCalibration(multiclass=multiclass).fit(z, y).predict_proba(far)
        assert np.all(p >= 1e-12) and np.all(np.isfinite(np.log(p)))
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)


def test_one_d_round_trip_and_tampered_monotonicity(tmp_path):
    rng = np.random.default_rng(0)
    s = rng.normal(size=200)  # real-valued scores: only the order matters
    y = (rng.random(200) < 1 / (1 + np.exp(-2 * s))).astype(int)
    est = VennAbersCalibration(n_folds=3).fit(s, y)
    path = tmp_path / "va.json"
    est.save(path)
    loaded = load_calibrator(path)
    np.testing.assert_array_equal(loaded.predict_proba(s), est.predict_proba(s))
    np.testing.assert_array_equal(loaded.predict_interval(s), est.predict_interval(s))
    doc = json.loads(path.read_text())
    p1 = doc["fitted"]["p1_"]["data"]
    doc["fitted"]["p1_"]["data"] = [p1[1], p1[0]] + p1[2:]  # no longer non-decreasing
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="p1_"):
        load_calibrator(path)


@pytest.mark.parametrize("params, match", [
    ({"multiclass": "top_label"}, "multiclass"), ({"n_folds": 1}, "n_folds"),
    ({"n_folds": 2.5}, "n_folds"), ({"merge": "mean"}, "merge"), ({"floor": 0.6}, "floor"),
    ({"random_state": None}, "random_state")])
def test_bad_parameters(params, match):
    z, y = _logits(n=50)
    with pytest.raises(ValueError, match=match):
        VennAbersCalibration(**params).fit(z, y)


def test_bad_inputs():
    s = np.array([0.1, 0.5, 0.9, 0.3])
    y = np.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        VennAbersCalibration().fit(np.array([0.1, np.nan, 0.9, 0.3]), y)
    with pytest.raises(ValueError, match="2 classes"):
        VennAbersCalibration().fit(s, [0, 1, 2, 0])
    with pytest.raises(ValueError, match="n_samples=4"):
        VennAbersCalibration(n_folds=5).fit(s, y)
    with pytest.raises(ValueError, match="sample_weight"):
        VennAbersCalibration().fit(s, y, sample_weight=[1, -1, 1, 1])
    with pytest.raises(ValueError, match="X"):
        venn_abers_interval(s, y, [np.inf])
    est = VennAbersCalibration().fit(*_logits(n=50))
    with pytest.raises(ValueError, match="3 features"):
        est.predict_proba(np.zeros((2, 4)))


def test_clone_and_torch_input():
    torch = pytest.importorskip("torch")
    z, y = _logits()
    est = clone(VennAbersCalibration(multiclass="one_vs_rest")).fit(z, y)
    out = est.predict_proba(torch.as_tensor(z, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), est.predict_proba(z.astype(np.float32)), atol=1e-6)


def test_a_named_candidate_of_auto_calibration_and_the_cli_table():
    from calkit.cli.calibrate import methods
    from calkit.posthoc import AutoCalibration
    from calkit.posthoc.auto import default_candidates

    assert methods()["venn_abers"] == "VennAbersCalibration"
    assert "venn_abers" not in default_candidates(10)
    z, y = _logits(n=300)
    auto = AutoCalibration(candidates=["ts", "venn_abers"], cv=3).fit(z, y)
    assert list(auto.cv_results_["param_candidate"]) == ["ts", "venn_abers"]
    assert list(auto.cv_results_["status"]) == ["ok", "ok"]
    assert auto.predict_proba(z).shape == z.shape


def test_cli_calibrate_save_and_apply(tmp_path):
    from calkit.cli import main

    z, y = _logits(n=600, k=4, seed=5)
    np.savez(tmp_path / "val.npz", logits=z[:300], labels=y[:300])
    np.savez(tmp_path / "test.npz", logits=z[300:], labels=y[300:])
    save = tmp_path / "va.json"
    assert main(["calibrate", "--val", str(tmp_path / "val.npz"), "--test",
                 str(tmp_path / "test.npz"), "--method", "venn_abers", "--save", str(save),
                 "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    out = tmp_path / "calibrated.npz"
    assert main(["apply", str(save), str(tmp_path / "test.npz"), "--out", str(out)]) == 0
    direct = VennAbersCalibration().fit(z[:300], y[:300]).predict_proba(z[300:])
    with np.load(out, allow_pickle=False) as d:
        np.testing.assert_allclose(d["probs"], direct, rtol=1e-12)


def test_real_cifar10_outputs(shared_data):
    """The user guide's table: one-vs-rest beats temperature scaling's NLL, pairwise does not."""
    import calkit
    from calkit.posthoc import TemperatureScaling

    folder = shared_data("cifar10_resnet50_ce_vs_focal")
    with np.load(folder / "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz") as d:
        zv, yv = d["logits"], d["labels"]
    with np.load(folder / "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz") as d:
        zt, yt = d["logits"][:4000], d["labels"][:4000]
    ts = calkit.nll(yt, TemperatureScaling().fit(zv, yv).predict_proba(zt))
    ovr = VennAbersCalibration().fit(zv, yv)
    p = ovr.predict_proba(zt)
    assert calkit.nll(yt, p) < ts
    assert calkit.nll(yt, VennAbersCalibration(multiclass="one_vs_one").fit(zv, yv)
                      .predict_proba(zt)) > calkit.nll(yt, p)
    iv = ovr.predict_interval(zt)
    assert np.all(iv[..., 0] <= iv[..., 1]) and np.median(iv[..., 1] - iv[..., 0]) < 0.01


# ---------------------------------------------------------------------------- the peer package
@pytest.mark.peers
def test_matches_the_venn_abers_package():
    state = np.geterr()
    try:
        pkg = pytest.importorskip("venn_abers.venn_abers")
    finally:  # its import calls np.seterr(divide="ignore", invalid="ignore") for everyone
        np.seterr(**state)
    rng = np.random.default_rng(11)
    s = rng.random(500)
    y = (rng.random(500) < s).astype(int)
    t = np.r_[rng.random(80), s[:20], 0.0, 1.0]  # ties with calibration scores, both ends
    peer = pkg.VennAbers()
    with np.errstate(divide="ignore", invalid="ignore"):  # its slopes divide by zero widths
        peer.fit(np.c_[1 - s, s], y)  # precision=None: no rounding
        p_prime, p0p1 = peer.predict_proba(np.c_[1 - t, t])
    ours = VennAbersCalibration(floor=0.0).fit(s, y)
    np.testing.assert_allclose(ours.predict_interval(t), p0p1, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(t), p_prime[:, 1], atol=1e-12)

    z, yk = _logits(n=600, k=4, seed=12)
    zt, _ = _logits(n=70, k=4, seed=13)
    for va_type in ("one_vs_rest", "one_vs_one"):
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            probs, p01 = pkg.VennAbersCalibrator().predict_proba(
                p_cal=softmax(z, axis=1), y_cal=yk, p_test=softmax(zt, axis=1),
                va_type=va_type, p0_p1_output=True)
        est = VennAbersCalibration(multiclass=va_type, floor=0.0, ts_weight=0).fit(z, yk)
        np.testing.assert_allclose(est.predict_proba(zt), probs, atol=1e-10)
        if va_type == "one_vs_rest":
            iv = est.predict_interval(zt)
            for c in range(4):
                np.testing.assert_allclose(iv[:, c], p01[c], atol=1e-12)


def test_row_blocks_change_nothing(monkeypatch):
    z, y = _logits(n=200, k=4)
    for est in (VennAbersCalibration(multiclass="one_vs_one"), VennAbersCalibration(n_folds=2)):
        est.fit(z, y)
        whole_p, whole_iv = est.predict_proba(z), est.predict_interval(z)
        monkeypatch.setattr(va_module, "_BLOCK_ENTRIES", 50)  # blocks of a few rows
        assert len(est._row_blocks(len(z))) > 10
        np.testing.assert_array_equal(est.predict_proba(z), whole_p)
        np.testing.assert_array_equal(est.predict_interval(z), whole_iv)
        monkeypatch.undo()


# ---------------------------------------------------------------------------- mixing with TS
def test_ts_weight_ends_and_auto_is_never_above_ts_out_of_fold():
    from calkit.posthoc import TemperatureScaling

    z, y = _logits(n=900, k=5)
    test, _ = _logits(n=40, k=5, seed=9)
    pure = VennAbersCalibration(ts_weight=0).fit(z, y)
    assert pure.ts_weight_ == 0 and pure.cv_nll_ == {}
    full = VennAbersCalibration(ts_weight=1.0).fit(z, y)
    ts = TemperatureScaling().fit(z, y)
    assert full.temperature_ == pytest.approx(ts.temperature_, rel=1e-6)
    np.testing.assert_allclose(full.predict_proba(test), ts.predict_proba(test), atol=1e-9)
    half = VennAbersCalibration(ts_weight=0.5).fit(z, y)
    np.testing.assert_allclose(half.predict_proba(test), 0.5 * pure.predict_proba(test)
                               + 0.5 * full.predict_proba(test), atol=1e-9)
    np.testing.assert_array_equal(half.predict_interval(test), pure.predict_interval(test))
    auto = VennAbersCalibration().fit(z, y)
    assert 0 <= auto.ts_weight_ <= 1
    assert auto.cv_nll_["mixture"] <= auto.cv_nll_["reference"] + 1e-12
    assert auto.cv_nll_["mixture"] <= auto.cv_nll_["map"] + 1e-12
    with pytest.raises(ValueError, match="ts_weight"):
        VennAbersCalibration(ts_weight=0.3).fit(np.linspace(0.1, 0.9, 20), np.arange(20) % 2)
    with pytest.raises(ValueError, match="ts_weight"):
        VennAbersCalibration(ts_weight=2).fit(z, y)


def test_default_never_worse_than_uncalibrated_on_cifar100(shared_data):
    """Before: one-vs-rest Venn-Abers alone on WRN-16-4 CIFAR-100 (5,000 rows, 100 classes)
    had a test NLL above the uncalibrated model's on both halves (0.985 vs 0.957)."""
    import calkit

    with np.load(shared_data("cifar_softmax_netcal", "wideresnet-16-4-cifar-100.npz")) as d:
        p, y = d["predictions"].astype(np.float64), d["ground_truth"].astype(np.int64)
    z = np.log(np.clip(p, 1e-12, None))
    order = np.random.default_rng(0).permutation(len(y))
    a, b = order[:5000], order[5000:]
    est = VennAbersCalibration().fit(z[a], y[a])
    assert calkit.nll(y[b], est.predict_proba(z[b])) < calkit.nll(y[b], softmax(z[b], axis=1))
    pure = VennAbersCalibration(ts_weight=0).fit(z[a], y[a])
    assert calkit.nll(y[b], pure.predict_proba(z[b])) > calkit.nll(y[b], est.predict_proba(z[b]))
