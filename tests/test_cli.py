"""The ``calkit`` command line, through subprocesses (real and broken files) and in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calkit import brier_score, calibration_error, debiased_ece, nll, softmax, sweep_ece
from calkit.cli import EXIT_DATA, EXIT_MISSING, EXIT_OK, EXIT_USAGE, main
from calkit.datasets import load_example
from conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env_code: str = "") -> subprocess.CompletedProcess:
    """``python -m calkit ARGS`` (``env_code`` runs first, e.g. to hide matplotlib)."""
    code = f"{env_code}\nimport sys\nfrom calkit.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def test_evaluate_example_subprocess(tmp_path):
    """The README's first command: prints the table and writes every report file."""
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "calkit", "evaluate", "--example", "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == EXIT_OK, proc.stderr
    logits, labels = load_example()
    p = softmax(logits)
    expected = {
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "ece_uniform": float(calibration_error(labels, p)),
        "ece_quantile": float(calibration_error(labels, p, strategy="quantile")),
        "debiased_ece": float(debiased_ece(labels, p)),
        "sweep_ece": float(sweep_ece(labels, p)),
        "mce_uniform": float(calibration_error(labels, p, norm="max")),
        "brier": float(brier_score(labels, p)),
        "nll": float(nll(labels, p)),
    }
    try:
        from calkit.metrics.smooth import smooth_ece
    except ImportError:
        pass
    else:
        expected["smooth_ece"] = float(smooth_ece(labels, p))
    report = json.loads((out / "report.json").read_text())
    metrics = report["models"]["model"]["metrics"]
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert f"{expected['ece_uniform']:.4f}" in proc.stdout
    assert "accuracy" in proc.stdout and "NLL" in proc.stdout
    table = report["models"]["model"]["bins"]["uniform"]
    assert sum(table["count"]) == 2000 and len(table["edges"]) == 16
    for name in ("report.md", "report.html", "reliability_uniform.png",
                 "reliability_quantile.png", "confidence_histogram.png", "risk_coverage.png"):
        assert (out / name).stat().st_size > 500, name
    assert (out / "reliability_uniform.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "src=\"reliability" not in html
    assert "![reliability_uniform](reliability_uniform.png)" in (out / "report.md").read_text()


def test_evaluate_without_matplotlib_still_writes_json(tmp_path):
    proc = run_cli("evaluate", "--example", "--out", tmp_path,
                   env_code="import sys; sys.modules['matplotlib'] = None")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "diagrams skipped" in proc.stderr
    assert (tmp_path / "report.json").exists() and not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("case, match", [
    ("nan", "NaN or infinite"),
    ("pickle", "pickle files can run arbitrary code"),
    ("object_npy", "holds Python objects (pickled)"),
    ("missing_key", "no labels array found"),
    ("shape", "30 rows of scores but 29 labels"),
    ("labels", "labels must lie in"),
    pytest.param("torch_object", "torch.load(weights_only=True) refused it",
                 marks=pytest.mark.slow),  # torch import in a subprocess: seconds
])
def test_broken_files_subprocess(tmp_path, case, match):
    z = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    y = np.arange(30) % 3
    path = tmp_path / "bad.npz"
    args = []
    if case == "nan":
        z[0, 0] = np.inf
        np.savez(path, logits=z, labels=y)
    elif case == "pickle":
        path = tmp_path / "bad.pkl"
        path.write_bytes(b"\x80\x04N.")
    elif case == "object_npy":  # an .npy that only loads with allow_pickle=True
        path = tmp_path / "scores.npy"
        np.save(path, np.array([z[0], "text", None], dtype=object), allow_pickle=True)
        np.save(tmp_path / "labels.npy", y)
        args = ["--labels", tmp_path / "labels.npy"]
    elif case == "missing_key":
        np.savez(path, logits=z)
    elif case == "shape":
        np.savez(path, logits=z, labels=y[:29])
    elif case == "torch_object":
        torch = pytest.importorskip("torch")
        path = tmp_path / "bad.pt"
        torch.save({"logits": torch.as_tensor(z), "meta": object()}, path)
    else:
        np.savez(path, logits=z, labels=y - 1)
    proc = run_cli("evaluate", path, *args)
    assert proc.returncode == EXIT_DATA, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calkit: error: ") and match in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    if case in ("pickle", "object_npy"):
        assert "numpy.savez" in lines[0]  # the hint: how to re-save safely


def test_help_has_examples():
    proc = run_cli("evaluate", "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "calkit evaluate --example" in proc.stdout
    assert "--logits" in proc.stdout and "--strategy" in proc.stdout
    assert "--group-by" in proc.stdout and "--no-progress" in proc.stdout
    top = run_cli("--help")
    assert "evaluate" in top.stdout and "calibrate" in top.stdout


@pytest.mark.parametrize("argv", [
    ["evaluate"],                                  # neither FILE nor --example
    ["evaluate", "--example", "x.npz"],            # both
    ["evaluate", "--example", "--n-bins", "0"],
    ["evaluate", "--example", "--ci", "1.5"],
    ["evaluate", "--example", "--where", "novalue"],
    ["calibrate", "--val", "a.npz", "--test", "b.npz", "--method", "magic"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("calkit: error: ")


def test_argparse_errors_exit_2(capsys):
    assert main(["evaluate", "--strategy", "median", "--example"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calkit: error: argument --strategy")


def test_no_abbreviated_options(tmp_path, capsys):
    """``--labels`` on calibrate once expanded silently to ``--labels-key``."""
    assert main(["calibrate", "--val", "a.npz", "--test", "b.npz", "--labels", "y.npy"]) == 2
    assert "unrecognized arguments: --labels" in capsys.readouterr().err
    assert main(["evaluate", "--example", "--n-bin", "5"]) == 2
    assert "unrecognized arguments: --n-bin" in capsys.readouterr().err


def test_evaluate_real_probabilities_in_process(tmp_path, capsys):
    path = shared_path("cifar_softmax_netcal", "wideresnet-16-4-cifar-10.npz")
    assert main(["evaluate", str(path), "--n-bins", "10", "--strategy", "quantile",
                 "--out", str(tmp_path), "--format", "md", "--no-plots"]) == EXIT_OK
    out = capsys.readouterr()
    assert "10000x10 probs" in out.err and "ECE (L1), 10 equal-mass bins" in out.out
    with np.load(path, allow_pickle=False) as d:
        p, y = d["predictions"], d["ground_truth"]
    report = json.loads((tmp_path / "report.json").read_text())
    got = report["models"]["model"]["metrics"]["ece_quantile"]
    assert got == pytest.approx(float(calibration_error(y, p, n_bins=10, strategy="quantile")))
    assert (tmp_path / "report.md").exists() and not (tmp_path / "report.html").exists()


def test_evaluate_llm_confidence_in_process(tmp_path, capsys):
    path = shared_path("llm_confidence", "llm-confidence-correct.csv")
    assert main(["evaluate", str(path), "--where", "llm=gpt-4o", "--out", str(tmp_path),
                 "--no-plots"]) == 0
    out = capsys.readouterr().out
    import csv

    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["llm"] == "gpt-4o"]
    conf = np.array([float(r["stated_confidence"]) for r in rows])
    right = np.array([r["correct"] == "TRUE" for r in rows])
    report = json.loads((tmp_path / "report.json").read_text())["models"]["model"]
    assert report["settings"]["view"] == "confidence"
    assert report["metrics"]["accuracy"] == pytest.approx(right.mean())
    assert report["metrics"]["brier"] == pytest.approx(np.mean((conf - right) ** 2))
    assert f"{right.mean():.4f}" in out


def _posthoc_class(monkeypatch, module: str, name: str):
    """``calkit.posthoc.<name>``; while calkit.posthoc does not export it yet, the class from
    its module is attached (the CLI looks calibrators up on the package)."""
    posthoc = pytest.importorskip("calkit.posthoc")
    if getattr(posthoc, name, None) is None:
        cls = getattr(pytest.importorskip(f"calkit.posthoc.{module}"), name, None)
        if cls is None:
            pytest.skip(f"calkit.posthoc has no {name} yet")
        monkeypatch.setattr(posthoc, name, cls, raising=False)
    return getattr(posthoc, name)


def test_calibrate(tmp_path, capsys, monkeypatch):
    val = shared_path("cifar10_resnet50_ce_vs_focal",
                      "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz")
    test = shared_path("cifar10_resnet50_ce_vs_focal",
                       "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz")
    cls = _posthoc_class(monkeypatch, "temperature", "TemperatureScaling")
    argv = ["calibrate", "--val", str(val), "--test", str(test), "--method", "ts",
            "--out", str(tmp_path), "--save", str(tmp_path / "ts.json")]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    before = report["models"]["before"]["metrics"]
    after = report["models"]["after (ts)"]["metrics"]
    # the same fit done directly: the CLI's "after" numbers are those of the fitted calibrator
    with np.load(val, allow_pickle=False) as d:
        direct = cls().fit(d["logits"], d["labels"])
    with np.load(test, allow_pickle=False) as d:
        z, y = d["logits"], d["labels"]
    p_after = direct.predict_proba(z)
    assert after["nll"] == pytest.approx(float(nll(y, p_after)), rel=1e-9)
    assert after["ece_uniform"] == pytest.approx(float(calibration_error(y, p_after)), rel=1e-9)
    assert before["nll"] == pytest.approx(float(nll(y, softmax(z))), rel=1e-9)
    assert after["nll"] < before["nll"] and after["ece_uniform"] < before["ece_uniform"]
    assert after["accuracy"] == pytest.approx(before["accuracy"])   # TS keeps the argmax
    assert "after (ts)" in out.splitlines()[0]
    assert report["calibration"]["method"] == "ts"
    saved = json.loads((tmp_path / "ts.json").read_text())
    assert "TemperatureScaling" in json.dumps(saved)
    assert (tmp_path / "reliability_before_after.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_calibrate_subprocess_on_probabilities(tmp_path):
    """Probabilities in, through ``python -m calkit``: the calibrator sees log-probabilities."""
    posthoc = pytest.importorskip("calkit.posthoc")
    if getattr(posthoc, "TemperatureScaling", None) is None:
        pytest.skip("calkit.posthoc does not export TemperatureScaling yet")
    val = shared_path("cifar_softmax_netcal", "wideresnet-16-4-cifar-10.npz")
    proc = subprocess.run([sys.executable, "-m", "calkit", "calibrate", "--val", str(val),
                           "--test", str(val), "--method", "ts", "--no-plots"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "after (ts)" in proc.stdout


def test_calibrate_without_the_method_exits_3(capsys, monkeypatch):
    posthoc = pytest.importorskip("calkit.posthoc")
    monkeypatch.delattr(posthoc, "BetaCalibration", raising=False)
    val = shared_path("cifar10_resnet50_ce_vs_focal",
                      "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz")
    assert main(["calibrate", "--val", str(val), "--test", str(val), "--method", "beta"]) \
        == EXIT_MISSING
    assert "BetaCalibration" in capsys.readouterr().err


def test_evaluate_with_bootstrap_intervals(tmp_path, capsys):
    boot = pytest.importorskip("calkit.metrics.bootstrap")
    argv = ["evaluate", "--example", "--ci", "0.9", "--n-boot", "40", "--seed", "7",
            "--no-plots", "--out", str(tmp_path), "--format", "md"]
    assert main(argv) == EXIT_OK
    model = json.loads((tmp_path / "report.json").read_text())["models"]["model"]
    assert model["settings"]["confidence_level"] == 0.9
    logits, labels = load_example()
    p = softmax(logits)
    direct = boot.bootstrap(calibration_error, labels, p, n_resamples=40, confidence=0.9,
                            random_state=7, n_bins=15, view="top_label", strategy="uniform")
    assert model["intervals"]["ece_uniform"] == pytest.approx([direct.low, direct.high])
    assert set(model["intervals"]) == set(model["metrics"])
    assert "bootstrap intervals" in (tmp_path / "report.md").read_text()
    assert f"[{direct.low:.4f}, {direct.high:.4f}]" in capsys.readouterr().out


def test_evaluate_several_files_compares_them(tmp_path, capsys):
    folder = "cifar10_resnet50_ce_vs_focal"
    ce = shared_path(folder, "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz")
    focal = shared_path(folder, "resnet50_cifar10_focal_loss_val_0.1_vanilla.npz")
    assert main(["evaluate", str(ce), str(focal), "--out", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert ce.stem in out.splitlines()[0] and focal.stem in out.splitlines()[0]
    models = json.loads((tmp_path / "report.json").read_text())["models"]
    for path in (ce, focal):
        with np.load(path, allow_pickle=False) as d:
            expected = float(calibration_error(d["labels"], softmax(d["logits"])))
        assert models[path.stem]["metrics"]["ece_uniform"] == pytest.approx(expected)
    assert (tmp_path / "reliability_uniform.png").exists()
    assert not (tmp_path / "confidence_histogram.png").exists()


def test_evaluate_grouped_llm_table(tmp_path, capsys):
    """Issue 9: --confidence/--correct/--group-by call calkit.metrics.grouped and write a tidy
    table and a diagram grid; every number equals grouped_calibration's."""
    grouped = pytest.importorskip("calkit.metrics.grouped")
    from calkit.io import read_table

    path = shared_path("llm_confidence", "llm-confidence-correct.csv")
    argv = ["evaluate", str(path), "--confidence", "stated_confidence,chosen_token_confidence",
            "--correct", "correct", "--group-by", "llm", "--where", "qset=boolq_valid",
            "--n-bins", "10", "--out", str(tmp_path), "--no-plots"]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr()
    table = read_table(path, where={"qset": "boolq_valid"})
    rows = grouped.grouped_calibration(table, confidence=("stated_confidence",
                                                          "chosen_token_confidence"),
                                       correct="correct", group_by="llm", n_bins=10)
    assert len(out.out.splitlines()) == len(rows) + 2  # header, rule, one line per row
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["rows"]) == len(rows)
    for ours, ref in zip(report["rows"], rows, strict=True):
        assert (ours["llm"], ours["confidence"], ours["n"]) == (ref["llm"], ref["confidence"],
                                                                ref["n"])
        for key in ("ece_uniform", "smooth_ece", "brier", "auroc"):
            if np.isnan(ref[key]):
                assert ours[key] is None
            else:
                assert ours[key] == pytest.approx(ref[key], rel=1e-12)
    # an independent check of one cell: stated-confidence Brier score of gpt-4o on boolq
    import csv

    with open(path, newline="") as fh:
        sel = [r for r in csv.DictReader(fh) if r["llm"] == "gpt-4o" and r["qset"] ==
               "boolq_valid" and r["stated_confidence"] not in ("", "NA")]
    conf = np.array([float(r["stated_confidence"]) for r in sel])
    right = np.array([r["correct"] == "TRUE" for r in sel])
    row = next(r for r in report["rows"] if r["llm"] == "gpt-4o"
               and r["confidence"] == "stated_confidence")
    assert row["n"] == len(sel) and row["brier"] == pytest.approx(np.mean((conf - right) ** 2))
    lines = (tmp_path / "grouped.csv").read_text().splitlines()
    assert lines[0].startswith("llm,confidence,n,") and len(lines) == len(rows) + 1


def test_evaluate_grouped_diagram_grid(tmp_path, capsys, monkeypatch):
    """One panel (with its count panel) per (group, source) that has answers; bar heights are
    the per-bin accuracies of that group's answers."""
    from calkit.plotting import ReliabilityDisplay

    drawn = []
    original = ReliabilityDisplay.from_result.__func__

    def spy(cls, result, **kw):
        disp = original(cls, result, **kw)
        drawn.append(disp)
        return disp

    monkeypatch.setattr(ReliabilityDisplay, "from_result", classmethod(spy))
    path = shared_path("llm_confidence", "llm-confidence-correct.csv")
    assert main(["evaluate", str(path), "--confidence", "stated_confidence",
                 "--group-by", "qset", "--where", "llm=gpt-4o", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [d.names for d in drawn] == [("stated_confidence",)] * len(report["rows"])
    import csv

    with open(path, newline="") as fh:
        sel = [r for r in csv.DictReader(fh) if r["llm"] == "gpt-4o" and r["qset"] ==
               report["rows"][0]["qset"] and r["stated_confidence"] not in ("", "NA")]
    conf = np.array([float(r["stated_confidence"]) for r in sel])
    right = np.array([r["correct"] == "TRUE" for r in sel])
    edges = np.arange(16) / 15
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, 14)  # (a, b] bins
    acc = [right[idx == b].mean() for b in range(15) if (idx == b).any()]
    heights = [bar.get_height() for bar in drawn[0].bars_[0]]
    np.testing.assert_allclose(heights, acc, atol=1e-12)
    assert drawn[0].hist_axes_[0] is not None and not drawn[0]._inset  # counts below, no inset
    assert "![reliability_grid](reliability_grid.png)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "reliability_grid.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_grouped_errors(tmp_path, capsys):
    path = tmp_path / "answers.csv"
    path.write_text("model,conf,ok\na,0.9,1\nb,0.4,0\n")
    assert main(["evaluate", str(path), "--group-by", "model"]) == EXIT_DATA  # no 'correct'
    assert "--correct" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--group-by", "model", "--correct", "ok",
                 "--confidence", "nope"]) == EXIT_DATA
    assert "'nope' not found" in capsys.readouterr().err
    assert main(["evaluate", "--example", "--group-by", "model"]) == EXIT_USAGE
    npz = tmp_path / "x.npz"
    np.savez(npz, logits=np.zeros((3, 2)), labels=np.zeros(3))
    assert main(["evaluate", str(npz), "--correct", "ok"]) == EXIT_DATA
    assert "expected a .csv or .parquet table" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--correct", "ok", "--group-by", "model",
                 "--n-bins", "2", "--no-plots"]) == EXIT_OK
    assert "| a " in capsys.readouterr().out


def test_bootstrap_progress_on_stderr(tmp_path, capsys, monkeypatch):
    pytest.importorskip("calkit.metrics.bootstrap")
    monkeypatch.setitem(sys.modules, "tqdm", None)  # no tqdm: the plain counter
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    argv = ["evaluate", "--example", "--ci", "0.9", "--n-boot", "20", "--no-plots"]
    assert main(argv) == EXIT_OK
    err = capsys.readouterr().err
    assert "bootstrap calibration_error: 20/20 (100%)" in err
    assert "bootstrap nll: 20/20 (100%)" in err
    assert main([*argv, "--no-progress"]) == EXIT_OK
    assert "bootstrap" not in capsys.readouterr().err


def test_bootstrap_progress_not_a_terminal(capsys, monkeypatch):
    """Logs (stderr not a terminal) get one plain line, no carriage returns."""
    pytest.importorskip("calkit.metrics.bootstrap")
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert main(["evaluate", "--example", "--ci", "0.9", "--n-boot", "20", "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "20 resamples per metric" in err


def test_exit_code_convention():
    """Every bad input, output or usage problem exits 2; 3 is a missing feature."""
    assert (EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_MISSING) == (0, 2, 2, 3)


def test_posthoc_without_sklearn_gives_the_install_hint():
    """Before: a raw ModuleNotFoundError from deep inside calkit.posthoc."""
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import calkit.posthoc\nexcept ImportError as e:\n    print(e)\n"
            "from calkit.cli import main\n"
            "print('exit', main(['calibrate', '--val', sys.argv[1], '--test', sys.argv[1]]))")
    from calkit.datasets import example_path

    proc = subprocess.run([sys.executable, "-c", code, str(example_path())],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "calkit.posthoc needs scikit-learn" in proc.stdout and "pip install" in proc.stdout
    assert "exit 3" in proc.stdout and "Traceback" not in proc.stderr
    assert proc.stderr.count("calkit: error:") == 1
