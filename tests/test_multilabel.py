"""Multilabel metrics: per-label tables against a brute-force loop and calkit's binary views.

References: a bin loop written out per label (no binning engine), ``calkit.ece`` with
``view="positive"`` on each column, ``ece`` on the flattened matrices (micro), the
class-wise view on one-hot data, and scikit-learn's ``brier_score_loss`` / ``log_loss``
per column.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.metrics import brier_score_loss, log_loss

from calkit import ece, softmax
from calkit.metrics import (
    MultilabelCalibrationResult,
    multilabel_brier,
    multilabel_calibration_error,
    multilabel_ece,
    multilabel_nll,
)

rng = np.random.default_rng(0)
N, L = 600, 4
P = rng.uniform(size=(N, L))
Y = (rng.uniform(size=(N, L)) < P ** np.array([1.0, 2.0, 0.5, 3.0])).astype(int)
WEIGHTS = rng.integers(0, 4, N).astype(float)


def brute_force_ece(y, p, n_bins, norm="l1", closed="right"):
    """Equal-width binned error of one label, bin by bin (independent of the engine)."""
    total, gaps = len(p), []
    err = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        if closed == "right":
            inside = ((p > lo) | (b == 0)) & (p <= hi)
        else:
            inside = (p >= lo) & ((p < hi) | (b == n_bins - 1))
        if not inside.any():
            continue
        gap = abs(p[inside].mean() - y[inside].mean())
        gaps.append(gap)
        err += (inside.sum() / total) * (gap if norm == "l1" else gap ** 2)
    if norm == "max":
        return max(gaps)
    return err if norm == "l1" else np.sqrt(err)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("closed", ["right", "left"])
def test_per_label_errors_equal_a_brute_force_loop(norm, closed):
    r = multilabel_calibration_error(Y, P, n_bins=10, norm=norm, closed=closed, average=None)
    want = [brute_force_ece(Y[:, j], P[:, j], 10, norm, closed) for j in range(L)]
    np.testing.assert_allclose(r.per_label, want, rtol=1e-12)
    np.testing.assert_allclose(r.value, want, rtol=1e-12)
    assert np.isclose(multilabel_ece(Y, P, n_bins=10, norm=norm, closed=closed),
                      np.mean(want), rtol=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("weighted", [False, True])
def test_per_label_errors_equal_binary_ece_of_each_column(strategy, norm, weighted):
    w = WEIGHTS if weighted else None
    r = multilabel_calibration_error(Y, P, n_bins=12, strategy=strategy, norm=norm,
                                     average=None, sample_weight=w)
    for j in range(L):
        want = ece(Y[:, j], P[:, j], n_bins=12, strategy=strategy, norm=norm,
                   view="positive", sample_weight=w)
        assert np.isclose(r.per_label[j], want, rtol=1e-12, atol=1e-15)
    assert len(r.tables) == L and r.settings["average"] is None


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("weighted", [False, True])
def test_micro_is_the_ece_of_the_flattened_matrices(strategy, weighted):
    w = WEIGHTS if weighted else None
    micro = multilabel_calibration_error(Y, P, n_bins=15, strategy=strategy, average="micro",
                                         sample_weight=w)
    want = ece(Y.ravel(), P.ravel(), n_bins=15, strategy=strategy, view="positive",
               sample_weight=None if w is None else np.repeat(w, L))
    assert np.isclose(float(micro), want, rtol=1e-12)
    assert len(micro.tables) == 1 and micro.table.n_samples == (N * L if w is None
                                                                 else w.sum() * L)


def test_macro_and_weighted_averages_by_hand():
    per = np.array([brute_force_ece(Y[:, j], P[:, j], 15) for j in range(L)])
    positives = Y.sum(0)
    assert np.isclose(multilabel_ece(Y, P), per.mean(), rtol=1e-12)
    assert np.isclose(multilabel_ece(Y, P, average="weighted"),
                      (per * positives).sum() / positives.sum(), rtol=1e-12)
    r = multilabel_calibration_error(Y, P, average="weighted", sample_weight=WEIGHTS)
    np.testing.assert_allclose(r.support, WEIGHTS @ Y)
    assert np.isclose(float(r), (r.per_label * r.support).sum() / r.support.sum())


def test_one_hot_rows_summing_to_one_give_the_classwise_ece():
    z = rng.normal(size=(500, 5)) * 2
    labels = np.array([rng.choice(5, p=q) for q in softmax(z / 2)])
    p = softmax(z)
    onehot = np.eye(5, dtype=int)[labels]
    assert np.isclose(multilabel_ece(onehot, p, n_bins=10),
                      ece(labels, p, n_bins=10, view="classwise"), rtol=1e-12)


def test_labels_without_positives_or_negatives_give_finite_errors():
    y = Y.copy()
    y[:, 1] = 0  # no positives
    y[:, 2] = 1  # no negatives
    r = multilabel_calibration_error(y, P, n_bins=10, average=None)
    assert np.isfinite(r.per_label).all()
    assert np.isclose(r.per_label[1], P[:, 1].mean())       # |mean p - 0|, bin by bin
    assert np.isclose(r.per_label[2], 1 - P[:, 2].mean())
    weighted = multilabel_ece(y, P, n_bins=10, average="weighted")
    keep = [0, 2, 3]
    s = y[:, keep].sum(0)
    assert np.isclose(weighted, (r.per_label[keep] * s).sum() / s.sum())
    with pytest.raises(ValueError, match="no positive"):
        multilabel_ece(np.zeros_like(Y), P, average="weighted")
    assert np.isfinite(multilabel_ece(np.zeros_like(Y), P))


def test_logits_argument_applies_the_sigmoid():
    z = rng.normal(size=(N, L)) * 3
    for average in ("macro", "micro", "weighted", None):
        np.testing.assert_allclose(multilabel_ece(Y, z, logits=True, average=average),
                                   multilabel_ece(Y, expit(z), average=average), rtol=1e-12)
    with pytest.raises(ValueError, match="logits=True"):
        multilabel_ece(Y, z)


@pytest.mark.parametrize("y, p, match", [
    (Y[:, 0], P, "multiclass"),                              # integer labels, (N, K) probs
    (np.argmax(P, 1), softmax(P), "class-wise"),
    (Y[:, :3], P, "shape"),
    (Y * 2, P, "0/1"),
    (Y, P[:, 0], "2-D"),
    (Y, np.where(P > 0.5, np.nan, P), "NaN"),
    (Y, P.astype(int), "floating"),
    (Y[:0], P[:0], "empty"),
])
def test_bad_inputs_are_refused(y, p, match):
    with pytest.raises(ValueError, match=match):
        multilabel_ece(y, p)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="average"):
        multilabel_ece(Y, P, average="samples")
    with pytest.raises(ValueError, match="logits"):
        multilabel_ece(Y, P, logits="yes")
    with pytest.raises(ValueError, match="n_bins"):
        multilabel_ece(Y, P, n_bins=N + 1)
    with pytest.raises(ValueError, match="sample_weight"):
        multilabel_ece(Y, P, sample_weight=np.ones(N - 1))
    with pytest.raises(ValueError, match="norm"):
        multilabel_ece(Y, P, norm="L1")


def test_boolean_labels_and_pandas_frames():
    pd = pytest.importorskip("pandas")
    want = multilabel_ece(Y, P)
    assert multilabel_ece(Y.astype(bool), P) == want
    assert multilabel_ece(pd.DataFrame(Y), pd.DataFrame(P)) == want


def test_result_exports_and_per_label_float():
    r = multilabel_calibration_error(Y, P, n_bins=5)
    assert isinstance(r, MultilabelCalibrationResult)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d and len(d["tables"]) == L
    assert len(d["per_label"]) == L and d["settings"]["view"] == "multilabel"
    assert "macro ECE" in repr(r)
    none = multilabel_calibration_error(Y, P, n_bins=5, average=None)
    with pytest.raises(TypeError, match="per_label"):
        float(none)
    assert "per-label ECE" in none.describe()
    pytest.importorskip("pandas")
    frame = r.to_frame()
    assert sorted(set(frame["table"])) == list(range(L)) and len(frame) == 5 * L


def test_brier_and_nll_equal_scikit_learn_per_column():
    brier = [brier_score_loss(Y[:, j], P[:, j]) for j in range(L)]
    bce = [log_loss(Y[:, j], P[:, j], labels=[0, 1]) for j in range(L)]
    np.testing.assert_allclose(multilabel_brier(Y, P, average=None), brier, rtol=1e-12)
    np.testing.assert_allclose(multilabel_nll(Y, P, average=None), bce, rtol=1e-10)
    assert np.isclose(multilabel_brier(Y, P), np.mean(brier))
    assert np.isclose(multilabel_brier(Y, P, average="micro"), np.mean((P - Y) ** 2))
    s = Y.sum(0)
    assert np.isclose(multilabel_nll(Y, P, average="weighted"), (np.array(bce) * s).sum()
                      / s.sum())
    wb = [brier_score_loss(Y[:, j], P[:, j], sample_weight=WEIGHTS) for j in range(L)]
    np.testing.assert_allclose(multilabel_brier(Y, P, average=None, sample_weight=WEIGHTS), wb)


def test_nll_from_logits_is_exact_where_probabilities_saturate():
    z = np.array([[40.0, -40.0], [-3.0, 2.0]])
    y = np.array([[0, 1], [1, 1]])
    got = multilabel_nll(y, z, logits=True, average=None)
    want = np.array([(np.log1p(np.exp(40.0)) + np.log1p(np.exp(3.0))) / 2,
                     (np.log1p(np.exp(40.0)) + np.log1p(np.exp(-2.0))) / 2])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    clipped = multilabel_nll(y, expit(z), average=None)  # p = 1 - 4e-18 rounds to 1: clipped
    assert np.isfinite(clipped).all() and clipped[0] < got[0]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(5, 60), n_labels=st.integers(1, 5),
       average=st.sampled_from(["macro", "micro", "weighted"]))
def test_invariant_to_label_and_sample_order_and_repeated_rows(seed, n, n_labels, average):
    r = np.random.default_rng(seed)
    p = r.uniform(size=(n, n_labels))
    y = (r.uniform(size=(n, n_labels)) < p).astype(int)
    y[0] = 1  # a positive in every label (for average="weighted")
    w = r.integers(1, 4, n)
    value = multilabel_ece(y, p, n_bins=4, average=average, sample_weight=w)
    cols, rows = r.permutation(n_labels), r.permutation(n)
    assert np.isclose(multilabel_ece(y[rows][:, cols], p[rows][:, cols], n_bins=4,
                                     average=average, sample_weight=w[rows]), value)
    rep = np.repeat(np.arange(n), w)
    assert np.isclose(multilabel_ece(y[rep], p[rep], n_bins=4, average=average), value)


def test_torch_inputs_stay_on_their_device_and_match_numpy():
    torch = pytest.importorskip("torch")
    yt, pt = torch.as_tensor(Y), torch.as_tensor(P, dtype=torch.float32)
    p32 = P.astype(np.float32)
    for average in ("macro", "micro", "weighted", None):
        for strategy in ("uniform", "quantile"):
            got = multilabel_ece(yt, pt, average=average, strategy=strategy)
            assert torch.is_tensor(got) and got.dtype == torch.float64
            np.testing.assert_allclose(got.numpy(), multilabel_ece(Y, p32, average=average,
                                                                   strategy=strategy),
                                       rtol=1e-9)
    z = torch.as_tensor(np.log(P / (1 - P)))
    assert np.isclose(float(multilabel_ece(yt, z, logits=True)), multilabel_ece(Y, P))
    np.testing.assert_allclose(multilabel_brier(yt, pt, average=None).numpy(),
                               multilabel_brier(Y, p32, average=None), rtol=1e-9)
    np.testing.assert_allclose(multilabel_nll(yt, z, logits=True, average=None).numpy(),
                               multilabel_nll(Y, P, average=None), rtol=1e-9)
    np.testing.assert_allclose(float(multilabel_nll(yt, pt)), multilabel_nll(Y, p32),
                               rtol=1e-9)
    np.testing.assert_allclose(
        float(multilabel_ece(yt, pt, sample_weight=torch.as_tensor(WEIGHTS))),
        multilabel_ece(Y, p32, sample_weight=WEIGHTS), rtol=1e-9)
