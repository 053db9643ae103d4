"""grouped_calibration against brute-force loops, peers and the real LLM-confidence data."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from calkit.binning import sorted_pairs
from calkit.metrics.binned import ece
from calkit.metrics.bootstrap import bootstrap
from calkit.metrics.grouped import format_table, grouped_calibration, iter_groups
from conftest import shared_path

LLM_CSV = ("llm_confidence", "llm-confidence-correct.csv")
SOURCES = ("stated_confidence", "chosen_token_confidence")


# ---------------------------------------------------------------------- brute force
def brute_ece_uniform(conf, y, n_bins):
    """Right-closed equal-width bins (a, b], first bin [0, b], by an explicit loop."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == 0)]
        if members:
            gap = sum(conf[i] - y[i] for i in members)
            total += abs(gap)
    return total / len(conf)


def brute_auroc(conf, y):
    pos = [c for c, t in zip(conf, y, strict=True) if t]
    neg = [c for c, t in zip(conf, y, strict=True) if not t]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def brute_aurc(conf, y):
    """Mean over every order of tied confidences of Geifman's AURC."""
    values = sorted(set(conf), reverse=True)
    groups = [[i for i, c in enumerate(conf) if c == v] for v in values]
    results = []
    for combo in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [i for g in combo for i in g]
        errors, total = 0, 0.0
        for k, i in enumerate(order, start=1):
            errors += 1 - y[i]
            total += errors / k
        results.append(total / len(order))
    return float(np.mean(results))


TINY = {
    "model": ["m1"] * 7 + ["m2"] * 5,
    "conf": [0.9, 0.9, 0.8, 0.8, 0.8, 1.0, 0.3, 0.6, 0.6, 0.95, 0.2, 0.7],
    "right": [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
}


def same_rows(a, b) -> bool:
    """Row lists equal, NaN equal to NaN."""
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(
            x[k] == y[k] or (isinstance(x[k], float) and np.isnan(x[k]) and np.isnan(y[k]))
            for k in x) for x, y in zip(a, b, strict=True))


def test_tiny_table_matches_brute_force():
    rows = grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                               n_bins=4)
    assert [r["model"] for r in rows] == ["m1", "m2"]
    for r in rows:
        keep = [i for i, m in enumerate(TINY["model"]) if m == r["model"]]
        conf = [TINY["conf"][i] for i in keep]
        y = [TINY["right"][i] for i in keep]
        assert r["confidence"] == "conf" and r["n"] == len(keep) and r["n_missing"] == 0
        assert r["accuracy"] == pytest.approx(np.mean(y))
        assert r["mean_confidence"] == pytest.approx(np.mean(conf))
        assert r["ece_uniform"] == pytest.approx(brute_ece_uniform(conf, y, 4), abs=1e-12)
        assert r["brier"] == pytest.approx(np.mean((np.array(conf) - y) ** 2), abs=1e-12)
        assert r["auroc"] == pytest.approx(brute_auroc(conf, y), abs=1e-12)
        assert r["aurc"] == pytest.approx(brute_aurc(conf, y), abs=1e-12)
        assert r["max_confidence"] == max(conf)
        assert r["share_at_max"] == pytest.approx(conf.count(max(conf)) / len(conf))
        assert r["n_distinct"] == len(set(conf))
        counts = [conf.count(v) for v in set(conf)]
        assert r["largest_tie_share"] == pytest.approx(max(counts) / len(conf))


def test_hand_computed_group():
    # m1: conf 0.9,0.9,0.8,0.8,0.8,1.0,0.3 / right 1,0,1,1,0,1,0; 4 bins (a, b]
    # bin (0.25, 0.5]: 0.3 vs 0 -> |0.3|; bin (0.75, 1]: sum conf 5.2 vs 4 right -> 1.2
    rows = grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                               n_bins=4, strategy="uniform")
    assert rows[0]["ece_uniform"] == pytest.approx((0.3 + 1.2) / 7)
    assert "ece_quantile" not in rows[0]
    # AUROC: right {0.9, 0.8, 0.8, 1.0} vs wrong {0.9, 0.8, 0.3}: 0.9 wins 2.5 (tie 1/2),
    # each 0.8 wins 1.5, 1.0 wins 3: 8.5 of 12 pairs
    assert rows[0]["auroc"] == pytest.approx(8.5 / 12)


def test_equal_mass_bins_never_split_ties_and_shrink():
    # 10 answers, 3 distinct values: 5 equal-mass bins can only become 3 value bins
    table = {"c": [0.8] * 4 + [0.9] * 4 + [1.0] * 2, "ok": [1, 0, 1, 1, 1, 1, 1, 0, 1, 1]}
    (row,) = grouped_calibration(table, confidence="c", correct="ok", n_bins=5)
    assert row["quantile_bins"] == 3
    # with one bin per distinct value, ECE is sum over values |sum(c) - sum(ok)| / n
    expected = (abs(3.2 - 3) + abs(3.6 - 3) + abs(2.0 - 2)) / 10
    assert row["ece_quantile"] == pytest.approx(expected)


def test_too_few_answers_for_the_bins_gives_nan():
    rows = grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                               n_bins=6)
    m2 = rows[1]
    assert m2["n"] == 5 and np.isnan(m2["ece_uniform"]) and np.isnan(m2["debiased_ece"])
    assert m2["quantile_bins"] == 0 and np.isfinite(m2["brier"])


def test_missing_values_and_paired_rows():
    table = {"g": ["a"] * 6, "s": [0.9, 0.8, 0.7, 0.6, 0.9, 1.0],
             "t": [0.99, np.nan, 0.5, np.nan, 0.7, 0.8], "ok": [1, 1, 0, 0, 1, 1]}
    rows = grouped_calibration(table, confidence=["s", "t"], correct="ok", group_by="g",
                               n_bins=2)
    assert [(r["confidence"], r["n"], r["n_missing"]) for r in rows] == [("s", 6, 0),
                                                                          ("t", 4, 2)]
    paired = grouped_calibration(table, confidence="s,t", correct="ok", group_by="g",
                                 n_bins=2, paired=True)
    assert [(r["n"], r["n_missing"]) for r in paired] == [(4, 2), (4, 2)]
    assert paired[0]["mean_confidence"] == pytest.approx(np.mean([0.9, 0.7, 0.9, 1.0]))


def test_no_data_for_a_source_gives_an_empty_row():
    table = {"s": [0.9, 0.8], "t": [np.nan, np.nan], "ok": [1, 0]}
    rows = grouped_calibration(table, confidence=("s", "t"), correct="ok", n_bins=2)
    assert rows[1]["n"] == 0 and rows[1]["n_missing"] == 2 and np.isnan(rows[1]["ece_uniform"])


def test_string_columns_like_a_csv_reader():
    as_text = {"model": np.array(TINY["model"]),
               "conf": np.array([str(c) for c in TINY["conf"]]),
               "right": np.array(["TRUE" if r else "FALSE" for r in TINY["right"]])}
    a = grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                            n_bins=4)
    b = grouped_calibration(as_text, confidence="conf", correct="right", group_by="model",
                            n_bins=4)
    assert same_rows(a, b)


def test_groups_sorted_numerically_and_several_columns():
    table = {"size": [10, 2, 10, 2, 2], "set": ["x", "y", "x", "x", "y"],
             "c": [0.9, 0.5, 0.8, 0.6, 0.7], "ok": [1, 0, 1, 1, 0]}
    groups = [(g["size"], g["set"]) for g, *_ in iter_groups(
        table, confidence="c", correct="ok", group_by=("size", "set"))]
    assert groups == [(2, "x"), (2, "y"), (10, "x")]


def test_pandas_frame_matches_dict():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(TINY)
    assert same_rows(
        grouped_calibration(frame, confidence="conf", correct="right", group_by="model",
                            n_bins=4),
        grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                            n_bins=4))


def test_bootstrap_intervals_reuse_calkit_bootstrap():
    rng = np.random.default_rng(1)
    conf = rng.choice([0.6, 0.7, 0.8, 0.9, 1.0], 300)
    ok = (rng.uniform(size=300) < conf - 0.1).astype(int)
    (row,) = grouped_calibration({"c": conf, "ok": ok}, confidence="c", correct="ok",
                                 n_bins=5, ci=0.9, n_resamples=200, random_state=3)
    conf, ok = sorted_pairs(conf, ok)  # the rows' canonical order (module docstring)
    direct = bootstrap(ece, ok.astype(int), conf, n_resamples=200, confidence=0.9, random_state=3,
                       n_bins=5, strategy="uniform", view="positive")
    assert (row["ece_uniform_low"], row["ece_uniform_high"]) == (direct.low, direct.high)
    for name in ("ece_uniform", "ece_quantile", "debiased_ece", "brier", "auroc", "aurc"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"], name


def test_auroc_is_nan_when_every_answer_is_right():
    (row,) = grouped_calibration({"c": [0.9, 0.8, 0.7], "ok": [1, 1, 1]}, confidence="c",
                                 correct="ok", n_bins=2, ci=0.9, n_resamples=20,
                                 random_state=0)
    assert np.isnan(row["auroc"]) and np.isnan(row["auroc_low"])
    assert row["eaurc"] == pytest.approx(0.0) and row["aurc"] == pytest.approx(0.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(confidence="nope", correct="right"), "column 'nope' not found"),
    (dict(confidence="conf", correct="conf"), "must be different"),
    (dict(confidence="conf", correct="right", strategy="equal"), "strategy must be one of"),
    (dict(confidence="conf", correct="right", ci=95), "ci must be a confidence level"),
    (dict(confidence="conf", correct="right", n_bins=0), "n_bins must be a positive"),
    (dict(confidence=["conf", "conf"], correct="right"), "names a column twice"),
    (dict(confidence="conf", correct="right", group_by=3), "group_by must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        grouped_calibration(TINY, **kwargs)


def test_bad_values():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*percentages"):
        grouped_calibration({"c": [90, 80], "ok": [1, 0]}, confidence="c", correct="ok")
    with pytest.raises(ValueError, match="0/1 or true/false"):
        grouped_calibration({"c": [0.9, 0.8], "ok": ["yes", "maybe"]}, confidence="c",
                            correct="ok")
    with pytest.raises(ValueError, match="0/1 or booleans"):
        grouped_calibration({"c": [0.9, 0.8], "ok": [1, 2]}, confidence="c", correct="ok")
    with pytest.raises(ValueError, match="has 1 rows, expected 2"):
        grouped_calibration({"c": [0.9], "ok": [1, 0]}, confidence="c", correct="ok")
    with pytest.raises(ValueError, match="not numeric"):
        grouped_calibration({"c": ["high", "low"], "ok": [1, 0]}, confidence="c",
                            correct="ok")


def test_format_table():
    rows = grouped_calibration(TINY, confidence="conf", correct="right", group_by="model",
                               n_bins=4)
    text = format_table(rows, ["model", "n", "ece_uniform"], digits=3)
    lines = text.splitlines()
    assert lines[0].split("|")[1:4] == [" model ", " n ", " ece_uniform "]
    assert f"{rows[0]['ece_uniform']:.3f}" in lines[2] and len(lines) == 4
    with pytest.raises(ValueError, match="not in the rows"):
        format_table(rows, ["model", "nope"])


# ---------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def llm_table():
    with open(shared_path(*LLM_CSV), newline="") as fh:
        rows = list(csv.reader(fh))
    columns = zip(*rows[1:], strict=True)
    return {name: np.array(col) for name, col in zip(rows[0], columns, strict=True)}


def _subset(table, keep):
    return {k: v[keep] for k, v in table.items()}


def test_real_data_ties_are_deterministic(llm_table):
    """Row order never changes any number, although verbal confidences are heavily tied."""
    keep = np.isin(llm_table["llm"], ["gpt-4o", "Meta-Llama-3.1-8B-Instruct"])
    table = _subset(llm_table, keep)
    perm = np.random.default_rng(0).permutation(int(keep.sum()))
    kwargs = dict(confidence=SOURCES, correct="correct", group_by="llm")
    a = grouped_calibration(table, **kwargs)
    b = grouped_calibration(_subset(table, perm), **kwargs)
    assert same_rows(a, b)
    gpt = next(r for r in a if r["llm"] == "gpt-4o" and r["confidence"] == SOURCES[0])
    # 21 distinct stated values for 6,683 answers: 15 equal-mass bins collapse to 5
    assert gpt["n_distinct"] == 21 and gpt["quantile_bins"] == 5
    assert gpt["largest_tie_share"] > 0.3


def test_real_data_quantile_bins_are_whole_tie_runs(llm_table):
    from calkit.binning import bin_table

    keep = llm_table["llm"] == "gpt-4o"
    conf = llm_table["stated_confidence"][keep].astype(float)
    ok = llm_table["correct"][keep] == "TRUE"
    table = bin_table(conf, ok, n_bins=15, strategy="quantile")
    values, counts = np.unique(conf, return_counts=True)
    # every bin holds whole runs of tied values: its count is a sum of value counts
    cum = np.concatenate([[0], np.cumsum(counts)])
    assert set(np.cumsum(table.count).tolist()) <= set(cum.tolist())


def test_real_data_auroc_matches_sklearn(llm_table):
    from sklearn.metrics import roc_auc_score

    keep = llm_table["llm"] == "Meta-Llama-3.1-70B-Instruct"
    table = _subset(llm_table, keep)
    rows = grouped_calibration(table, confidence=SOURCES, correct="correct", paired=True)
    present = table["chosen_token_confidence"] != "NA"
    ok = table["correct"][present] == "TRUE"
    for row in rows:
        conf = table[row["confidence"]][present].astype(float)
        assert row["n"] == int(present.sum())
        assert row["auroc"] == pytest.approx(roc_auc_score(ok, conf), abs=1e-12)


@pytest.mark.peers
def test_real_data_smooth_ece_matches_relplot(llm_table):
    relplot = pytest.importorskip("relplot")
    keep = llm_table["llm"] == "o3-2025-04-16"
    (row,) = grouped_calibration(_subset(llm_table, keep), confidence="stated_confidence",
                                 correct="correct")
    conf = llm_table["stated_confidence"][keep].astype(float)
    ok = (llm_table["correct"][keep] == "TRUE").astype(float)
    assert row["smooth_ece"] == pytest.approx(float(relplot.smECE(conf, ok)), abs=1e-6)


def brute_sweep(conf, ok):
    """Roelofs et al.'s monotone sweep with ties ranked wrong-before-right, by a plain loop."""
    order = np.lexsort((ok, conf))
    s, t = conf[order], ok[order].astype(float)
    n = len(s)
    best = abs(s.sum() - t.sum()) / n
    for b in range(2, n):
        idx = np.minimum(b - 1, np.floor((np.arange(n) / n) * b)).astype(int)
        acc = [t[idx == j].mean() for j in range(b) if (idx == j).any()]
        if any(a2 < a1 for a1, a2 in zip(acc, acc[1:], strict=False)):
            return best
        best = sum(abs(s[idx == j].sum() - t[idx == j].sum()) for j in range(b)) / n
    return best


def test_real_data_sweep_orders_ties_wrong_before_right(llm_table):
    for llm in ("gpt-4o", "o3-2025-04-16"):
        keep = llm_table["llm"] == llm
        conf = llm_table["stated_confidence"][keep].astype(float)
        ok = llm_table["correct"][keep] == "TRUE"
        (row,) = grouped_calibration({"c": conf, "ok": ok}, confidence="c", correct="ok")
        assert row["sweep_ece"] == pytest.approx(brute_sweep(conf, ok), abs=1e-12), llm


def test_nan_group_values_form_one_group():
    table = {"g": [1.0, np.nan, np.nan, 1.0], "c": [0.9, 0.8, 0.7, 0.6], "ok": [1, 0, 1, 1]}
    rows = grouped_calibration(table, confidence="c", correct="ok", group_by="g", n_bins=2)
    assert [(r["g"], r["n"]) for r in rows] == [(1.0, 2), (None, 2)]
