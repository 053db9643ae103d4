"""OOD scores and detection metrics against scikit-learn and brute-force pair counting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from calkit import softmax
from calkit.metrics.ood import ood_metrics, ood_score
from conftest import shared_path


def _sklearn_reference(s_in, s_out, tpr=0.95):
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    s = np.r_[s_in, s_out]
    fpr, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    fpr_out, tpr_out, _ = roc_curve(1 - y, -s, drop_intermediate=False)
    return dict(auroc=roc_auc_score(y, s), aupr_in=average_precision_score(y, s),
                aupr_out=average_precision_score(1 - y, -s),
                fpr_in=fpr[np.searchsorted(tprs, tpr)],
                fpr_out=fpr_out[np.searchsorted(tpr_out, tpr)])


def _check_against_sklearn(s_in, s_out):
    ref = _sklearn_reference(s_in, s_out)
    r_in = ood_metrics(s_in, s_out)
    r_out = ood_metrics(s_in, s_out, positive="out")
    for name in ("auroc", "aupr_in", "aupr_out"):
        assert getattr(r_in, name) == pytest.approx(ref[name], abs=1e-12), name
        assert getattr(r_out, name) == getattr(r_in, name)
    assert r_in.fpr_at_tpr == pytest.approx(ref["fpr_in"], abs=1e-12)
    assert r_out.fpr_at_tpr == pytest.approx(ref["fpr_out"], abs=1e-12)


def test_auroc_is_the_tie_averaged_pair_count():
    rng = np.random.default_rng(0)
    s_in = rng.integers(0, 6, 50).astype(float)  # heavy ties
    s_out = rng.integers(0, 4, 40).astype(float)
    diff = s_in[:, None] - s_out[None]
    brute = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert ood_metrics(s_in, s_out).auroc == pytest.approx(brute, abs=1e-15)


def test_fpr_at_tpr_threshold_by_brute_force():
    rng = np.random.default_rng(1)
    s_in = np.round(rng.normal(1, 1, 300), 1)
    s_out = np.round(rng.normal(0, 1, 200), 1)
    r = ood_metrics(s_in, s_out)
    # the largest threshold accepting >= 95% of the in-distribution samples
    candidates = np.unique(np.r_[s_in, s_out])
    ok = [t for t in candidates if (s_in >= t).mean() >= 0.95]
    t = max(ok)
    assert r.threshold == t
    assert r.fpr_at_tpr == pytest.approx((s_out >= t).mean())
    ro = ood_metrics(s_in, s_out, positive="out")  # flag OOD when score <= threshold
    ok = [t for t in candidates if (s_out <= t).mean() >= 0.95]
    assert ro.threshold == min(ok)
    assert ro.fpr_at_tpr == pytest.approx((s_in <= min(ok)).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    _check_against_sklearn(rng.normal(1, 1, 500), rng.normal(0, 1.3, 300))
    _check_against_sklearn(np.round(rng.normal(1, 1, 500), 1), np.round(rng.normal(0, 1, 300), 1))


def test_order_invariance_and_symmetry():
    rng = np.random.default_rng(3)
    s_in, s_out = np.round(rng.normal(1, 1, 200), 1), np.round(rng.normal(0, 1, 150), 1)
    a = ood_metrics(s_in, s_out)
    b = ood_metrics(rng.permutation(s_in), rng.permutation(s_out))
    assert a == b
    swapped = ood_metrics(-s_out, -s_in)  # OOD as "in" with negated scores
    assert swapped.auroc == pytest.approx(a.auroc)
    assert swapped.aupr_in == pytest.approx(a.aupr_out)


def test_scores_against_direct_formulas():
    rng = np.random.default_rng(4)
    z = rng.normal(0, 3, (50, 7))
    p = softmax(z)
    assert np.allclose(ood_score(z, "msp"), p.max(1))
    assert np.allclose(ood_score(p, "msp", logits=False), p.max(1))
    entropy = -(p * np.log(p)).sum(1)
    assert np.allclose(ood_score(z, "entropy"), -entropy)
    assert np.allclose(ood_score(p, "entropy", logits=False), -entropy)
    assert np.allclose(ood_score(z, "energy"), logsumexp(z, axis=1))
    assert np.allclose(ood_score(z, "energy", temperature=2.0), 2 * logsumexp(z / 2, axis=1))
    assert np.allclose(ood_score(z, "max_logit"), z.max(1))
    # zero probabilities contribute 0 to the entropy (no NaN, no warning)
    assert ood_score(np.array([[1.0, 0.0]]), "entropy", logits=False).tolist() == [0.0]


def test_scores_on_torch_input():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(5).normal(size=(20, 4))
    for m in ("msp", "entropy", "energy", "max_logit"):
        assert np.allclose(ood_score(torch.as_tensor(z), m), ood_score(z, m))


def test_bad_input():
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match="method"):
        ood_score(z, "odin")
    with pytest.raises(ValueError, match="needs logits"):
        ood_score(softmax(z), "energy", logits=False)
    with pytest.raises(ValueError, match="sum to 1"):
        ood_score(z + 0.3, "msp", logits=False)
    with pytest.raises(ValueError, match="positive"):
        ood_metrics([1.0], [0.0], positive="ood")
    with pytest.raises(ValueError, match="NaN"):
        ood_metrics([1.0, np.nan], [0.0])
    with pytest.raises(ValueError, match="tpr"):
        ood_metrics([1.0], [0.0], tpr=0)


@pytest.mark.parametrize("pair", ["cnn_mnist_id_fashion_ood", "cnn_fashion_id_mnist_ood"])
def test_real_pairs_both_directions(pair):
    with np.load(shared_path("ood_mnist_fashion", f"{pair}.npz"), allow_pickle=False) as d:
        z_in, z_out = d["test_logits"], d["ood_logits"]
    results = {}
    for method in ("msp", "entropy", "energy", "max_logit"):
        s_in, s_out = ood_score(z_in, method), ood_score(z_out, method)
        _check_against_sklearn(s_in, s_out)
        results[method] = ood_metrics(s_in, s_out)
    # all four detectors are better than chance on this real pair
    assert all(r.auroc > 0.6 for r in results.values())
