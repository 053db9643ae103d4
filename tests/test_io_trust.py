"""Issue 14, files: no index column read as a class score, no softmax of probabilities.

Each reproduction here gave a plausible wrong number before the fix (noted per test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calkit import calibration_error, softmax
from calkit.io import LoadError, load_predictions

RNG = np.random.default_rng(1414)
N, K = 600, 10
_Z = RNG.normal(size=(N, K)) * 1.5
P = softmax(_Z)
Y = np.array([RNG.choice(K, p=row) for row in P])
SHARP = P ** 4 / (P ** 4).sum(1, keepdims=True)   # over-confident: ECE far from 0


def write_csv(path, columns: dict) -> None:
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    lines = [",".join(names)] + [",".join(repr(v) if isinstance(v, float) else str(v)
                                          for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def prob_columns(p) -> dict:
    return {f"p{k}": p[:, k].tolist() for k in range(p.shape[1])}


# ----------------------------------------------------------------------------- index columns

def test_pandas_index_column_is_left_out(tmp_path):
    """Before: the unnamed index column became an 11th 'logit': accuracy 0.110 and ECE 0.885
    here instead of 0.455 and 0.046."""
    path = tmp_path / "preds.csv"
    write_csv(path, {"": list(range(N)), **prob_columns(P), "label": Y.tolist()})
    pred = load_predictions(path)
    assert pred.kind == "probs" and pred.y_prob.shape == (N, K)
    np.testing.assert_array_equal(pred.y_prob, P)
    assert float(calibration_error(pred.y_true, pred.y_prob)) == pytest.approx(
        float(calibration_error(Y, P)), abs=0)
    assert any("unnamed first column" in n for n in pred.notes)
    assert pred.source["scores"] == "p0..p9 (10 columns)"


def test_pandas_to_csv_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(P, columns=[f"p{k}" for k in range(K)]).assign(label=Y)
    frame.to_csv(tmp_path / "a.csv")                 # index written as an unnamed column
    pd.read_csv(tmp_path / "a.csv").to_csv(tmp_path / "b.csv")   # then 'Unnamed: 0' too
    for name in ("a.csv", "b.csv"):
        pred = load_predictions(tmp_path / name)
        np.testing.assert_allclose(pred.y_prob, P, rtol=1e-15)
    notes = load_predictions(tmp_path / "b.csv").notes
    assert any("'Unnamed: 0'" in n for n in notes)


@pytest.mark.parametrize("name, values", [
    ("id", list(range(N))),
    ("sample_id", list(range(1000, 1000 + N))),
    ("n", list(range(1, N + 1))),                    # 1..N, no telling name
    ("step", RNG.permutation(N).tolist()),           # a shuffled 0..N-1
    ("order", list(range(0, 3 * N, 3))),            # any increasing run of integers
])
def test_row_number_columns_are_left_out(tmp_path, name, values):
    path = tmp_path / "preds.csv"
    write_csv(path, {**prob_columns(P), name: values, "label": Y.tolist()})
    pred = load_predictions(path)
    np.testing.assert_array_equal(pred.y_prob, P)
    assert any(repr(name) in n and "not a score" in n for n in pred.notes)


def test_integer_column_among_logits_is_refused(tmp_path):
    """An integer column that neither names nor counts the rows: ambiguous, name --scores."""
    path = tmp_path / "preds.csv"
    write_csv(path, {"fold": (np.arange(N) % 5).tolist(), **prob_columns(_Z),
                     "label": Y.tolist()})
    with pytest.raises(LoadError, match=r"column 'fold' holds integers .* --scores p0,p1"):
        load_predictions(path)
    pred = load_predictions(path, scores="p*")
    assert pred.kind == "logits"
    np.testing.assert_allclose(pred.logits, _Z, rtol=1e-15)


@pytest.mark.parametrize("spec", ["p*", "p", ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7",
                                              "p8", "p9"],
                                  "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9"])
def test_named_score_columns(tmp_path, spec):
    path = tmp_path / "preds.csv"
    write_csv(path, {"fold": (np.arange(N) % 5).tolist(), **prob_columns(P),
                     "label": Y.tolist(), "note": ["x"] * N})
    pred = load_predictions(path, scores=spec)
    np.testing.assert_array_equal(pred.y_prob, P)
    assert pred.source["scores"].startswith("p0")


def test_text_columns_are_said(tmp_path):
    path = tmp_path / "preds.csv"
    write_csv(path, {"image": [f"img{i}.png" for i in range(N)], **prob_columns(P),
                     "label": Y.tolist()})
    pred = load_predictions(path)
    np.testing.assert_array_equal(pred.y_prob, P)
    assert "left out text column(s) 'image'" in pred.notes


def test_non_numeric_cell_is_an_error_not_a_dropped_column(tmp_path):
    """Before: a column with one non-number cell was silently dropped (9 'classes' left)."""
    cols = prob_columns(P)
    cols["p4"] = [*cols["p4"][:7], "n/a?", *cols["p4"][8:]]
    path = tmp_path / "preds.csv"
    write_csv(path, {**cols, "label": Y.tolist()})
    with pytest.raises(LoadError, match=r"column 'p4', row 8 \(line 9\): 'n/a\?' is not a "):
        load_predictions(path)


def test_duplicate_headers_are_an_error(tmp_path):
    """Before: the second 'p1' silently replaced the first (9 columns)."""
    path = tmp_path / "preds.csv"
    path.write_text("p0,p1,p1,label\n0.2,0.3,0.5,0\n0.1,0.1,0.8,2\n")
    with pytest.raises(LoadError, match=r"duplicate column name 'p1' \(columns 2 and 3\)"):
        load_predictions(path)


def test_parquet_index_and_duplicates(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(P, columns=[f"p{k}" for k in range(K)]).assign(label=Y)
    frame.reset_index().rename(columns={"index": "Unnamed: 0"}).to_parquet(tmp_path / "a.pq")
    (tmp_path / "a.pq").rename(tmp_path / "a.parquet")
    pred = load_predictions(tmp_path / "a.parquet")
    np.testing.assert_array_equal(pred.y_prob, P)


# ----------------------------------------------------------------------------- logits or probs

def test_percentages_are_rescaled_not_softmaxed(tmp_path):
    """Before: rows summing to 100 were softmaxed as logits (ECE 0.542 here instead of 0.373)."""
    np.savez(tmp_path / "pct.npz", probs=SHARP * 100, labels=Y)
    pred = load_predictions(tmp_path / "pct.npz")
    assert pred.kind == "probs"
    np.testing.assert_allclose(pred.y_prob, SHARP, rtol=1e-12)
    expected = float(calibration_error(Y, SHARP))
    assert float(calibration_error(pred.y_true, pred.y_prob)) == pytest.approx(expected,
                                                                               rel=1e-9)
    assert "divided by 100" in " ".join(pred.notes)


def test_rows_summing_to_1_001_are_probabilities(tmp_path):
    """Before: rows summing to 1.001 were softmaxed (ECE 0.255 here instead of 0.373)."""
    np.savez(tmp_path / "p.npz", probs=SHARP * 1.001, labels=Y)
    pred = load_predictions(tmp_path / "p.npz")
    assert pred.kind == "probs"
    np.testing.assert_allclose(pred.y_prob, SHARP, rtol=1e-12)
    assert "renormalised" in " ".join(pred.notes)
    explicit = load_predictions(tmp_path / "p.npz", kind="probs")  # --probs: same, no softmax
    np.testing.assert_allclose(explicit.y_prob, SHARP, rtol=1e-12)


def test_percentages_in_a_csv(tmp_path):
    path = tmp_path / "pct.csv"
    write_csv(path, {**prob_columns(np.round(SHARP * 100, 6)), "label": Y.tolist()})
    pred = load_predictions(path)
    np.testing.assert_allclose(pred.y_prob, SHARP, atol=1e-7)


@pytest.mark.parametrize("scores, kind", [
    (_Z, "logits"),                 # negative values
    (_Z + 20, "logits"),            # all positive, far above 1, rows sum to anything
    (P, "probs"),
    (P.astype(np.float16), "probs"),
    (np.zeros((N, K)), "logits"),     # all 0: uniform logits, rows of 0 are no probabilities
])
def test_auto_kind(tmp_path, scores, kind):
    np.savez(tmp_path / "s.npz", scores=scores, labels=Y)
    assert load_predictions(tmp_path / "s.npz").kind == kind


@pytest.mark.parametrize("scores, match", [
    (RNG.uniform(size=(N, K)), "probabilities or logits"),       # [0, 1], rows not summing
    (P * 7, "every row sums to 7"),                              # counts? scaled?
    (P * 1.05, "every row sums to 1.05"),                        # off by 5 %: not loose
])
def test_ambiguous_scores_ask_for_a_flag(tmp_path, scores, match):
    np.savez(tmp_path / "s.npz", scores=scores, labels=Y)
    with pytest.raises(LoadError, match=match) as info:
        load_predictions(tmp_path / "s.npz")
    assert "--logits or --probs" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), k=st.integers(2, 8), seed=st.integers(0, 2**31),
       scale=st.sampled_from([1.0, 100.0]), jitter=st.floats(-9e-3, 9e-3))
def test_probabilities_are_never_softmaxed(tmp_path_factory, n, k, seed, scale, jitter):
    """Any non-negative rows summing to 1 (within 1e-2) or 100 load as those probabilities."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.5), size=n)
    y = rng.integers(0, k, n)
    path = tmp_path_factory.mktemp("p") / "p.npz"
    np.savez(path, probs=p * scale * (1 + jitter), labels=y)
    pred = load_predictions(path)
    assert pred.kind == "probs"
    np.testing.assert_allclose(pred.y_prob, p, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- numpy files

def test_random_bytes_npy_is_corrupt_not_pickled(tmp_path):
    """Before: 'holds Python objects (pickled)' for any unreadable .npy."""
    (tmp_path / "r.npy").write_bytes(RNG.integers(0, 256, 300, dtype=np.uint8).tobytes())
    np.save(tmp_path / "y.npy", Y)
    with pytest.raises(LoadError, match="not a valid .npy array") as info:
        load_predictions(tmp_path / "r.npy", labels=tmp_path / "y.npy")
    assert "pickled" not in str(info.value)


def test_huge_npy_header_is_refused_before_allocation(tmp_path):
    """Before: numpy tried to allocate the 8 TB the header claims."""
    path = tmp_path / "h.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    np.save(tmp_path / "y.npy", Y)
    with pytest.raises(LoadError, match=r"header claims .* \(7\.3 TiB\) but the file holds 0"):
        load_predictions(path, labels=tmp_path / "y.npy")


def test_labels_optional(tmp_path):
    np.save(tmp_path / "s.npy", P)
    pred = load_predictions(tmp_path / "s.npy", require_labels=False)
    assert pred.y_true is None and pred.n_samples == N
    np.savez(tmp_path / "s.npz", logits=_Z)
    assert load_predictions(tmp_path / "s.npz", require_labels=False).kind == "logits"


def test_table_of_scores_with_a_labels_file(tmp_path):
    """Before: --labels was silently ignored for tables."""
    path = tmp_path / "scores.csv"
    write_csv(path, {"": list(range(N)), **prob_columns(P)})
    np.save(tmp_path / "y.npy", Y)
    pred = load_predictions(path, labels=tmp_path / "y.npy")
    np.testing.assert_array_equal(pred.y_prob, P)
    np.testing.assert_array_equal(pred.y_true, Y)
    write_csv(path, {**prob_columns(P), "label": Y.tolist()})
    with pytest.raises(LoadError, match="has a label column 'label' and --labels FILE"):
        load_predictions(path, labels=tmp_path / "y.npy")
    np.save(tmp_path / "y_short.npy", Y[:-1])
    with pytest.raises(LoadError, match="rows of scores but"):
        load_predictions(path, labels=tmp_path / "y_short.npy", scores="p*")
