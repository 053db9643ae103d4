"""The ``calkit`` command line, through subprocesses (real and broken files) and in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from calkit import brier_score, calibration_error, debiased_ece, nll, softmax, sweep_ece
from calkit.cli import EXIT_DATA, EXIT_MISSING, EXIT_OK, EXIT_USAGE, main
from calkit.datasets import load_example

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
    ("labels", "labels must lie in"),
])
def test_broken_files_subprocess(tmp_path, case, match):
    z = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    y = np.arange(30) % 3
    path = tmp_path / "bad.npz"
    if case == "nan":
        z[0, 0] = np.inf
        np.savez(path, logits=z, labels=y)
    elif case == "pickle":
        path = tmp_path / "bad.pkl"
        path.write_bytes(b"\x80\x04N.")
    else:
        np.savez(path, logits=z, labels=y - 1)
    proc = run_cli("evaluate", path)
    assert proc.returncode == EXIT_DATA
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("calkit: error: ") and match in lines[-1]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_has_examples():
    proc = run_cli("evaluate", "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "calkit evaluate --example" in proc.stdout
    assert "--logits" in proc.stdout and "--strategy" in proc.stdout
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
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--strategy", "median", "--example"])
    assert info.value.code == EXIT_USAGE


def test_evaluate_real_probabilities_in_process(tmp_path, capsys):
    path = shared_path("cifar_softmax_netcal", "wideresnet-16-4-cifar-10.npz")
    assert main(["evaluate", str(path), "--n-bins", "10", "--strategy", "quantile",
                 "--out", str(tmp_path), "--format", "md", "--no-plots"]) == EXIT_OK
    out = capsys.readouterr()
    assert "10000x10 probs" in out.err and "ECE, 10 equal-mass bins" in out.out
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
    assert report["settings"]["view"] == "positive"
    assert report["metrics"]["accuracy"] == pytest.approx(right.mean())
    assert report["metrics"]["brier"] == pytest.approx(np.mean((conf - right) ** 2))
    assert f"{right.mean():.4f}" in out


def test_calibrate(tmp_path, capsys):
    val = shared_path("cifar10_resnet50_ce_vs_focal",
                      "resnet50_cifar10_cross_entropy_val_0.1_vanilla.npz")
    test = shared_path("cifar10_resnet50_ce_vs_focal",
                       "resnet50_cifar10_cross_entropy_test_0.9_vanilla.npz")
    argv = ["calibrate", "--val", str(val), "--test", str(test), "--method", "ts",
            "--out", str(tmp_path), "--save", str(tmp_path / "ts.json")]
    try:
        import calkit.posthoc  # noqa: F401
    except ImportError:
        assert main(argv) == EXIT_MISSING
        assert "calkit.posthoc" in capsys.readouterr().err
        return
    assert main(argv) == EXIT_OK
    report = json.loads((tmp_path / "report.json").read_text())
    before = report["models"]["before"]["metrics"]
    after = report["models"]["after (ts)"]["metrics"]
    assert after["nll"] < before["nll"]
    assert after["accuracy"] == pytest.approx(before["accuracy"])   # TS keeps the argmax
    assert (tmp_path / "ts.json").exists()
    assert (tmp_path / "reliability_before_after.png").exists()


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
