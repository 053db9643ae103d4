"""ConsistencyCalibration, FeatureClipping and DirichletCalibration against independent references.

References: closed-form vote probabilities and explicit loops (consistency), brute-force
threshold searches and exact least squares (feature clipping), scikit-learn's multinomial
logistic regression, an independently written objective minimised by scipy with
finite-difference gradients, and the optional ``dirichletcal`` package (Dirichlet).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import ndtr
from scipy.special import softmax as sp_softmax
from sklearn.exceptions import ConvergenceWarning

from calkit.metrics.binned import ece
from calkit.posthoc import consistency as cons
from calkit.posthoc._base import load_calibrator
from calkit.posthoc.consistency import (
    ConsistencyCalibration,
    default_scales,
    perturbed_probabilities,
)
from calkit.posthoc.dirichlet import AUTO_GRID, DirichletCalibration, _odir_objective
from calkit.posthoc.feature_clipping import FeatureClipping, affine_head, default_thresholds
from conftest import shared_path


def overconfident(n=600, k=3, scale=4.0, noise=0.7, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return scale * (np.eye(k)[y] + rng.normal(0, noise, (n, k))), y


# ====================================================================== consistency
def test_zero_noise_is_the_one_hot_argmax():
    z, _ = overconfident(50)
    p = perturbed_probabilities(z, 0.0, n_perturbations=7)
    assert np.array_equal(p, np.eye(3)[z.argmax(1)])


def test_blocked_votes_equal_an_explicit_loop(monkeypatch):
    z, _ = overconfident(40, k=4)
    monkeypatch.setattr(cons, "_BLOCK_ELEMENTS", 4 * 40 * 3)  # blocks of 3 perturbations
    for noise in ("gaussian", "uniform"):
        got = perturbed_probabilities(z, 1.5, noise, n_perturbations=10, random_state=5)
        rng = np.random.default_rng(5)
        votes = np.zeros((40, 4))
        for _ in range(10):
            xi = rng.standard_normal((1, 40, 4), dtype=np.float32) if noise == "gaussian" \
                else rng.random((1, 40, 4), dtype=np.float32)
            noisy = z.astype(np.float32) + np.float32(1.5) * xi[0]
            for i in range(40):
                votes[i, int(np.argmax(noisy[i]))] += 1
        assert np.array_equal(got, votes / 10), noise


def test_mean_aggregation_equals_loop():
    z, _ = overconfident(20)
    got = perturbed_probabilities(z, 0.8, aggregation="mean", n_perturbations=6,
                                  random_state=1)
    rng = np.random.default_rng(1)
    xi = rng.standard_normal((6, 20, 3), dtype=np.float32).astype(np.float64)
    expected = np.mean([sp_softmax(z + 0.8 * xi[m], axis=1) for m in range(6)], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_two_class_votes_match_closed_form(noise):
    """P(class 0 wins) for logit gap d: Phi(d / (eps sqrt 2)) or 1 - (eps - d)^2 / (2 eps^2)."""
    eps, m = 2.0, 20000
    gaps = np.array([0.0, 0.5, 1.0, 1.8])
    z = np.stack([gaps, np.zeros_like(gaps)], axis=1)
    p = perturbed_probabilities(z, eps, noise, n_perturbations=m, random_state=0)[:, 0]
    if noise == "gaussian":
        exact = ndtr(gaps / (eps * math.sqrt(2)))
    else:  # u1 - u0 is triangular on (-eps, eps)
        exact = 1 - (eps - gaps) ** 2 / (2 * eps ** 2)
    se = np.sqrt(exact * (1 - exact) / m)
    assert np.all(np.abs(p - exact) < 5 * se + 1e-12), (p, exact)


def test_search_picks_the_brute_force_minimum():
    z, y = overconfident(300)
    grid = [0.5, 1.0, 2.0, 4.0, 8.0]
    cc = ConsistencyCalibration(noise="gaussian", noise_scales=grid, n_perturbations=50,
                                random_state=2).fit(z, y)
    scores = [ece(y, perturbed_probabilities(z, s, "gaussian", 50, random_state=2))
              for s in grid]
    assert cc.noise_scale_ == grid[int(np.argmin(scores))]
    np.testing.assert_allclose(cc.scores_["gaussian"][1], scores, rtol=1e-12)


def test_default_grid_is_the_coarse_to_fine_search():
    z, y = overconfident(120)
    cc = ConsistencyCalibration(noise="uniform", n_perturbations=20, criterion="nll",
                                smoothing=0.5).fit(z, y)
    scales = cc.scores_["uniform"][0]
    assert set(np.round(default_scales(), 12)) <= set(np.round(scales, 12))
    best = scales[np.argmin(cc.scores_["uniform"][1])]
    assert cc.noise_scale_ == best and len(scales) > 40


def test_auto_noise_keeps_the_better_family_and_is_reproducible(tmp_path):
    z, y = overconfident(200)
    cc = ConsistencyCalibration(noise_scales=[1.0, 3.0], n_perturbations=40).fit(z, y)
    best = {k: v[1].min() for k, v in cc.scores_.items()}
    assert cc.noise_ == min(best, key=best.get)
    p = cc.predict_proba(z)
    assert np.array_equal(p, cc.predict_proba(z))
    np.testing.assert_allclose(p.sum(1), 1.0)
    cc.save(tmp_path / "cc.json")
    assert np.array_equal(load_calibrator(tmp_path / "cc.json").predict_proba(z), p)


def test_consistency_smoothing_and_fixed_scale():
    z, y = overconfident(30)
    cc = ConsistencyCalibration(noise="gaussian", noise_scale=0.0, smoothing=1.0,
                                n_perturbations=8, ts_weight=0.0, floor=0.0).fit(z, y)
    expected = (8 * np.eye(3)[z.argmax(1)] + 1.0) / (8 + 3)
    np.testing.assert_allclose(cc.predict_proba(z), expected)


@pytest.mark.parametrize("chunk", [6 * 7, 30 * 6 * 3 + 5])  # runs of 7 samples; 3 copies
@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_vote_path_equals_direct_votes_at_every_scale(noise, chunk, monkeypatch):
    """One envelope walk gives the votes of perturbed_probabilities at any scale."""
    monkeypatch.setattr(cons, "_BLOCK_ELEMENTS", 30 * 6 * 7)  # several noise blocks
    monkeypatch.setattr(cons, "_CHUNK_ELEMENTS", chunk)  # the path's own chunks differ
    monkeypatch.setattr(cons, "_WALK_LINES", 50)  # and several envelope walks
    rng = np.random.default_rng(4)
    z = rng.normal(size=(30, 6)) * 2
    z[:5, 1] = z[:5, 0] = z[:5].max(1) + 1.0  # tied top logits: the noise breaks the tie
    z[5:8] = np.log(np.clip(softmax_rows(z[5:8] * 8), 1e-12, None))  # floored log-probs
    path = cons.VotePath(z, noise, 40, random_state=9, eps_max=6.0)
    for eps in [0.0, 1e-2, 0.3, 1.0, 2.5, 5.999]:  # (tiny eps: float32 rounding decides)
        direct = perturbed_probabilities(z, eps, noise, 40, random_state=9)
        np.testing.assert_array_equal(path.counts(eps), np.rint(direct * 40), err_msg=str(eps))
    with pytest.raises(ValueError, match="eps must lie"):
        path.counts(6.0)
    scales = [2.5, 0.0, 5.999, 0.3, 2.5, 1e-2]  # any order, repeats: one pass, same counts
    for eps, counts in zip(scales, path.counts_many(scales), strict=True):
        np.testing.assert_array_equal(counts, path.counts(eps), err_msg=str(eps))
    with pytest.raises(ValueError, match="eps must lie"):
        path.counts_many([1.0, 6.0])


def test_consistency_fit_is_the_same_on_one_thread(monkeypatch):
    """The two noise families searched on two threads give the one-thread result."""
    z, y = overconfident(300, k=5, scale=5.0, noise=0.8, seed=4)
    two = ConsistencyCalibration(n_perturbations=50).fit(z, y)
    monkeypatch.setattr(cons, "worker_count", lambda: 1)
    one = ConsistencyCalibration(n_perturbations=50).fit(z, y)
    assert (two.noise_, two.noise_scale_, two.ts_weight_) == \
        (one.noise_, one.noise_scale_, one.ts_weight_)
    for noise in ("gaussian", "uniform"):
        for a, b in zip(two.scores_[noise], one.scores_[noise], strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(two.predict_proba(z), one.predict_proba(z))


def softmax_rows(x):
    return sp_softmax(x, axis=1)


def test_default_consistency_never_gives_a_class_probability_zero():
    z, y = overconfident(400, k=6, scale=6.0, noise=0.5, seed=3)
    flip = np.random.default_rng(0).random(400) < 0.15  # label noise: zero-vote true classes
    y = np.where(flip, (y + 1) % 6, y)
    published = ConsistencyCalibration(noise="gaussian", ts_weight=0.0, floor=0.0,
                                       n_perturbations=50).fit(z, y)
    votes = published.predict_proba(z)
    rows = np.arange(len(y))
    assert (votes[rows, y] == 0).any()  # the published method: log-loss infinite
    cc = ConsistencyCalibration(noise="gaussian", n_perturbations=50).fit(z, y)
    q = cc.predict_proba(z)
    assert cc.noise_scale_ == published.noise_scale_  # the mixing happens after the search
    assert q.min() >= 1e-12 and 0 < cc.ts_weight_ <= 1
    ts = softmax_rows(z / cc.temperature_)
    # the weight minimises the validation NLL of the mixture (checked on a fine grid)
    grid = np.linspace(0, 1, 2001)
    nll_grid = [-np.mean(np.log((1 - a) * votes[rows, y] + a * ts[rows, y] + 1e-300))
                for a in grid]
    assert abs(cc.ts_weight_ - grid[int(np.argmin(nll_grid))]) <= 1e-3
    mixed_nll = -np.mean(np.log(q[rows, y]))
    assert mixed_nll <= -np.mean(np.log(ts[rows, y])) + 1e-9
    expected = np.mean(q.argmax(1) == y) - np.mean(z.argmax(1) == y)
    assert cc.accuracy_change_ == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(noise="laplace"), "noise must be one of"),
    (dict(n_perturbations=0), "n_perturbations must be"),
    (dict(noise_scale=-1.0), "noise_scale must be"),
    (dict(noise_scales=[]), "noise_scales must be"),
    (dict(random_state=np.random.default_rng(0)), "random_state must be"),
    (dict(ts_weight=1.5), "ts_weight must be"),
    (dict(floor=0.5), "floor must be"),
])
def test_consistency_bad_parameters(kwargs, message):
    z, y = overconfident(20)
    with pytest.raises(ValueError, match=message):
        ConsistencyCalibration(**kwargs).fit(z, y)


# ====================================================================== feature clipping
def _toy_features(n=900, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    h = np.abs(rng.normal(0, 1, (n, 5))) + 1.5 * np.eye(3, 5)[y]
    h[: n // 3] *= 5.0
    w = rng.normal(0, 1, (3, 5)) + 3 * np.eye(3, 5)
    b = np.array([0.2, -0.1, 0.0])
    return h, y, w, b


def test_head_is_recovered_from_logits():
    h, y, w, b = _toy_features()
    fc = FeatureClipping(threshold=1.0).fit(h, y, logits=h @ w.T + b)
    np.testing.assert_allclose(fc.coef_, w, atol=1e-9)
    np.testing.assert_allclose(fc.intercept_, b, atol=1e-9)
    assert fc.head_residual_ < 1e-9


def test_non_affine_logits_are_rejected():
    h, y, w, b = _toy_features()
    with pytest.raises(ValueError, match="does not reproduce the logits"):
        FeatureClipping().fit(h, y, logits=(h ** 2) @ w.T + b)
    with pytest.raises(ValueError, match="does not reproduce the logits"):
        FeatureClipping().fit(h, y, logits=h @ w.T, coef=w, intercept=b + 1.0)


def test_threshold_search_equals_brute_force_loop():
    h, y, w, b = _toy_features()
    base_acc = np.mean(np.argmax(h @ w.T + b, 1) == y)
    best, best_c = np.inf, np.inf
    for c in default_thresholds(h):  # increasing, so strict < keeps the smallest
        z = np.clip(h, -c, c) @ w.T + b
        if np.isfinite(c) and not np.mean(np.argmax(z, 1) == y) > 0.99 * base_acc:
            continue
        loss = -np.mean(sp_log_softmax(z, axis=1)[np.arange(len(y)), y])
        if loss < best:
            best, best_c = loss, c
    fc = FeatureClipping().fit(h, y, coef=w, intercept=b)
    assert fc.threshold_ == best_c and np.isfinite(best_c)
    assert np.nanmin(fc.scores_) == pytest.approx(best, rel=1e-12)
    np.testing.assert_allclose(fc.predict_proba(h),
                               sp_softmax(np.clip(h, -best_c, best_c) @ w.T + b, axis=1))


def test_ece_criterion_and_given_thresholds():
    h, y, w, b = _toy_features()
    grid = [0.5, 1.0, 2.0, 4.0]
    fc = FeatureClipping(criterion="ece", thresholds=grid, min_accuracy_ratio=0.0).fit(
        h, y, coef=w, intercept=b)
    scores = [ece(y, sp_softmax(np.clip(h, -c, c) @ w.T + b, axis=1)) for c in grid]
    assert fc.threshold_ == grid[int(np.argmin(scores))]


def test_no_clipping_is_the_model_and_save_load(tmp_path):
    h, y, w, b = _toy_features()
    fc = FeatureClipping(threshold=1e9).fit(h, y, coef=w, intercept=b)
    np.testing.assert_allclose(fc.predict_proba(h), sp_softmax(h @ w.T + b, axis=1))
    fc = FeatureClipping().fit(h, y, logits=h @ w.T + b)
    fc.save(tmp_path / "fc.json")
    np.testing.assert_allclose(load_calibrator(tmp_path / "fc.json").predict_proba(h),
                               fc.predict_proba(h))


def test_feature_clipping_errors():
    h, y, w, b = _toy_features()
    with pytest.raises(ValueError, match="needs the final layer"):
        FeatureClipping().fit(h, y)
    with pytest.raises(ValueError, match="coef must have shape"):
        FeatureClipping().fit(h, y, coef=w[:, :2])
    with pytest.raises(ValueError, match="threshold must be a positive"):
        FeatureClipping(threshold=0.0).fit(h, y, coef=w)
    fc = FeatureClipping(threshold=1.0).fit(h, y, coef=w)
    with pytest.raises(ValueError, match="X has 2 features"):
        fc.predict_proba(h[:, :2])


def test_affine_head_exact_on_real_longtail_features():
    d = shared_path("cifar10_longtail")
    h = np.load(d / "cifar10_val_feature.npy", allow_pickle=False)[0]
    z = np.load(d / "cifar10_val_z.npy", allow_pickle=False)[0]
    y = np.load(d / "cifar10_val_label.npy", allow_pickle=False)[0]
    w, b, residual = affine_head(h.astype(np.float64), z.astype(np.float64))
    assert residual < 1e-4 * np.abs(z).max()  # float32 logits: exact up to rounding
    fc = FeatureClipping(thresholds=np.arange(1, 41) / 10).fit(h, y, logits=z)
    assert 0.1 <= fc.threshold_ <= 4.0
    # clipping lowers the validation NLL compared with the unclipped model
    nll_model = -np.mean(sp_log_softmax(z.astype(np.float64), 1)[np.arange(len(y)), y])
    assert np.nanmin(fc.scores_) < nll_model


# ====================================================================== Dirichlet
def _logp(z):
    return sp_log_softmax(z, axis=1)


@pytest.mark.parametrize(("ref_row", "atol"), [(True, 2e-6), (False, 1e-5)])
def test_unregularised_dirichlet_is_multinomial_logistic_regression(ref_row, atol):
    from sklearn.linear_model import LogisticRegression

    z, y = overconfident(1500, k=4, scale=3.0, noise=0.9)
    # without a penalty the full parameterisation has a flat direction (adding one
    # vector to every row): the probabilities are still unique, the solver stops earlier
    ours = DirichletCalibration(reg_lambda=0.0, ref_row=ref_row, tol=1e-13).fit(z, y)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(_logp(z), y)
    np.testing.assert_allclose(ours.predict_proba(z), lr.predict_proba(_logp(z)), atol=atol)


def _independent_odir(z, y, lam, mu, ref_row):
    """The ODIR objective written out directly, minimised with finite-difference BFGS."""
    logp = _logp(z)
    n, k = logp.shape
    rows = k - 1 if ref_row else k

    def unpack(theta):
        wb = theta.reshape(rows, k + 1)
        if ref_row:
            wb = np.vstack([wb, np.zeros(k + 1)])
        return wb[:, :k], wb[:, k]

    def objective(theta):
        w, b = unpack(theta)
        logits = logp @ w.T + b
        loss = -np.mean(sp_log_softmax(logits, axis=1)[np.arange(n), y])
        off = w - np.diag(np.diag(w))
        return loss + lam * np.sum(off ** 2) + mu * np.sum(b ** 2)

    start = np.hstack([np.eye(k), np.zeros((k, 1))])
    start = (start - start[-1])[:-1] if ref_row else start
    res = minimize(objective, start.ravel(), method="BFGS", options={"gtol": 1e-10})
    return unpack(res.x)


@pytest.mark.parametrize("ref_row", [True, False])
@pytest.mark.parametrize(("lam", "mu"), [(0.01, 0.01), (0.05, 0.001)])
def test_odir_fit_matches_independent_minimiser(lam, mu, ref_row):
    z, y = overconfident(400, k=3, scale=3.0, noise=0.8, seed=1)
    cal = DirichletCalibration(reg_lambda=lam, reg_mu=mu, ref_row=ref_row, tol=1e-13).fit(z, y)
    w, b = _independent_odir(z, y, lam, mu, ref_row)
    np.testing.assert_allclose(cal.coef_, w, atol=2e-5)
    np.testing.assert_allclose(cal.intercept_, b, atol=2e-5)


@pytest.mark.parametrize("ref_row", [True, False])
def test_odir_gradient_matches_finite_differences(ref_row):
    z, y = overconfident(50, k=4, seed=3)
    onehot = np.eye(4)[y]
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 0.5, (3 if ref_row else 4) * 5)
    for lam_diag in (0.0, 0.3):
        def f(t, lam_diag=lam_diag):
            return _odir_objective(t, _logp(z), onehot, 0.2, lam_diag, 0.1, ref_row)[0]

        _, grad = _odir_objective(theta, _logp(z), onehot, 0.2, lam_diag, 0.1, ref_row)
        step = 1e-6
        numeric = [(f(theta + step * e) - f(theta - step * e)) / (2 * step)
                   for e in np.eye(theta.size)]
        np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_dirichlet_warns_at_the_iteration_limit_and_records_accuracy_change():
    z, y = overconfident(300, k=4, seed=7)
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        cal = DirichletCalibration(reg_lambda=[1e-3, 1e-2], cv=3, max_iter=2).fit(z, y)
    assert len(record) == 1  # once per fit, counting the 3 x 2 cross-validation fits
    p = cal.predict_proba(z)
    expected = np.mean(p.argmax(1) == y) - np.mean(z.argmax(1) == y)
    assert cal.accuracy_change_ == pytest.approx(expected, abs=1e-15)


def test_auto_penalty_is_stronger_with_many_classes_and_few_samples():
    """CV picks a strong penalty for K^2 parameters on few samples, a weak one for K = 3."""
    easy_z, easy_y = overconfident(3000, k=3, scale=3.0, noise=0.8, seed=8)
    easy_z = easy_z + np.array([2.0, 0.0, -2.0])  # class biases: need b, a weak penalty
    easy = DirichletCalibration().fit(easy_z, easy_y)
    hard_z, hard_y = overconfident(400, k=20, scale=3.0, noise=0.8, seed=8)
    hard = DirichletCalibration().fit(hard_z, hard_y)
    assert hard.cv_lambdas_[np.argmin(hard.cv_scores_)] \
        > 100 * easy.cv_lambdas_[np.argmin(easy.cv_scores_)]
    for cal in (easy, hard):
        _check_auto_walk(cal)


def _check_auto_walk(cal):
    """The ``reg_lambda="auto"`` table follows the documented two walks (patience=1)."""
    lams, mus, scores = cal.cv_lambdas_, cal.cv_mus_, cal.cv_scores_
    assert len(lams) == len(mus) == len(scores)
    tied = len(lams) if np.all(lams == mus) else int(np.argmin(lams == mus))
    assert np.all(lams[tied:] != mus[tied:])
    # 1. lambda = mu, strongest first, stopping at the first rise (> 1e-4 relative) above
    #    the best so far, unless it ran out of grid
    np.testing.assert_array_equal(lams[:tied], AUTO_GRID[:tied])
    running = np.minimum.accumulate(scores[:tied])
    assert np.all(scores[1:tied - 1] <= running[:tied - 2] * (1 + 1e-4))
    assert scores[tied - 1] > running[tied - 2] * (1 + 1e-4) or tied == len(AUTO_GRID)
    # 2. mu alone at the best lambda of walk 1: down by 10s, then (if that did not help) up
    best_lam = lams[int(np.argmin(scores[:tied]))]
    assert np.all(lams[tied:] == best_lam)
    ratio = np.log10(mus[tied:] / best_lam)
    np.testing.assert_allclose(ratio, np.rint(ratio), atol=1e-9)
    down = int(np.sum(ratio < 0))
    np.testing.assert_allclose(ratio[:down], -np.arange(1, down + 1), atol=1e-9)
    np.testing.assert_allclose(ratio[down:], np.arange(1, len(ratio) - down + 1), atol=1e-9)
    best, chosen = scores[:tied].min(), int(np.argmin(scores[:tied]))
    for start, stop, limit in ((tied, tied + down, min(AUTO_GRID)),
                               (tied + down, len(scores), max(AUTO_GRID))):
        for i in range(start, stop):  # a walk goes on while each step gains > 1e-4 relative
            gained = scores[i] < best * (1 - 1e-4)
            assert gained or i == stop - 1
            if gained:
                best, chosen = scores[i], i
        if stop > start and chosen == stop - 1:  # it gained to the end: the end of the grid
            step = 0.1 if limit < best_lam else 10.0
            assert not min(AUTO_GRID) <= mus[stop - 1] * step <= max(AUTO_GRID)
        if start == tied and chosen >= tied:
            assert len(scores) == tied + down  # walked up only when walking down never gained
    # the fitted point: the last gain of walk 2, else the best of walk 1; per entry
    k = cal.n_classes_
    assert cal.reg_lambda_ == pytest.approx(lams[chosen] / (k * (k - 1)))
    assert cal.reg_mu_ == pytest.approx(mus[chosen] / k)
    return chosen


def test_reg_norm_divides_by_the_number_of_entries():
    z, y = overconfident(300, k=4, seed=2)
    a = DirichletCalibration(reg_lambda=0.12, reg_mu=0.04, reg_norm=True).fit(z, y)
    b = DirichletCalibration(reg_lambda=0.12 / 12, reg_mu=0.04 / 4).fit(z, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-10)


def test_strong_odir_leaves_a_diagonal_map():
    z, y = overconfident(300, k=3, seed=4)
    cal = DirichletCalibration(reg_lambda=1e4).fit(z, y)
    w = cal.coef_
    off = w - np.diag(np.diag(w))
    assert np.abs(off).max() < 1e-3 and np.abs(cal.intercept_).max() < 1e-3


def test_dirichlet_save_load_and_errors(tmp_path):
    z, y = overconfident(200)
    cal = DirichletCalibration().fit(z, y)
    cal.save(tmp_path / "d.json")
    np.testing.assert_allclose(load_calibrator(tmp_path / "d.json").predict_proba(z),
                               cal.predict_proba(z))
    with pytest.raises(ValueError, match="reg_lambda must be"):
        DirichletCalibration(reg_lambda=-1.0).fit(z, y)
    with pytest.raises(ValueError, match="X has 4"):
        cal.predict_proba(np.zeros((2, 4)))


@pytest.mark.peers
def test_dirichlet_matches_dirichletcal():
    calib = pytest.importorskip("dirichletcal.calib.fulldirichlet")
    z, y = overconfident(800, k=4, scale=3.0, noise=0.8, seed=5)
    ref = calib.FullDirichletCalibrator(reg_lambda=1e-2, reg_mu=1e-3, ref_row=True)
    ref.fit(sp_softmax(z, axis=1), y)
    ours = DirichletCalibration(reg_lambda=1e-2, reg_mu=1e-3, ref_row=True).fit(z, y)
    np.testing.assert_allclose(ours.coef_, np.asarray(ref.coef_), atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, np.asarray(ref.intercept_), atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(z),
                               ref.predict_proba(sp_softmax(z, axis=1)), atol=1e-5)


def test_reg_lambda_grid_is_chosen_by_cross_validated_nll():
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    z, y = overconfident(300, k=3, scale=5.0, noise=1.0, seed=6)
    grid = [1e-4, 1e-2, 10.0]
    cal = DirichletCalibration(reg_lambda=grid, cv=3, random_state=1).fit(z, y)
    folds = StratifiedKFold(3, shuffle=True, random_state=1).split(z, y)
    expected = np.zeros(3)
    for train, test in folds:
        for i, lam in enumerate(grid):
            p = DirichletCalibration(reg_lambda=lam).fit(z[train], y[train]).predict_proba(
                z[test])
            expected[i] += log_loss(y[test], p, labels=[0, 1, 2]) * len(test) / len(y)
    # the cross-validation fits stop at a relative objective tolerance of CV_TOL = 1e-5: their
    # held-out NLL is within ~1e-3 (weak, nearly flat penalties) of a fit to 1e-8
    np.testing.assert_allclose(cal.cv_scores_, expected, rtol=2e-3)
    assert cal.reg_lambda_ == grid[int(np.argmin(expected))]
    single = DirichletCalibration(reg_lambda=cal.reg_lambda_).fit(z, y)
    np.testing.assert_allclose(cal.coef_, single.coef_)


def test_auto_mu_walk_scores_are_cross_validated_nll():
    """A point of the mu walk scores the held-out NLL of ODIR fits at that (lambda, mu)."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    z, y = overconfident(450, k=3, scale=4.0, noise=0.9, seed=11)
    z = z + np.array([1.5, 0.0, -1.5])  # class biases: the intercepts matter
    cal = DirichletCalibration(cv=3, random_state=2).fit(z, y)
    best = _check_auto_walk(cal)
    tied = int(np.argmin(cal.cv_lambdas_ == cal.cv_mus_))
    assert len(cal.cv_scores_) > tied > 0  # a mu walk happened
    folds = list(StratifiedKFold(3, shuffle=True, random_state=2).split(z, y))
    for i in (tied, len(cal.cv_scores_) - 1):
        lam, mu = cal.cv_lambdas_[i], cal.cv_mus_[i]
        expected = 0.0
        for train, test in folds:
            p = DirichletCalibration(reg_lambda=lam, reg_mu=mu, reg_norm=True).fit(
                z[train], y[train]).predict_proba(z[test])
            expected += log_loss(y[test], p, labels=[0, 1, 2]) * len(test) / len(y)
        # the walk's fits are warm-started and stop at CV_TOL = 1e-5
        assert cal.cv_scores_[i] == pytest.approx(expected, rel=2e-3)
    single = DirichletCalibration(reg_lambda=cal.cv_lambdas_[best], reg_mu=cal.cv_mus_[best],
                                  reg_norm=True).fit(z, y)
    np.testing.assert_allclose(cal.coef_, single.coef_)
    np.testing.assert_allclose(cal.intercept_, single.intercept_)


def _plain_odir(theta, logp, y, lam, mu, k, rows):
    """ODIR objective and gradient written out independently (no preconditioning)."""
    wb = theta.reshape(rows, k + 1)
    if rows < k:
        wb = np.vstack([wb, np.zeros(k + 1)])
    w, b = wb[:, :k], wb[:, k]
    logits = logp @ w.T + b
    n = len(y)
    value = -np.mean(sp_log_softmax(logits, axis=1)[np.arange(n), y])
    off = w - np.diag(np.diag(w))
    value += lam * np.sum(off ** 2) + mu * np.sum(b ** 2)
    r = (sp_softmax(logits, axis=1) - np.eye(k)[y]) / n
    grad = np.hstack([r.T @ logp + 2 * lam * off, (r.sum(0) + 2 * mu * b)[:, None]])
    return value, grad[:rows].ravel()


_REFERENCE_OPTIMA: dict = {}


@pytest.mark.parametrize("ref_row", [False, True])
@pytest.mark.parametrize("blocks", [True, False])
def test_preconditioned_solver_reaches_the_reference_optimum(ref_row, blocks, monkeypatch):
    """Block (and Jacobi) preconditioned L-BFGS = scipy's L-BFGS on the plain objective."""
    from calkit.posthoc import dirichlet as dmod

    if not blocks:
        monkeypatch.setattr(dmod, "BLOCK_ELEMENTS", 0)  # the diagonal fallback
    k, lam, mu = 6, 2e-3, 1e-3
    z, y = overconfident(400, k=k, scale=5.0, noise=1.0, seed=12)
    z = np.log(np.clip(sp_softmax(z, axis=1), 1e-12, None))  # floored log-probabilities
    logp = sp_log_softmax(z, axis=1)
    rows = k - 1 if ref_row else k
    if ref_row not in _REFERENCE_OPTIMA:  # the same for both preconditioners
        start = np.hstack([np.eye(k), np.zeros((k, 1))])
        start = (start - start[-1])[:rows] if ref_row else start
        _REFERENCE_OPTIMA[ref_row] = minimize(
            _plain_odir, start.ravel(), args=(logp, y, lam, mu, k, rows), jac=True,
            method="L-BFGS-B", options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-11,
                                        "maxcor": 50})
    ref = _REFERENCE_OPTIMA[ref_row]
    cal = DirichletCalibration(reg_lambda=lam, reg_mu=mu, ref_row=ref_row, tol=1e-13).fit(z, y)
    ours = np.hstack([cal.coef_, cal.intercept_[:, None]])[:rows].ravel()
    assert _plain_odir(ours, logp, y, lam, mu, k, rows)[0] == pytest.approx(ref.fun, abs=1e-9)
    wb_ref = ref.x.reshape(rows, k + 1)
    if ref_row:
        wb_ref = np.vstack([wb_ref, np.zeros(k + 1)])
    p_ref = sp_softmax(logp @ wb_ref[:, :k].T + wb_ref[:, k], axis=1)
    np.testing.assert_allclose(cal.predict_proba(z), p_ref, atol=2e-4)


def test_hessian_blocks_equal_the_exact_row_blocks(monkeypatch):
    """All rows: the exact Hessian blocks; few rows: the exact diagonal, a partial rest."""
    from calkit.posthoc import dirichlet as dmod

    k = 4
    z, y = overconfident(60, k=k, seed=13)
    logp = sp_log_softmax(z, axis=1)
    weight = dmod._penalty_weights(k, 0.3, 0.0, 0.2)
    sw = np.random.default_rng(1).random(60)
    problem = dmod._OdirProblem(logp, y, weight, sw / sw.sum())
    wb = np.random.default_rng(2).normal(0, 0.5, (k, k + 1))
    x = np.hstack([logp, np.ones((60, 1))])
    p = sp_softmax(x @ wb.T, axis=1)
    exact = np.zeros((k, k + 1, k + 1))
    for i in range(k):  # brute force: sum over samples
        for n in range(60):
            exact[i] += sw[n] / sw.sum() * p[n, i] * (1 - p[n, i]) * np.outer(x[n], x[n])
        exact[i] += np.diag(2 * weight[i])
    # (plus a jitter of 1e-10 (1 + the largest diagonal entry) on the diagonal)
    np.testing.assert_allclose(problem.hessian_blocks(wb, k), exact, rtol=1e-8, atol=1e-9)
    # they are the diagonal blocks of the Hessian (finite differences of the gradient)
    step = 1e-6
    for i, j in ((0, 0), (2, 3), (3, 4)):
        e = np.zeros((k, k + 1))
        e[i, j] = step
        column = (problem.value_grad(wb + e)[1] - problem.value_grad(wb - e)[1]) / (2 * step)
        np.testing.assert_allclose(column[i], exact[i, j], atol=1e-6)
    monkeypatch.setattr(dmod, "_BLOCK_WORK", 1)  # at least 64 rows: all 60 of them
    # (plus a jitter of 1e-10 (1 + the largest diagonal entry) on the diagonal)
    np.testing.assert_allclose(problem.hessian_blocks(wb, k), exact, rtol=1e-8, atol=1e-9)
    big = dmod._OdirProblem(np.vstack([logp] * 3), np.tile(y, 3), weight, None)
    blocks = big.hessian_blocks(wb, k)  # 64 of 180 rows off the diagonal
    diagonal = np.array([(p[:, i] * (1 - p[:, i])) @ (x * x) / 60 + 2 * weight[i]
                         for i in range(k)])
    np.testing.assert_allclose(np.diagonal(blocks, axis1=1, axis2=2), diagonal, rtol=1e-8,
                               atol=1e-9)
    assert np.all(np.linalg.eigvalsh(blocks) > 0)
