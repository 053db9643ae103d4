"""Accumulator state: copied and validated on load, all-or-nothing updates, odd inputs.

Issue 14, item 5: ``load_state_dict`` aliased its source, a failed block of
``accumulate_chunked`` left the caller's accumulator half-updated, and a failing
bfloat16 batch set the class count.  The references are states built from the
good batches only, and the batch metrics on the same data.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calkit
from calkit.chunked import accumulate_chunked, evaluate_chunked
from calkit.stream import CalibrationAccumulator

rng = np.random.default_rng(0)
Y = rng.integers(0, 3, 600)
P = calkit.softmax(rng.normal(size=(600, 3)) * 2.0)


def _snapshot(acc: CalibrationAccumulator) -> dict:
    """Everything of the state, as plain numpy, for exact comparison."""
    s = acc.state_dict()
    arrays = None if s["arrays"] is None else {
        k: np.asarray(calkit._array.to_numpy(v)).copy() for k, v in s["arrays"].items()}
    pairs = [tuple(np.asarray(calkit._array.to_numpy(a)).copy() for a in p) for p in s["pairs"]]
    return dict(meta=(s["n_classes"], s["binary"], s["nll_eps"]), arrays=arrays, pairs=pairs)


def _same(a: dict, b: dict) -> bool:
    if a["meta"] != b["meta"] or (a["arrays"] is None) != (b["arrays"] is None):
        return False
    if a["arrays"] is not None and any(not np.array_equal(a["arrays"][k], b["arrays"][k])
                                       for k in a["arrays"]):
        return False
    return len(a["pairs"]) == len(b["pairs"]) and all(
        np.array_equal(x, y) for p, q in zip(a["pairs"], b["pairs"], strict=True)
        for x, y in zip(p, q, strict=True))


# ---------------------------------------------------------------------------- aliasing
def test_load_state_dict_copies_its_source():
    a = CalibrationAccumulator(exact=True, classwise=True).update(Y[:300], P[:300])
    state = a.state_dict()
    b = CalibrationAccumulator(exact=True, classwise=True).load_state_dict(state)
    before = _snapshot(a)
    b.update(Y[300:], P[300:])
    assert _same(_snapshot(a), before) and a.n_samples == 300 and b.n_samples == 600
    state["arrays"]["count"][:] = 0  # writing into the source changes neither accumulator
    state["pairs"][0][0][:] = 0.5
    assert a.n_samples == 300 and b.n_samples == 600
    assert float(b.pairs()[0][:300].min()) > 0.34
    a.state_dict()["arrays"]["sum_score"][:] = -1  # state_dict hands out copies
    assert float(a.table.sum_score.min()) >= 0


def test_copy_and_merge_are_independent():
    a = CalibrationAccumulator().update(Y, P)
    b = a.copy()
    b.update(Y, P)
    c = CalibrationAccumulator().merge(a)
    c.update(Y, P)
    assert (a.n_samples, b.n_samples, c.n_samples) == (600, 1200, 1200)


# ---------------------------------------------------------------------------- load validation
def _valid_state(**kwargs):
    return CalibrationAccumulator(**kwargs).update(Y, P).state_dict()


def _set(path, value):
    def change(s):
        target = s
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    return change


def _pop(*path):
    def change(s):
        target = s
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


BAD_STATES = [  # (settings of the accumulator, change to a valid state, message)
    ({}, _pop("nll_eps"), "missing \\['nll_eps'\\]"),
    ({}, _set(("extra",), 1), "unknown \\['extra'\\]"),
    ({}, _set(("settings", "n_bins"), 10), "settings"),
    ({}, _set(("nll_eps",), float("nan")), "nll_eps"),
    ({}, _set(("nll_eps",), 0.0), "nll_eps"),
    ({}, _set(("nll_eps",), 2.0), "nll_eps"),
    ({}, _set(("nll_eps",), True), "nll_eps"),
    ({}, _set(("nll_eps",), None), "nll_eps"),
    ({}, _set(("n_classes",), 1), "n_classes"),
    ({}, _set(("n_classes",), 2.5), "n_classes"),
    ({}, _set(("n_classes",), True), "n_classes"),
    ({}, _set(("n_classes",), "3"), "n_classes"),
    ({}, _set(("binary",), "no"), "binary"),
    ({}, _set(("binary",), True), "binary"),  # binary with 3 classes
    ({}, _set(("arrays",), [1, 2]), "arrays"),
    ({}, _set(("pairs",), "none"), "pairs"),
    ({}, _set(("pairs",), [(np.ones(600, np.float32), np.ones(600, bool))]), "exact=True"),
    ({}, _pop("arrays", "nll"), "keys"),
    ({}, _set(("arrays", "cw_count"), np.zeros((3, 15), np.int64)), "keys"),
    ({}, _set(("arrays", "count"), lambda c: np.append(c, 0)), "shape \\(15,\\)"),
    ({}, _set(("arrays", "brier"), lambda b: np.array([b])), "shape \\(\\)"),
    ({}, _set(("arrays", "count"), lambda c: c.astype(object)), "real numbers"),
    ({}, _set(("arrays", "count"), lambda c: c.astype(bool)), "real numbers"),
    ({}, _set(("arrays", "sum_score"), lambda c: c.astype(complex)), "real numbers"),
    ({}, _set(("arrays", "count"), lambda c: c.astype(str)), "real numbers"),
    ({}, _set(("arrays", "count"), [1] * 15), "numpy array or a torch tensor"),
    ({}, _set(("arrays", "count"), lambda c: c - c.max()), "non-negative integer"),
    ({}, _set(("arrays", "count"), lambda c: c + 0.5), "non-negative integer"),
    ({}, _set(("arrays", "count"), lambda c: np.where(c > 0, np.nan, 0.0)), "NaN"),
    ({}, _set(("arrays", "count"), lambda c: np.zeros_like(c)), "no samples"),
    ({}, _set(("arrays", "sum_score"), lambda s: s * np.nan), "NaN"),
    ({}, _set(("arrays", "sum_score"), lambda s: s + np.inf), "NaN or infinite"),
    ({}, _set(("arrays", "sum_score"), lambda s: s * 3), "sum_score.*\\[0, count\\]"),
    ({}, _set(("arrays", "sum_score"), lambda s: -s), "sum_score.*\\[0, count\\]"),
    ({}, _set(("arrays", "sum_target"), lambda s: np.where(s > 0, s - 0.5, s)),
     "whole numbers"),
    ({}, _set(("arrays", "sum_target"), lambda s: s - 1000), "sum_target.*\\[0, count\\]"),
    ({}, _set(("arrays", "brier"), -1.0), "brier"),
    ({}, _set(("arrays", "brier"), 1e9), "brier"),
    ({}, _set(("arrays", "nll"), -50.0), "nll"),
    ({}, _set(("arrays", "nll"), 1e9), "nll"),
    ({}, _set(("arrays", "nll"), np.nan), "nll"),
    ({"classwise": True}, _set(("arrays", "cw_count"), lambda c: c * 2), "every class"),
    ({"classwise": True}, _set(("arrays", "cw_sum_target"), lambda c: np.zeros_like(c)),
     "one true class"),
    ({"classwise": True}, _set(("arrays", "cw_count"), lambda c: c[:2]), "shape \\(3, 15\\)"),
    ({"exact": True}, _set(("pairs",), []), "0 samples"),
    ({"exact": True}, _set(("pairs", 0), "pair"), "pair"),
    ({"exact": True}, _set(("pairs", 0), lambda p: p[:1]), "pair"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0][:-1], p[1][:-1])), "599 samples"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0], p[1][:-1])), "one length"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0].astype(np.float16), p[1])),
     "float32"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0], p[1].astype(np.int8))), "bool"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0] * 2, p[1])), "\\[0, 1\\]"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0] * np.nan, p[1])), "finite"),
    ({"exact": True}, _set(("pairs", 0), lambda p: (p[0].tolist(), p[1])), "numpy arrays"),
]


@pytest.mark.parametrize("kwargs, change, match", BAD_STATES)
def test_invalid_states_are_refused_and_leave_the_accumulator_unchanged(kwargs, change, match):
    state = copy.deepcopy(_valid_state(**kwargs))
    change(state)
    acc = CalibrationAccumulator(**kwargs).update(Y[:100], P[:100])
    before = _snapshot(acc)
    with pytest.raises(ValueError, match=match):
        acc.load_state_dict(state)
    assert _same(_snapshot(acc), before)


@pytest.mark.parametrize("state", [None, [], "state", 3])
def test_a_state_must_be_a_dict(state):
    with pytest.raises(TypeError, match="state must be a dict"):
        CalibrationAccumulator().load_state_dict(state)


def test_valid_states_load_exactly():
    for kwargs in ({}, {"classwise": True}, {"exact": True, "pair_dtype": "float64"},
                   {"edges": [0.0, 0.3, 0.9, 1.0], "classwise": True, "exact": True}):
        acc = CalibrationAccumulator(**kwargs).update(Y, P)
        loaded = CalibrationAccumulator(**kwargs).load_state_dict(acc.state_dict())
        assert loaded.compute() == acc.compute()
    empty = CalibrationAccumulator(eps=1e-3)
    assert CalibrationAccumulator(eps=1e-3).load_state_dict(empty.state_dict()).n_samples == 0
    binary = CalibrationAccumulator(classwise=True, view="top_label").update(Y % 2, P[:, 0])
    again = CalibrationAccumulator(classwise=True, view="top_label").load_state_dict(
        binary.state_dict())
    assert again.compute() == binary.compute()


def test_integral_float_counts_are_accepted_as_counts():
    state = _valid_state()
    state["arrays"]["count"] = state["arrays"]["count"].astype(np.float32)
    acc = CalibrationAccumulator().load_state_dict(state)
    assert acc.state_dict()["arrays"]["count"].dtype == np.int64 and acc.n_samples == 600


# ---------------------------------------------------------------------------- all or nothing
BAD_BATCHES = [
    (Y[:50], np.where(np.arange(50)[:, None] == 7, np.nan, P[:50])),  # NaN row
    (Y[:50], P[:50] * 1.5),                                           # rows sum to 1.5
    (Y[:50], np.full((50, 4), 0.25)),                                 # 4 classes, not 3
    (Y[:50] + 3, P[:50]),                                             # labels out of range
    (Y[:49], P[:50]),                                                 # lengths differ
    (np.array(["a"] * 50), P[:50]),                                   # word labels
    (Y[:50] % 2, P[:50, 0]),                                          # 1-D binary after (N, 3)
    (Y[:50], -P[:50]),                                                # negative
    (Y[:50], P[:50].astype(int)),                                     # integer "probabilities"
    (Y[:50] + 0.5, P[:50]),                                           # fractional labels
]


@pytest.mark.parametrize("i", range(len(BAD_BATCHES)))
@pytest.mark.parametrize("kwargs", [{}, {"classwise": True, "exact": True}])
def test_failed_update_leaves_the_state_unchanged(i, kwargs):
    acc = CalibrationAccumulator(**kwargs).update(Y[100:200], P[100:200])
    before = _snapshot(acc)
    with pytest.raises(ValueError):
        acc.update(*BAD_BATCHES[i])
    assert _same(_snapshot(acc), before)


def test_failed_first_batch_sets_nothing():
    torch = pytest.importorskip("torch")
    acc = CalibrationAccumulator(view="top_label")   # (N, K) and 1-D batches alike
    bad = torch.tensor(P[:50], dtype=torch.bfloat16)
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        acc.update(torch.tensor(Y[:50]), bad)
    assert acc.n_classes is None and acc._nll_eps is None and acc.n_samples == 0
    acc.update(Y[:10] % 2, P[:10, 0])  # any form may still come first
    assert acc.n_classes == 2 and acc._binary


def test_failed_merge_leaves_the_state_unchanged():
    acc = CalibrationAccumulator().update(Y, P)
    before = _snapshot(acc)
    one_d = CalibrationAccumulator(view="top_label").update(Y % 2, P[:, 0])
    for other, error in ((one_d, ValueError),
                         (CalibrationAccumulator(n_bins=3).update(Y, P), ValueError),
                         ({"count": 1}, TypeError)):
        with pytest.raises(error):
            acc.merge(other)
        assert _same(_snapshot(acc), before)


GOOD = [(Y[i:i + 60], P[i:i + 60]) for i in range(0, 600, 60)]


BAD_MERGES = [CalibrationAccumulator(classwise=True, view="top_label").update(Y[:50] % 2,
                                                                            P[:50, 0]),  # 1-D
              CalibrationAccumulator(classwise=True).update(Y[:50], np.full((50, 4), 0.25)),
              CalibrationAccumulator(classwise=False).update(Y[:50], P[:50]),  # settings
              {"count": 50}]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["update", "merge"]), st.booleans(),
                          st.integers(0, 9)), min_size=1, max_size=12))
def test_good_and_bad_updates_equal_the_good_updates_alone(ops):
    # primed with 3 classes, so that every bad batch is bad (a first batch fixes the form)
    mixed = CalibrationAccumulator(classwise=True).update(*GOOD[0])
    good_only = CalibrationAccumulator(classwise=True).update(*GOOD[0])
    for op, good, i in ops:
        if good and op == "update":
            mixed.update(*GOOD[i])
            good_only.update(*GOOD[i])
        elif good:
            other = CalibrationAccumulator(classwise=True).update(*GOOD[i])
            mixed.merge(other)
            good_only.merge(other)
        elif op == "update":
            with pytest.raises(ValueError):
                mixed.update(*BAD_BATCHES[i])
        else:
            with pytest.raises((ValueError, TypeError)):
                mixed.merge(BAD_MERGES[i % len(BAD_MERGES)])
    assert _same(_snapshot(mixed), _snapshot(good_only))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9)), min_size=1, max_size=8))
def test_exact_mode_pairs_hold_only_the_good_batches(ops):
    mixed = CalibrationAccumulator(exact=True).update(*GOOD[0])
    kept = [0]
    for good, i in ops:
        if good:
            mixed.update(*GOOD[i])
            kept.append(i)
        else:
            with pytest.raises(ValueError):
                mixed.update(*BAD_BATCHES[i])
    conf, correct = mixed.pairs()
    np.testing.assert_array_equal(conf, np.concatenate([GOOD[i][1].max(1) for i in kept])
                                  .astype(np.float32))
    np.testing.assert_array_equal(correct, np.concatenate([GOOD[i][1].argmax(1) == GOOD[i][0]
                                                           for i in kept]))


# ---------------------------------------------------------------------------- chunked
@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("exact", [False, True])
def test_failed_block_leaves_the_callers_accumulator_unchanged(given, exact):
    acc = CalibrationAccumulator(exact=exact).update(Y[:100], P[:100]) if given else \
        CalibrationAccumulator(exact=exact)
    before = _snapshot(acc)
    bad = P.copy()
    bad[450] = np.nan  # a late block fails after earlier blocks were accumulated
    with pytest.raises(ValueError, match="NaN"):
        accumulate_chunked(Y, bad, chunk_bytes=24 * 50, accumulator=acc)
    assert _same(_snapshot(acc), before)
    out = accumulate_chunked(Y, P, chunk_bytes=24 * 50, accumulator=acc)
    assert out is acc and acc.n_samples == 600 + 100 * given


def _reference(y, p):
    out = CalibrationAccumulator().update(np.asarray(y), np.asarray(p, dtype=np.float64))
    return out.compute()


def _assert_close(out, ref, tol=1e-12):
    for key in ("ece", "brier", "nll", "accuracy"):
        assert abs(float(out[key]) - ref[key]) < tol, key


def test_chunked_takes_pandas_npz_entries_and_lists(tmp_path):
    pd = pytest.importorskip("pandas")
    ref = _reference(Y, P)
    _assert_close(evaluate_chunked(pd.Series(Y), pd.DataFrame(P), chunk_bytes=1000), ref)
    _assert_close(evaluate_chunked(Y.tolist(), P.tolist(), chunk_bytes=1000), ref)
    np.savez(tmp_path / "d.npz", probs=P, labels=Y)
    with np.load(tmp_path / "d.npz") as d:
        _assert_close(evaluate_chunked(d["labels"], d["probs"], chunk_bytes=1000), ref)
        with pytest.raises(ValueError, match=r"\.npz archive holding \['probs', 'labels'\]"):
            evaluate_chunked(Y, d)
    with pytest.raises(ValueError, match=r"\.npz archive"):
        evaluate_chunked(Y, tmp_path / "d.npz")


def test_chunked_takes_tensors_like_the_batch_metrics():
    torch = pytest.importorskip("torch")
    ref = _reference(Y, P)
    yt, pt = torch.as_tensor(Y), torch.as_tensor(P)
    _assert_close(evaluate_chunked(yt, P, chunk_bytes=1000), ref)       # torch labels, numpy p
    _assert_close(evaluate_chunked(Y, pt, chunk_bytes=1000), ref)       # numpy labels, torch p
    grad = pt.clone().requires_grad_(True)
    _assert_close(evaluate_chunked(yt, grad, chunk_bytes=1000), ref)
    assert abs(float(evaluate_chunked(yt, pt, chunk_bytes=1000)["ece"]) - calkit.ece(yt, pt)) \
        < 1e-12
    bf16 = pt.to(torch.bfloat16)
    out = evaluate_chunked(yt, bf16, chunk_bytes=1000)
    as32 = CalibrationAccumulator(eps=2.0 ** -7, sum_tol=1e-2).update(
        yt, bf16.float()).compute()
    _assert_close(out, {k: float(v) for k, v in as32.items()}, tol=1e-9)
    assert abs(float(out["ece"]) - calkit.ece(yt, bf16)) < 1e-9
    logits = torch.randn(600, 3, dtype=torch.bfloat16, requires_grad=True)
    out = evaluate_chunked(yt, logits, from_logits=True, chunk_bytes=100)
    assert out["n_samples"] == 600


def test_update_takes_tensors_like_the_batch_metrics():
    torch = pytest.importorskip("torch")
    yt, pt = torch.as_tensor(Y), torch.as_tensor(P)
    ref = _reference(Y, P)
    _assert_close(CalibrationAccumulator().update(yt, P).compute(), ref)
    _assert_close(CalibrationAccumulator().update(Y, pt.requires_grad_(True)).compute(), ref)
    bf16 = CalibrationAccumulator().update(yt, pt.detach().to(torch.bfloat16))
    assert bf16._nll_eps == 2.0 ** -7
    one_d = CalibrationAccumulator(view="top_label").update(
        yt % 2, pt[:, 0].detach().to(torch.bfloat16))
    assert one_d.n_samples == 600 and one_d._binary


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(chunk_bytes=0), ValueError, "chunk_bytes"),
    (dict(chunk_bytes=-5), ValueError, "chunk_bytes"),
    (dict(chunk_bytes=float("inf")), ValueError, "chunk_bytes"),
    (dict(chunk_bytes=float("nan")), ValueError, "chunk_bytes"),
    (dict(chunk_bytes=True), ValueError, "chunk_bytes"),
    (dict(chunk_bytes="16MB"), ValueError, "chunk_bytes"),
    (dict(from_logits="yes"), TypeError, "from_logits"),
    (dict(progress=1), TypeError, "progress"),
    (dict(accumulator={"count": 1}), TypeError, "CalibrationAccumulator"),
    (dict(accumulator=CalibrationAccumulator(), n_bins=5), ValueError, "not both"),
    (dict(n_bins=0), ValueError, "n_bins"),
])
def test_chunked_settings_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        accumulate_chunked(Y, P, **kwargs)


@pytest.mark.parametrize("y, p, match", [
    (Y, P[None], "y_pred must be 1-D or 2-D"),
    (Y[None, None], P, "y_true must be 1-D or 2-D"),
    (Y, np.float64(0.5), "y_pred must be 1-D or 2-D"),
    (Y[:-1], P, "599 rows but y_pred has 600"),
    (Y, [[0.5, 0.5], [0.5]], "could not be converted"),
])
def test_chunked_inputs_are_checked(y, p, match):
    with pytest.raises(ValueError, match=match):
        accumulate_chunked(y, p)


def test_chunked_refuses_object_files_and_dask(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        accumulate_chunked([0, 1, 0], tmp_path / "obj.npy")
    with open(tmp_path / "huge.npy", "wb") as f:  # a header claiming 80 TB
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 10)})
        f.write(b"\0" * 64)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        accumulate_chunked(np.zeros(5, int), tmp_path / "huge.npy")
    (tmp_path / "noise.npy").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="y_pred: .*not a valid .npy array"):
        accumulate_chunked([0], tmp_path / "noise.npy")
    with pytest.raises(ValueError, match="is a directory"):
        accumulate_chunked([0], tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        accumulate_chunked([0], tmp_path / "absent.npy")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.npy")  # reading it would block forever
        with pytest.raises(ValueError, match="not a regular file"):
            accumulate_chunked([0], tmp_path / "fifo.npy")
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="not numbers"):
        accumulate_chunked([0, 1], tmp_path / "words.npy")
    np.save(tmp_path / "p3.npy", np.ones((2, 2, 2)) / 2)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        accumulate_chunked([0, 1], tmp_path / "p3.npy")
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="accumulate_dask"):
        accumulate_chunked(Y, da.from_array(P, chunks=100))


def test_distributed_helpers_check_their_inputs():
    pytest.importorskip("torch")
    from calkit.distributed import CalibrationMetric, all_reduce_accumulator

    with pytest.raises(TypeError, match="CalibrationAccumulator"):
        all_reduce_accumulator({"count": 1})
    for flag in ("from_logits", "sync"):
        with pytest.raises(TypeError, match=flag):
            CalibrationMetric(**{flag: "yes"})
    metric = CalibrationMetric()
    metric.update(Y[:100], P[:100])
    before = _snapshot(metric.accumulator)
    with pytest.raises(ValueError, match="sum to 1"):
        metric.update(Y[:100], P[:100] * 2)
    assert _same(_snapshot(metric.accumulator), before)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(classwise="yes"), TypeError, "classwise"),
    (dict(exact=1), TypeError, "exact"),
    (dict(eps=float("inf")), ValueError, "eps"),
    (dict(eps=1.5), ValueError, "eps"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(sum_tol=float("inf")), ValueError, "sum_tol"),
    (dict(sum_tol=float("nan")), ValueError, "sum_tol"),
    (dict(edges=["a", "b"]), ValueError, "edges"),
    (dict(edges=[0.0, float("nan"), 1.0]), ValueError, "edges"),
    (dict(edges=[[0.0, 1.0]]), ValueError, "edges"),
    (dict(edges=[0.5]), ValueError, "edges"),
])
def test_accumulator_settings_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        CalibrationAccumulator(**kwargs)


def test_dask_inputs_are_checked():
    da = pytest.importorskip("dask.array")
    from calkit.chunked import accumulate_dask

    with pytest.raises(ValueError, match="599 rows but y_pred has 600"):
        accumulate_dask(da.from_array(Y[:-1]), da.from_array(P))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        accumulate_dask(da.from_array(Y), da.from_array(P[None]))
    with pytest.raises(TypeError, match="from_logits"):
        accumulate_dask(da.from_array(Y), da.from_array(P), from_logits="no")
    one_hot = accumulate_dask(da.from_array(np.eye(3)[Y], chunks=100),
                              da.from_array(P, chunks=(100, 3)), scheduler="synchronous")
    assert abs(one_hot.compute()["ece"] - calkit.ece(Y, P)) < 1e-12
