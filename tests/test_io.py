"""Loading predictions from files: formats, auto-detection, overrides and one-line errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from calkit import softmax
from calkit.datasets import example_path, load_example
from calkit.io import LoadError, load_predictions
from conftest import shared_path


def _one_line_error(match: str, *args, **kwargs) -> str:
    with pytest.raises(LoadError, match=match) as info:
        load_predictions(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_npz_is_logits():
    pred = load_predictions(example_path())
    logits, labels = load_example()
    assert pred.kind == "logits" and pred.view == "top_label"
    np.testing.assert_array_equal(pred.logits, logits)
    np.testing.assert_allclose(pred.y_prob, softmax(logits))
    np.testing.assert_array_equal(pred.y_true, labels)


def test_real_npz_key_detection():
    netcal = load_predictions(shared_path("cifar_softmax_netcal", "lenet-5-cifar-10.npz"))
    assert netcal.kind == "probs"
    assert netcal.source["scores"] == "predictions" and netcal.source["labels"] == "ground_truth"
    ood = shared_path("ood_mnist_fashion", "cnn_mnist_id_fashion_ood.npz")
    test = load_predictions(ood)
    assert (test.source["scores"], test.source["labels"]) == ("test_logits", "test_labels")
    val = load_predictions(ood, prefer="val")
    assert (val.source["scores"], val.source["labels"]) == ("val_logits", "val_labels")
    with np.load(ood, allow_pickle=False) as d:
        np.testing.assert_array_equal(val.logits, d["val_logits"])
    explicit = load_predictions(ood, scores_key="ood_logits", labels_key="ood_labels")
    assert explicit.source["scores"] == "ood_logits"


def test_npy_with_separate_labels_and_leading_axis():
    probs = shared_path("cv_probs_label_errors", "imdb_test_set_pyx.npy")
    labels = shared_path("cv_probs_label_errors", "imdb_test_set_original_labels.npy")
    pred = load_predictions(probs, labels=labels)
    # float32-rounded probabilities stored as float64 (max 1.00001) are still probabilities
    assert pred.kind == "probs" and pred.y_prob.shape == (25000, 2)
    assert pred.y_true.dtype == np.int64
    z = shared_path("cifar10_longtail", "cifar10_test_z.npy")
    lt = load_predictions(z, labels=shared_path("cifar10_longtail", "cifar10_test_label.npy"))
    assert lt.kind == "logits" and lt.y_prob.shape == (10000, 10)   # (1, N, K) squeezed
    _one_line_error("give the labels with --labels", probs)


def test_llm_confidence_csv(tmp_path):
    path = shared_path("llm_confidence", "llm-confidence-correct.csv")
    pred = load_predictions(path)
    assert pred.kind == "confidence" and pred.view == "positive"
    assert pred.source["confidence"] == "stated_confidence"
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    np.testing.assert_allclose(pred.y_prob, [float(r["stated_confidence"]) for r in rows])
    np.testing.assert_array_equal(pred.y_true, [r["correct"] == "TRUE" for r in rows])
    # filters and missing values on a real slice (rows of two LLMs, one without token probs)
    lines = path.read_text().splitlines()
    part = tmp_path / "part.csv"
    part.write_text("\n".join([lines[0], *lines[1:1500], *lines[-1500:]]) + "\n")
    sub = rows[:1499] + rows[-1500:]
    llm = sub[0]["llm"]
    one = load_predictions(part, where={"llm": llm})
    assert one.n_samples == sum(r["llm"] == llm for r in sub)
    message = _one_line_error("rows have no 'chosen_token_confidence'", part,
                              confidence_col="chosen_token_confidence")
    assert "--dropna" in message
    tok = load_predictions(part, confidence_col="chosen_token_confidence", dropna=True)
    assert tok.n_samples == sum(r["chosen_token_confidence"] != "NA" for r in sub) > 0
    _one_line_error("no rows match", part, where={"llm": "nobody"})
    _one_line_error("--where column 'model' not found", part, where={"model": "x"})


def test_generic_csv_with_label_and_probability_columns(tmp_path):
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(50, 3)))
    y = rng.integers(0, 3, 50)
    path = tmp_path / "preds.csv"
    lines = ["label,p0,p1,p2"] + [f"{a},{b!r},{c!r},{d!r}" for a, (b, c, d) in
                                  zip(y, p.tolist(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    pred = load_predictions(path)
    assert pred.kind == "probs"
    np.testing.assert_allclose(pred.y_prob, p, rtol=0, atol=0)
    np.testing.assert_array_equal(pred.y_true, y)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("label,p0,p1\n0,0.5,0.5\n1,0.2\n")
    _one_line_error("fields but the header has 3", ragged)


def test_explicit_kind_override(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(20, 4))               # in [0, 1] but rows do not sum to one
    y = rng.integers(0, 4, 20)
    path = tmp_path / "ambiguous.npz"
    np.savez(path, scores=p, labels=y)
    assert "--logits or --probs" in _one_line_error("rows do not sum to 1", path)
    as_logits = load_predictions(path, kind="logits")
    np.testing.assert_allclose(as_logits.y_prob, softmax(p))
    _one_line_error("--probs given but rows sum to between", path, kind="probs")


@pytest.mark.parametrize("case, match", [
    ("nan", "NaN or infinite"),
    ("shape", "10 rows of scores but 9 labels"),
    ("range", r"labels must lie in \[0, 3\]"),
    ("nolabels", "no labels array found"),
    ("twoscores", "several arrays could be meant"),
    ("object", "pickled"),
    ("corrupt", "could not be read|not a valid"),
    ("pickle", "pickle files can run arbitrary code"),
    ("suffix", "unsupported file type"),
    ("missing", "no such file"),
    ("key", "no scores array named 'nope'"),
    ("float_labels", "non-integer floats"),
])
def test_broken_files_give_one_line_errors(tmp_path, case, match):
    z = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    y = np.arange(10) % 4
    path = tmp_path / f"{case}.npz"
    kwargs = {}
    if case == "nan":
        z[3, 1] = np.nan
        np.savez(path, logits=z, labels=y)
    elif case == "shape":
        np.savez(path, logits=z, labels=y[:9])
    elif case == "range":
        np.savez(path, logits=z, labels=y + 1)
    elif case == "nolabels":
        np.savez(path, logits=z)
    elif case == "twoscores":
        np.savez(path, a_logits=z, b_logits=z, labels=y)
    elif case == "object":
        np.savez(path, logits=np.array([z, "x"], dtype=object), labels=y)
    elif case == "corrupt":
        path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    elif case == "pickle":
        path = tmp_path / "model.pkl"
        path.write_bytes(b"\x80\x04N.")
    elif case == "suffix":
        path = tmp_path / "data.txt"
        path.write_text("1 2 3")
    elif case == "missing":
        path = tmp_path / "nothing.npz"
    elif case == "key":
        np.savez(path, logits=z, labels=y)
        kwargs = {"scores_key": "nope"}
    elif case == "float_labels":
        np.savez(path, logits=z, labels=y + 0.5)
    _one_line_error(match, path, **kwargs)


def test_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    logits, labels = load_example()
    z, y = torch.from_numpy(logits), torch.from_numpy(labels)
    torch.save({"logits": z, "labels": y}, tmp_path / "d.pt")
    torch.save((z, y), tmp_path / "t.pt")
    torch.save(z, tmp_path / "z.pt")
    np.save(tmp_path / "y.npy", labels)
    for pred in (load_predictions(tmp_path / "d.pt"), load_predictions(tmp_path / "t.pt"),
                 load_predictions(tmp_path / "z.pt", labels=tmp_path / "y.npy")):
        assert pred.kind == "logits"
        np.testing.assert_array_equal(pred.logits, logits)
        np.testing.assert_array_equal(pred.y_true, labels)

    from fractions import Fraction  # picklable, but not a tensor: weights_only refuses it

    torch.save({"logits": z, "obj": Fraction(1, 3)}, tmp_path / "unsafe.pt")
    message = _one_line_error("weights_only=True", tmp_path / "unsafe.pt")
    assert "torch.save" in message


def test_parquet_needs_pandas(tmp_path, monkeypatch):
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pandas", None)
    _one_line_error("needs pandas", path)


def test_parquet_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    conf = np.array([0.9, 0.6, 0.8, 0.3])
    frame = pd.DataFrame({"confidence": conf, "correct": [True, False, True, False]})
    frame.to_parquet(tmp_path / "a.parquet")
    pred = load_predictions(tmp_path / "a.parquet")
    assert pred.kind == "confidence"
    np.testing.assert_array_equal(pred.y_prob, conf)
    np.testing.assert_array_equal(pred.y_true, [1, 0, 1, 0])
