"""Streaming accumulator (calkit.stream) and chunked / Dask evaluation (calkit.chunked).

The reference for every streamed number is the same number computed on the
concatenated data: by the batch metrics, by a brute-force loop, by scikit-learn,
and (peers) by uncertainty-calibration and relplot.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calkit
from calkit.chunked import accumulate_chunked, accumulate_dask, evaluate_chunked
from calkit.metrics.smooth import smooth_ece
from calkit.stream import CalibrationAccumulator

TOL = 1e-12


def make_data(n: int, k: int, seed: int = 0, dtype=np.float64):
    """Over-confident probabilities (labels drawn at a higher temperature) and labels."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.5
    p = calkit.softmax(z).astype(dtype)
    cum = calkit.softmax(z / 1.6).cumsum(1)
    y = np.minimum((rng.uniform(size=(n, 1)) > cum).sum(1), k - 1)
    return y, p


def stream(y, p, cuts, **kwargs) -> CalibrationAccumulator:
    acc = CalibrationAccumulator(**kwargs)
    bounds = [0, *cuts, len(y)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        acc.update(y[a:b], p[a:b])
    return acc


def brute_force_ece(conf, correct, n_bins, closed="right", norm="l1"):
    """Plain loop over the bins ``(k/B, (k+1)/B]`` (or ``[..)``), no engine."""
    n, total, worst = len(conf), 0.0, 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        if closed == "right":
            inside = (conf > lo) & (conf <= hi) if k else (conf <= hi)
        else:
            inside = (conf >= lo) & (conf < hi) if k < n_bins - 1 else (conf >= lo)
        if inside.any():
            gap = abs(conf[inside].mean() - correct[inside].mean())
            total += inside.sum() / n * (gap if norm == "l1" else gap ** 2)
            worst = max(worst, gap)
    return {"l1": total, "l2": np.sqrt(total), "max": worst}[norm]


def batch_reference(y, p, n_bins=15, closed="right"):
    kw = dict(n_bins=n_bins, closed=closed)
    return dict(
        ece=calkit.ece(y, p, **kw), rmsce=calkit.ece(y, p, norm="l2", **kw),
        mce=calkit.ece(y, p, norm="max", **kw),
        debiased_ece_uniform=float(calkit.calibration_error(y, p, norm="l2", debias=True, **kw)),
        accuracy=calkit.accuracy(y, p), brier=calkit.brier_score(y, p), nll=calkit.nll(y, p))


@pytest.mark.parametrize("closed", ["right", "left"])
def test_fixed_bin_metrics_equal_batch_on_concatenation(closed):
    y, p = make_data(6000, 5, seed=1)
    out = stream(y, p, [1, 900, 901, 4000], n_bins=12, closed=closed).compute()
    ref = batch_reference(y, p, n_bins=12, closed=closed)
    assert out["n_samples"] == 6000
    for key, value in ref.items():
        assert abs(out[key] - value) < TOL, key
    conf, correct = p.max(1), p.argmax(1) == y
    for norm, key in (("l1", "ece"), ("l2", "rmsce"), ("max", "mce")):
        assert abs(out[key] - brute_force_ece(conf, correct, 12, closed, norm)) < TOL


def test_proper_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = make_data(3000, 4, seed=2)
    out = stream(y, p, [1000, 2500]).compute()
    onehot = np.eye(4)[y]
    assert abs(out["brier"] - ((p - onehot) ** 2).sum(1).mean()) < TOL
    assert abs(out["nll"] - metrics.log_loss(y, p)) < TOL
    assert abs(out["accuracy"] - metrics.accuracy_score(y, p.argmax(1))) < TOL


def test_hand_computed_two_batches():
    # bins (0, .5], (.5, 1]: batch 1 conf .9 right, .6 wrong; batch 2 conf .7 right, .8 right
    acc = CalibrationAccumulator(n_bins=2)
    acc.update([0, 1], np.array([[0.9, 0.1], [0.6, 0.4]]))
    acc.update([1, 0], np.array([[0.3, 0.7], [0.8, 0.2]]))
    out = acc.compute()
    # one bin with 4 samples: mean conf 0.75, accuracy 0.75 -> ECE 0
    assert out["ece"] == pytest.approx(0.0, abs=1e-15)
    assert out["accuracy"] == pytest.approx(0.75)
    # binary Brier (positive-class form): .1^2 + .6^2 + .3^2 + .2^2 = 0.5, mean 0.125
    assert out["brier"] == pytest.approx(0.125, abs=1e-15)
    assert acc.table.count.tolist() == [0, 4]


def test_merge_in_any_order_equals_single_stream():
    y, p = make_data(5000, 6, seed=3)
    parts = [(0, 1200), (1200, 1201), (1201, 3900), (3900, 5000)]
    accs = [CalibrationAccumulator(classwise=True).update(y[a:b], p[a:b]) for a, b in parts]
    whole = stream(y, p, [], classwise=True).compute()
    left = accs[0].copy().merge(accs[1]).merge(accs[2]).merge(accs[3]).compute()
    tree = accs[3].copy().merge(accs[1]).merge(accs[2].copy().merge(accs[0])).compute()
    for key in whole:
        assert abs(left[key] - whole[key]) < TOL and abs(tree[key] - whole[key]) < TOL, key
    assert accs[0].n_samples == 1200  # copy() left the parts unchanged


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 600), max_size=6), seed=st.integers(0, 2**16))
def test_any_split_and_merge_order_gives_the_batch_values(cuts, seed):
    y, p = make_data(600, 3, seed=seed)
    bounds = [0, *sorted(cuts), 600]
    parts = [CalibrationAccumulator(exact=True, pair_dtype="float64").update(y[a:b], p[a:b])
             for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    total = CalibrationAccumulator(exact=True, pair_dtype="float64")
    for part in reversed(parts):
        total.merge(part)
    out = total.compute()
    ref = batch_reference(y, p)
    for key, value in ref.items():
        assert abs(out[key] - value) < TOL, key
    assert abs(out["ece_quantile"] - calkit.ece(y, p, strategy="quantile")) < TOL


def test_classwise_equals_batch():
    y, p = make_data(4000, 7, seed=4)
    out = stream(y, p, [1500], classwise=True, n_bins=10).compute()
    assert abs(out["classwise_ece"] - calkit.ece(y, p, view="classwise", n_bins=10)) < TOL


def test_explicit_edges_equal_engine_table():
    y, p = make_data(3000, 3, seed=5)
    edges = np.array([0.0, 0.4, 0.55, 0.7, 0.9, 0.97, 1.0])
    acc = stream(y, p, [700, 2000], edges=edges)
    table = calkit.bin_table(p.max(1), p.argmax(1) == y, edges=edges)
    np.testing.assert_array_equal(acc.table.count, table.count)
    np.testing.assert_allclose(acc.table.sum_score, table.sum_score, rtol=1e-13)
    assert acc.table.strategy == "explicit" and acc.n_bins == 6
    out = acc.compute()
    assert abs(out["ece"] - calkit.metrics.error_from_table(table)) < TOL
    assert abs(out["debiased_ece_uniform"] - calkit.metrics.debiased_error_from_table(table)) < TOL


def test_binary_one_dimensional_input():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < p ** 1.5).astype(int)
    with pytest.raises(ValueError, match="view="):   # 1-D scores are never guessed
        stream(y, p, [500, 1500])
    out = stream(y, p, [500, 1500], view="top_label").compute()
    assert abs(out["ece"] - calkit.ece(y, p, view="top_label")) < TOL
    for view in ("positive", "confidence"):
        pos = stream(y, p, [500, 1500], view=view, exact=True).compute()
        assert abs(pos["ece"] - calkit.ece(y, p, view=view)) < TOL
        assert abs(pos["ece_quantile"] - calkit.ece(y, p, view=view, strategy="quantile")) \
            < 1e-6
        assert abs(pos["brier"] - calkit.brier_score(y, p)) < TOL
    assert abs(out["brier"] - calkit.brier_score(y, p)) < TOL
    assert abs(out["brier"] - np.mean((p - y) ** 2)) < TOL
    assert abs(out["nll"] - calkit.nll(y, p)) < TOL


def test_exact_mode_float32_equals_batch():
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = make_data(8000, 10, seed=7, dtype=np.float32)
    acc = stream(y, p, [3000, 3001, 6000], exact=True)
    out = acc.compute()
    assert abs(out["ece_quantile"] - calkit.ece(y, p, strategy="quantile")) < TOL
    assert abs(out["debiased_ece_quantile"] - calkit.debiased_ece(y, p)) < TOL
    assert abs(out["sweep_ece"] - float(calkit.sweep_ece(y, p))) < TOL
    assert abs(out["smooth_ece"] - float(smooth_ece(y, p))) < TOL
    auroc = metrics.roc_auc_score(p.argmax(1) == y, p.max(1))
    assert abs(out["auroc"] - auroc) < TOL
    scores, targets = acc.pairs()
    assert scores.dtype == np.float32 and targets.dtype == bool
    assert scores.nbytes + targets.nbytes == 5 * 8000  # 5 bytes per sample


def test_exact_mode_float64_pairs_and_rounding():
    y, p = make_data(4000, 4, seed=8)
    exact64 = stream(y, p, [2222], exact=True, pair_dtype="float64").compute()
    assert abs(exact64["ece_quantile"] - calkit.ece(y, p, strategy="quantile")) < TOL
    assert abs(exact64["sweep_ece"] - float(calkit.sweep_ece(y, p))) < TOL
    rounded = stream(y, p, [2222], exact=True).compute()  # float32 pairs from float64 input
    assert abs(rounded["ece_quantile"] - exact64["ece_quantile"]) < 1e-6
    assert abs(rounded["smooth_ece"] - exact64["smooth_ece"]) < 1e-6


@pytest.mark.peers
def test_exact_mode_matches_peers():
    cal = pytest.importorskip("calibration")
    relplot = pytest.importorskip("relplot")
    y, p = make_data(5000, 5, seed=9)
    out = stream(y, p, [1234, 4000], exact=True, pair_dtype="float64").compute()
    assert out["debiased_ece_quantile"] == pytest.approx(
        cal.get_calibration_error(p, y, mode="top-label"), abs=1e-12)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    assert out["smooth_ece"] == pytest.approx(float(relplot.smECE(conf, correct)), abs=1e-9)


def test_real_cifar10_stream_equals_batch(cifar10_ce_test):
    logits, labels = cifar10_ce_test
    p = calkit.softmax(logits)
    acc = CalibrationAccumulator(exact=True, classwise=True)
    for batch in np.array_split(np.arange(len(labels)), 7):
        acc.update(labels[batch], p[batch])
    out = acc.compute()
    for key, value in batch_reference(labels, p).items():
        assert abs(out[key] - value) < TOL, key
    assert abs(out["ece_quantile"] - calkit.ece(labels, p, strategy="quantile")) < TOL
    assert abs(out["classwise_ece"] - calkit.ece(labels, p, view="classwise")) < TOL


def test_torch_state_stays_torch_and_equals_numpy():
    torch = pytest.importorskip("torch")
    y, p = make_data(3000, 5, seed=10, dtype=np.float32)
    ref = stream(y, p, [1000], exact=True, classwise=True).compute()
    acc = stream(torch.as_tensor(y), torch.as_tensor(p), [1000], exact=True, classwise=True)
    out = acc.compute()
    assert torch.is_tensor(acc.table.count) and torch.is_tensor(out["ece"])
    for key, value in ref.items():
        assert abs(float(out[key]) - value) < TOL, key
    mixed = CalibrationAccumulator(exact=True, classwise=True).update(y[:1000], p[:1000])
    mixed.merge(CalibrationAccumulator(exact=True, classwise=True).update(
        torch.as_tensor(y[1000:]), torch.as_tensor(p[1000:])))
    assert abs(mixed.compute()["ece"] - ref["ece"]) < TOL
    torch_first = CalibrationAccumulator(exact=True, classwise=True).update(
        torch.as_tensor(y[:1000]), torch.as_tensor(p[:1000]))
    torch_first.merge(CalibrationAccumulator(exact=True, classwise=True).update(y[1000:],
                                                                            p[1000:]))
    out = torch_first.compute()
    assert abs(float(out["ece_quantile"]) - ref["ece_quantile"]) < TOL
    assert abs(float(out["classwise_ece"]) - ref["classwise_ece"]) < TOL


def test_state_size_does_not_grow_with_samples():
    y, p = make_data(20000, 8, seed=11)
    acc = CalibrationAccumulator(n_bins=20, classwise=True)
    for batch in np.array_split(np.arange(20000), 40):
        acc.update(y[batch], p[batch])
    sizes = {k: np.shape(v) for k, v in acc.state_dict()["arrays"].items()}
    assert sizes == {"count": (20,), "sum_score": (20,), "sum_target": (20,),
                     "cw_count": (8, 20), "cw_sum_score": (8, 20), "cw_sum_target": (8, 20),
                     "brier": (), "nll": ()}
    assert acc.state_dict()["pairs"] == []


def test_reset_and_empty_batches():
    y, p = make_data(500, 3, seed=12)
    acc = CalibrationAccumulator(exact=True)
    acc.update(y[:0], p[:0])
    assert acc.n_samples == 0
    acc.update(y, p)
    before = acc.compute()
    acc.reset()
    assert acc.n_samples == 0 and acc.n_classes is None
    with pytest.raises(ValueError, match="no samples"):
        acc.compute()
    assert acc.update(y, p).compute()["ece"] == before["ece"]


def test_state_dict_round_trip():
    y, p = make_data(1000, 3, seed=13)
    acc = stream(y, p, [400], exact=True)
    other = CalibrationAccumulator(exact=True).load_state_dict(acc.state_dict())
    assert other.compute() == acc.compute()
    with pytest.raises(ValueError, match="settings"):
        CalibrationAccumulator(n_bins=10).load_state_dict(acc.state_dict())


def test_invalid_input_and_settings():
    y, p = make_data(100, 3, seed=14)
    acc = CalibrationAccumulator().update(y, p)
    with pytest.raises(ValueError, match="4 classes but earlier ones had 3 classes"):
        acc.update(y, np.full((100, 4), 0.25))
    with pytest.raises(ValueError, match="1-D binary"):
        acc.update(y % 2, np.full(100, 0.5))
    with pytest.raises(ValueError, match="different settings"):
        acc.merge(CalibrationAccumulator(n_bins=10).update(y, p))
    with pytest.raises(TypeError, match="CalibrationAccumulator"):
        acc.merge({"count": 1})
    with pytest.raises(ValueError, match="rows of y_prob must sum to 1"):
        acc.update(y, p * 2)
    with pytest.raises(ValueError, match="exact=True"):
        acc.pairs()
    with pytest.raises(ValueError, match="n_bins"):
        CalibrationAccumulator(n_bins=0)
    with pytest.raises(ValueError, match="closed"):
        CalibrationAccumulator(closed="both")
    with pytest.raises(ValueError, match="pair_dtype"):
        CalibrationAccumulator(pair_dtype="float16")
    with pytest.raises(ValueError, match="increasing"):
        CalibrationAccumulator(edges=[0.0, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="y_true has 0 samples"):
        acc.update(y[:0], p[:5])


# ---------------------------------------------------------------------------- chunked


def test_chunked_memmap_logits_equal_batch(tmp_path, capsys):
    rng = np.random.default_rng(15)
    logits = (rng.normal(size=(20000, 10)) * 3).astype(np.float32)
    labels = rng.integers(0, 10, size=20000)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    out = evaluate_chunked(tmp_path / "labels.npy", str(tmp_path / "logits.npy"),
                           from_logits=True, chunk_bytes=100_000, progress=True, exact=True)
    p = calkit.softmax(logits)
    for key, value in batch_reference(labels, p).items():
        assert abs(out[key] - value) < TOL, key
    assert abs(out["ece_quantile"] - calkit.ece(labels, p, strategy="quantile")) < TOL
    assert capsys.readouterr().err  # a progress bar (tqdm) or progress lines were shown


def test_chunked_progress_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails -> plain lines
    y, p = make_data(1000, 3, seed=19)
    evaluate_chunked(y, p, chunk_bytes=2400, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "calkit: 100 / 1,000 rows" and lines[-1] == "calkit: 1,000 / 1,000 rows"
    assert len(lines) == 10


def test_chunked_adds_to_given_accumulator_and_checks_lengths():
    y, p = make_data(3000, 4, seed=16)
    acc = CalibrationAccumulator().update(y[:1000], p[:1000])
    accumulate_chunked(y[1000:], p[1000:], chunk_bytes=4096, accumulator=acc)
    assert abs(acc.compute()["ece"] - calkit.ece(y, p)) < TOL
    with pytest.raises(ValueError, match="rows"):
        accumulate_chunked(y[:10], p[:11])
    with pytest.raises(ValueError, match="not both"):
        accumulate_chunked(y, p, accumulator=acc, n_bins=10)
    with pytest.raises(ValueError, match="chunk_bytes"):
        accumulate_chunked(y, p, chunk_bytes=0)


# ---------------------------------------------------------------------------- Dask


def test_dask_threaded_equals_batch():
    da = pytest.importorskip("dask.array")
    y, p = make_data(9000, 6, seed=17, dtype=np.float32)
    acc = accumulate_dask(da.from_array(y, chunks=2000), da.from_array(p, chunks=(1700, 3)),
                          scheduler="threads", exact=True, classwise=True)
    out = acc.compute()
    for key, value in batch_reference(y, p).items():
        assert abs(out[key] - value) < TOL, key
    assert abs(out["classwise_ece"] - calkit.ece(y, p, view="classwise")) < TOL
    assert abs(out["sweep_ece"] - float(calkit.sweep_ece(y, p))) < TOL


def test_dask_logits_and_length_check():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(18)
    z = rng.normal(size=(3000, 3))
    y = rng.integers(0, 3, size=3000)
    acc = accumulate_dask(y, da.from_array(z, chunks=(1000, 3)), from_logits=True,
                          scheduler="threads")
    assert abs(acc.compute()["nll"] - calkit.nll(y, calkit.softmax(z))) < TOL
    with pytest.raises(ValueError):
        accumulate_dask(y[:2999], da.from_array(z, chunks=(1000, 3)), scheduler="threads")
