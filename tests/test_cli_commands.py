"""``calkit calibrate`` and ``calkit apply`` on real and synthetic files (issue 14).

Every number the commands print or write is checked against the same calibrator
fitted directly in Python on the inputs the docstrings promise (logits,
log-probabilities, the positive-class probability).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calkit import calibration_error, nll, softmax
from calkit.cli import main
from conftest import shared_path

posthoc = pytest.importorskip("calkit.posthoc")

RNG = np.random.default_rng(2026)


def _binary(n: int, seed: int):
    """Over-confident binary probabilities of class 1 and labels drawn from the truth."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < truth).astype(np.int64)
    logit = np.log(truth / (1 - truth)) * 2.5
    return 1 / (1 + np.exp(-logit)), y


def _multiclass(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    y = np.array([rng.choice(k, p=row) for row in softmax(z / 2)])
    return z, y


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())["models"]


def test_calibrate_npy_files_with_labels(tmp_path, capsys):
    """Before: .npy files could not be calibrated (no labels option; '--labels' silently
    became '--labels-key')."""
    z, y = _multiclass(800, 4, 1)
    p = softmax(z)
    for name, a in (("val.npy", p[:400]), ("val_y.npy", y[:400]), ("test.npy", p[400:]),
                    ("test_y.npy", y[400:])):
        np.save(tmp_path / name, a)
    out = tmp_path / "rep"
    argv = ["calibrate", "--val", str(tmp_path / "val.npy"), "--val-labels",
            str(tmp_path / "val_y.npy"), "--test", str(tmp_path / "test.npy"), "--test-labels",
            str(tmp_path / "test_y.npy"), "--method", "ts", "--out", str(out), "--no-plots"]
    assert main(argv) == 0
    direct = posthoc.TemperatureScaling().fit(np.log(p[:400]), y[:400])
    expected = direct.predict_proba(np.log(p[400:]))
    after = _report(out)["after (ts)"]["metrics"]
    assert after["nll"] == pytest.approx(float(nll(y[400:], expected)), rel=1e-9)
    err = capsys.readouterr().err
    assert "probabilities: non-negative rows that sum to 1" in err   # what was inferred


def test_calibrate_dirichlet(tmp_path):
    z, y = _multiclass(900, 3, 2)
    np.savez(tmp_path / "d.npz", val_logits=z[:450], val_labels=y[:450], test_logits=z[450:],
             test_labels=y[450:])
    out = tmp_path / "rep"
    assert main(["calibrate", "--val", str(tmp_path / "d.npz"), "--test",
                 str(tmp_path / "d.npz"), "--method", "dirichlet", "--out", str(out),
                 "--no-plots"]) == 0
    expected = posthoc.DirichletCalibration().fit(z[:450], y[:450]).predict_proba(z[450:])
    after = _report(out)["after (dirichlet)"]["metrics"]
    assert after["ece_uniform"] == pytest.approx(float(calibration_error(y[450:], expected)),
                                                 rel=1e-9)


@pytest.mark.parametrize("method", ["beta", "platt"])
def test_binary_calibrators_get_probabilities(tmp_path, method):
    """Beta calibration is fitted on P(y=1) itself (not on log-probabilities), Platt on its
    logit: the CLI equals the calibrators fitted on those 1-D scores directly."""
    p, y = _binary(2000, 3)
    two = np.column_stack([1 - p, p])
    np.savez(tmp_path / "val.npz", probs=two[:1000], labels=y[:1000])
    np.savez(tmp_path / "test.npz", probs=two[1000:], labels=y[1000:])
    out = tmp_path / "rep"
    assert main(["calibrate", "--val", str(tmp_path / "val.npz"), "--test",
                 str(tmp_path / "test.npz"), "--method", method, "--view", "positive",
                 "--out", str(out), "--no-plots"]) == 0
    if method == "beta":
        cal = posthoc.BetaCalibration().fit(p[:1000], y[:1000])
        expected = cal.predict_proba(p[1000:])
    else:
        logit = np.log(p) - np.log1p(-p)
        cal = posthoc.PlattScaling().fit(logit[:1000], y[:1000])
        expected = cal.predict_proba(logit[1000:])
    models = _report(out)
    after = models[f"after ({method})"]
    assert after["settings"]["view"] == "positive"
    got = after["metrics"]["ece_uniform"]
    assert got == pytest.approx(float(calibration_error(y[1000:], expected, view="positive")),
                                rel=1e-6)
    before = models["before"]["metrics"]["ece_uniform"]
    assert before == pytest.approx(float(calibration_error(y[1000:], two[1000:],
                                                           view="positive")), rel=1e-12)
    assert got < before


def test_view_positive_on_binary_evaluate(tmp_path, capsys):
    p, y = _binary(500, 4)
    np.savez(tmp_path / "b.npz", probs=np.column_stack([1 - p, p]), labels=y)
    assert main(["evaluate", str(tmp_path / "b.npz"), "--view", "positive", "--out",
                 str(tmp_path / "rep"), "--no-plots"]) == 0
    metrics = _report(tmp_path / "rep")["model"]["metrics"]
    assert metrics["ece_uniform"] == pytest.approx(
        float(calibration_error(y, np.column_stack([1 - p, p]), view="positive")), rel=1e-12)


def test_calibrate_confidence_table(tmp_path, capsys):
    """(confidence, correct) tables from the command line: beta calibration of the stated
    confidence of LLM answers, fitted on one question set and tested on another."""
    path = shared_path("llm_confidence", "llm-confidence-correct.csv")
    import csv

    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["llm"] == "gpt-4o"]
    qsets = sorted({r["qset"] for r in rows})

    def part(name, keep):
        sel = [r for r in rows if keep(r["qset"])]
        target = tmp_path / name
        target.write_text("answer_conf,is_right\n" + "".join(
            f"{r['stated_confidence']},{r['correct']}\n" for r in sel))
        conf = np.array([float(r["stated_confidence"]) for r in sel])
        right = np.array([r["correct"] == "TRUE" for r in sel], dtype=np.int64)
        return target, conf, right

    val, cv, yv = part("val.csv", lambda q: q != qsets[0])
    test, ct, yt = part("test.csv", lambda q: q == qsets[0])
    out = tmp_path / "rep"
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--confidence",
                 "answer_conf", "--correct", "is_right", "--method", "beta", "--out", str(out),
                 "--save", str(tmp_path / "beta.json"), "--no-plots"]) == 0
    expected = posthoc.BetaCalibration().fit(cv, yv).predict_proba(ct)
    after = _report(out)["after (beta)"]
    assert after["settings"]["view"] == "confidence"   # (correct, confidence) pairs
    assert after["metrics"]["brier"] == pytest.approx(float(np.mean((expected - yt) ** 2)),
                                                      rel=1e-6)
    assert "(confidence, correct) table" in capsys.readouterr().err
    # the saved calibrator applies to a new table the same way
    assert main(["apply", str(tmp_path / "beta.json"), str(test), "--confidence",
                 "answer_conf", "--correct", "is_right", "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as d:
        np.testing.assert_allclose(d["probs"], expected, rtol=1e-6)
        np.testing.assert_array_equal(d["labels"], yt)


def test_calibrate_confidence_default_method_is_platt(tmp_path, capsys):
    conf, y = _binary(600, 5)
    lines = "".join(f"{float(c)!r},{'TRUE' if v else 'FALSE'}\n"
                    for c, v in zip(conf, y, strict=True))
    (tmp_path / "a.csv").write_text("confidence,correct\n" + lines)
    assert main(["calibrate", "--val", str(tmp_path / "a.csv"), "--test",
                 str(tmp_path / "a.csv"), "--confidence", "confidence", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "after (platt)" in out.splitlines()[0]


def test_apply_matches_calibrate(tmp_path, capsys):
    """``calibrate --save`` then ``apply``: the written probabilities are the calibrator's,
    and evaluating them gives calibrate's 'after' numbers."""
    z, y = _multiclass(1200, 5, 6)
    np.savez(tmp_path / "val.npz", logits=z[:600], labels=y[:600])
    np.savez(tmp_path / "test.npz", logits=z[600:], labels=y[600:])
    save = tmp_path / "ts.json"
    assert main(["calibrate", "--val", str(tmp_path / "val.npz"), "--test",
                 str(tmp_path / "test.npz"), "--save", str(save), "--out",
                 str(tmp_path / "rep"), "--no-plots"]) == 0
    after = _report(tmp_path / "rep")["after (ts)"]["metrics"]
    out = tmp_path / "calibrated.npz"
    assert main(["apply", str(save), str(tmp_path / "test.npz"), "--out", str(out)]) == 0
    direct = posthoc.TemperatureScaling().fit(z[:600], y[:600]).predict_proba(z[600:])
    with np.load(out, allow_pickle=False) as d:
        np.testing.assert_allclose(d["probs"], direct, rtol=1e-12)
        np.testing.assert_array_equal(d["labels"], y[600:])
    assert main(["evaluate", str(out), "--out", str(tmp_path / "rep2"), "--no-plots"]) == 0
    again = _report(tmp_path / "rep2")["model"]["metrics"]
    for key in ("ece_uniform", "nll", "brier"):
        assert again[key] == pytest.approx(after[key], rel=1e-9)
    # without labels: probabilities only; .npy output
    np.save(tmp_path / "z.npy", z[600:])
    assert main(["apply", str(save), str(tmp_path / "z.npy"), "--out",
                 str(tmp_path / "p.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), direct, rtol=1e-12)
    # never over an existing file without --force; with it, replaced atomically
    assert main(["apply", str(save), str(tmp_path / "z.npy"), "--out", str(out)]) == 2
    assert main(["apply", str(save), str(tmp_path / "z.npy"), "--out", str(out),
                 "--force"]) == 0
    with np.load(out) as d:
        assert set(d.files) == {"probs"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_force_replaces_outputs_but_never_inputs(tmp_path, capsys):
    """Before: ``--save`` overwrote any file, even its own --val input; --out replaced an old
    report silently."""
    z, y = _multiclass(300, 3, 7)
    val = tmp_path / "val.npz"
    np.savez(val, logits=z, labels=y)
    original = val.read_bytes()
    base = ["calibrate", "--val", str(val), "--test", str(val), "--no-plots"]
    for extra in ([], ["--force"], ["--overwrite"]):
        assert main([*base, "--save", str(val), *extra]) == 2
        assert val.read_bytes() == original
    save = tmp_path / "ts.json"
    save.write_text("keep me")
    assert main([*base, "--save", str(save)]) == 2 and save.read_text() == "keep me"
    assert main([*base, "--save", str(save), "--overwrite"]) == 0
    assert json.loads(save.read_text())["class"] == "TemperatureScaling"
    out = tmp_path / "rep"
    assert main([*base, "--out", str(out)]) == 0
    first = (out / "report.json").read_text()
    assert main([*base, "--out", str(out), "--n-bins", "5"]) == 2
    assert (out / "report.json").read_text() == first
    assert main([*base, "--out", str(out), "--n-bins", "5", "--force"]) == 0
    assert (out / "report.json").read_text() != first
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]


def test_real_data_calibrate_and_apply(tmp_path, capsys):
    val = shared_path("cifar10_resnet50_ce_vs_focal",
                      "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz")
    test = shared_path("cifar10_resnet50_ce_vs_focal",
                       "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz")
    save = tmp_path / "ets.json"
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--method", "ets",
                 "--save", str(save), "--no-plots"]) == 0
    assert main(["apply", str(save), str(test), "--out", str(tmp_path / "c.npz")]) == 0
    with np.load(val) as d:
        cal = posthoc.EnsembleTemperatureScaling().fit(d["logits"], d["labels"])
    with np.load(test) as d, np.load(tmp_path / "c.npz") as c:
        np.testing.assert_allclose(c["probs"], cal.predict_proba(d["logits"]), rtol=1e-9)
