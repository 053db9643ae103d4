"""The binning engine against a brute-force loop, hand-computed cases and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from references import brute_bins, uc_equal_mass_bins

from calkit.binning import (
    assign_bins,
    bin_table,
    quantile_edges,
    sorted_pairs,
    table_from_ranks,
    uniform_edges,
)


def _edge_heavy_data(n=600, seed=0):
    """Scores that hit bin edges, 0 and 1 exactly, and ties."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=n)
    s[: n // 3] = np.round(s[: n // 3], 1)
    s[n // 3: n // 3 + 20] = 1.0
    s[n // 3 + 20: n // 3 + 30] = 0.0
    t = rng.uniform(size=n) < s
    return s, t


@pytest.mark.parametrize("closed", ["right", "left"])
@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
def test_uniform_matches_brute_force(closed, n_bins):
    s, t = _edge_heavy_data()
    table = bin_table(s, t, n_bins=n_bins, closed=closed)
    count, ssum, tsum = brute_bins(s, t, uniform_edges(n_bins), closed)
    np.testing.assert_array_equal(table.count, count)
    np.testing.assert_allclose(table.sum_score, ssum, rtol=1e-12)
    np.testing.assert_allclose(table.sum_target, tsum, rtol=1e-12)


@pytest.mark.parametrize("closed", ["right", "left"])
def test_explicit_edges_match_brute_force(closed):
    s, t = _edge_heavy_data(seed=1)
    edges = np.array([0.0, 0.25, 0.3, 0.7, 0.9, 1.0])
    table = bin_table(s, t, edges=edges, closed=closed)
    count, ssum, tsum = brute_bins(s, t, edges, closed)
    np.testing.assert_array_equal(table.count, count)
    np.testing.assert_allclose(table.sum_score, ssum, rtol=1e-12)
    np.testing.assert_allclose(table.sum_target, tsum, rtol=1e-12)
    assert table.strategy == "explicit"


@pytest.mark.parametrize("closed", ["right", "left"])
def test_quantile_matches_brute_force_on_its_edges(closed):
    s, t = _edge_heavy_data(seed=2)
    table = bin_table(s, t, n_bins=15, strategy="quantile", closed=closed)
    count, ssum, tsum = brute_bins(s, t, np.asarray(table.edges), closed)
    np.testing.assert_array_equal(table.count, count)
    np.testing.assert_allclose(table.sum_score, ssum, rtol=1e-12)
    np.testing.assert_allclose(table.sum_target, tsum, rtol=1e-12)
    assert (table.count > 0).all()


def test_edge_probe_from_the_reference_notes():
    # conf = [0, .2, .4, .5, .6, .8, 1, 1], acc = [0,0,1,0,1,1,1,0], 5 bins:
    # [a,b) with 1.0 in the last bin gives 0.1875, (a,b] gives 0.2625.
    s = np.array([0, 0.2, 0.4, 0.5, 0.6, 0.8, 1, 1])
    t = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    for closed, expected in [("left", 0.1875), ("right", 0.2625)]:
        table = bin_table(s, t, n_bins=5, closed=closed)
        value = float(np.abs(table.sum_score - table.sum_target).sum() / 8)
        assert value == pytest.approx(expected, abs=1e-12)


def test_hand_computed_table():
    table = bin_table(np.array([0.1, 0.3, 0.35, 0.9]), np.array([0, 1, 0, 1]), n_bins=4)
    assert table.count.tolist() == [1, 2, 0, 1]
    np.testing.assert_allclose(table.mean_score[[0, 1, 3]], [0.1, 0.325, 0.9])
    np.testing.assert_allclose(table.mean_target[[0, 1, 3]], [0.0, 0.5, 1.0])
    assert np.isnan(table.mean_score[2]) and np.isnan(table.gap[2])  # empty bin reported
    assert table.n_samples == 4 and table.n_bins == 4
    np.testing.assert_allclose(table.weight, [0.25, 0.5, 0.0, 0.25])


def test_uniform_edges_have_no_linspace_drift():
    edges = uniform_edges(10)
    assert edges[3] == 0.3 and edges[6] == 0.6 and edges[7] == 0.7
    # 0.3 sits on an edge: right-closed puts it in the lower bin, left-closed in the upper
    assert assign_bins(np.array([0.3]), edges, "right").tolist() == [2]
    assert assign_bins(np.array([0.3]), edges, "left").tolist() == [3]


def test_zero_and_one_go_to_the_end_bins():
    s = np.array([0.0, 1.0])
    for closed in ("left", "right"):
        table = bin_table(s, np.array([0, 1]), n_bins=10, closed=closed)
        assert table.count[0] == 1 and table.count[-1] == 1


def test_quantile_distinct_scores_split_like_array_split():
    rng = np.random.default_rng(3)
    s = rng.permutation(np.linspace(0.05, 0.95, 103))
    table = bin_table(s, np.zeros(103), n_bins=10, strategy="quantile")
    sizes = [len(p) for p in np.array_split(np.arange(103), 10)]
    assert table.count.tolist() == sizes


def test_quantile_edges_equal_uncertainty_calibration_for_distinct_scores():
    rng = np.random.default_rng(4)
    s = rng.uniform(size=997)
    ours = quantile_edges(s, 15)
    theirs = uc_equal_mass_bins(s, 15)
    np.testing.assert_allclose(ours[1:], theirs, rtol=0, atol=0)
    assert ours[0] == 0.0


def test_quantile_with_ties_gives_fewer_nonempty_bins_and_no_nan():
    s = np.repeat([0.5, 0.9, 1.0], [50, 30, 20])
    table = bin_table(s, np.ones(100), n_bins=15, strategy="quantile")
    assert table.count.tolist() == [50, 30, 20]
    assert not np.isnan(table.mean_score).any()
    assert table.edges[0] == 0.0 and table.edges[-1] == 1.0


def test_quantile_with_fewer_samples_than_bins_uses_one_bin_per_sample():
    table = bin_table(np.array([0.2, 0.6, 0.7]), np.array([0, 1, 1]), n_bins=15,
                      strategy="quantile")
    assert table.count.tolist() == [1, 1, 1]


def test_quantile_all_equal_scores_is_one_bin():
    table = bin_table(np.full(40, 0.7), np.arange(40) % 2, n_bins=10, strategy="quantile")
    assert table.count.tolist() == [40]
    assert float(table.gap[0]) == pytest.approx(0.2)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sorted_pairs_orders_ties_by_target(dtype):
    s = np.array([0.5, 0.25, 0.5, 0.5, 0.0, 1.0], dtype=dtype)
    t = np.array([1, 0, 0, 1, 1, 0], dtype=bool)
    ss, tt = sorted_pairs(s, t)
    assert ss.dtype == dtype
    assert ss.tolist() == [0.0, 0.25, 0.5, 0.5, 0.5, 1.0]
    assert tt.tolist() == [True, False, False, True, True, False]


@pytest.mark.parametrize("kind", ["float16", "float32", "float64", "torch32", "torch_bf16"])
def test_sorted_pairs_equals_a_lexicographic_sort(kind):
    # packed (bit pattern, target) keys against numpy's lexsort, with many ties and subnormals
    rng = np.random.default_rng(5)
    s = np.round(rng.random(3000), 2)
    s[:5] = [0.0, 1.0, np.finfo(np.float32).smallest_subnormal, 0.5, 0.5]
    t = rng.random(3000) < 0.5
    if kind.startswith("torch"):
        torch = pytest.importorskip("torch")
        dtype = torch.float32 if kind == "torch32" else torch.bfloat16
        scores, targets = torch.tensor(s).to(dtype), torch.tensor(t)
        ss, tt = sorted_pairs(scores, targets)
        assert ss.dtype == dtype and tt.dtype == torch.bool
        s, ss, tt = scores.double().numpy(), ss.double().numpy(), tt.numpy()
    else:
        s = s.astype(kind)
        ss, tt = sorted_pairs(s, t)
        assert ss.dtype == np.dtype(kind)
    order = np.lexsort((t, s))
    np.testing.assert_array_equal(ss, s[order])
    np.testing.assert_array_equal(tt, t[order])


def test_table_from_ranks_sums():
    s = np.array([0.1, 0.2, 0.3, 0.4])
    t = np.array([0, 1, 1, 1])
    table = table_from_ranks(s, t, np.array([0, 1, 4]))
    assert table.count.tolist() == [1, 3]
    np.testing.assert_allclose(table.sum_score, [0.1, 0.9])
    np.testing.assert_allclose(table.edges, [0.0, 0.15, 1.0])


def test_to_dict_is_json_ready():
    import json

    table = bin_table(np.array([0.1, 0.9]), np.array([0, 1]), n_bins=3)
    d = json.loads(json.dumps(table.to_dict()))
    assert d["count"] == [1, 0, 1] and d["closed"] == "right"


@pytest.mark.parametrize("bad, message", [
    (dict(scores=[0.1, np.nan]), "NaN"),
    (dict(scores=[0.1, 1.5]), r"\[0, 1\]"),
    (dict(scores=[[0.1, 0.2]]), "1-D"),
    (dict(scores=[]), "empty"),
    (dict(targets=[0, 2]), "0/1"),
    (dict(targets=[0, 1, 1]), "shape"),
    (dict(n_bins=0), "positive integer"),
    (dict(n_bins=2.5), "positive integer"),
    (dict(strategy="kmeans"), "strategy"),
    (dict(closed="both"), "closed"),
    (dict(edges=[0.0, 0.5, 0.5, 1.0]), "strictly increasing"),
])
def test_bad_input_raises(bad, message):
    kwargs = dict(scores=[0.1, 0.8], targets=[0, 1])
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        bin_table(**kwargs)


scores_strategy = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(scores_strategy, st.integers(1, 12), st.sampled_from(["uniform", "quantile"]),
       st.sampled_from(["left", "right"]), st.randoms(use_true_random=False))
def test_properties_counts_sums_and_permutation_invariance(values, n_bins, strategy, closed,
                                                           rnd):
    s = np.round(np.array(values), 2)  # many ties and values on edges
    t = (np.arange(len(s)) % 3 == 0)
    table = bin_table(s, t, n_bins=n_bins, strategy=strategy, closed=closed)
    assert table.count.sum() == len(s)
    assert table.sum_score.sum() == pytest.approx(s.sum())
    assert table.sum_target.sum() == t.sum()
    perm = np.array(rnd.sample(range(len(s)), len(s)))
    again = bin_table(s[perm], t[perm], n_bins=n_bins, strategy=strategy, closed=closed)
    np.testing.assert_array_equal(table.count, again.count)
    np.testing.assert_array_equal(table.edges, again.edges)
    np.testing.assert_allclose(table.sum_target, again.sum_target)
    if strategy == "quantile":
        assert (table.count > 0).all()
    count, _, tsum = brute_bins(s, t, np.asarray(table.edges), closed)
    np.testing.assert_array_equal(table.count, count)
    np.testing.assert_allclose(table.sum_target, tsum)


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
@pytest.mark.parametrize("right", [True, False])
def test_edge_search_in_the_values_dtype_equals_the_float64_search(dtype, right):
    # Edges are float64; the values are searched in their own dtype with each edge rounded
    # down (right) or up (left).  Values on and next to every rounded edge must count alike.
    from calkit.binning import _edge_positions

    rng = np.random.default_rng(3)
    edges = np.concatenate([[0.0], np.sort(rng.random(13)), [1.0 / 3.0, 1.0]])
    edges = np.unique(np.clip(edges, 0, 1))
    torch_dtype = None
    if dtype == "bfloat16":
        torch = pytest.importorskip("torch")
        torch_dtype = torch.bfloat16
        near = torch.tensor(edges).to(torch_dtype)
        around = torch.cat([near, torch.nextafter(near, torch.full_like(near, 2.0)),
                            torch.nextafter(near, torch.full_like(near, -1.0))])
        values = torch.cat([around, torch.rand(500, generator=torch.Generator().manual_seed(0))
                            .to(torch_dtype)]).clamp(0, 1).sort().values
        as64 = values.double().numpy()
        got = _edge_positions(values, torch.tensor(edges), right, len(values)).numpy()
    else:
        near = edges.astype(dtype)
        around = np.concatenate([near, np.nextafter(near, np.array(2, dtype)),
                                 np.nextafter(near, np.array(-1, dtype))])
        values = np.sort(np.clip(np.concatenate([around, rng.random(500).astype(dtype)]), 0, 1))
        as64 = values.astype(np.float64)
        got = _edge_positions(values, edges, right, len(values))
    want = np.searchsorted(as64, edges, side="right" if right else "left")
    want[0], want[-1] = 0, len(values)
    np.testing.assert_array_equal(got, want)
