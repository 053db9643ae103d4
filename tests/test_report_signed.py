"""The report's signed ECE (over- vs under-confidence), its sentence, and its consistency test."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from calkit import ece, softmax
from calkit.datasets import load_example
from calkit.metrics import consistency_test
from calkit.report import (
    METRIC_LABELS,
    Summary,
    bootstrap_intervals,
    format_table,
    summarize,
    to_html,
    to_markdown,
)

REPO = Path(__file__).resolve().parents[1]


def _brute_parts(conf, correct, n_bins):
    """Over/under-confident parts of the L1 ECE by a loop over (a, b] bins (first closed)."""
    over = under = 0.0
    edges = np.linspace(0, 1, n_bins + 1)
    for b in range(n_bins):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) if b else conf <= edges[1]
        if inside.any():
            gap = conf[inside].mean() - correct[inside].mean()
            share = inside.mean()
            over += share * max(gap, 0.0)
            under += share * max(-gap, 0.0)
    return over, under


@pytest.fixture(scope="module")
def example():
    logits, labels = load_example()
    return labels, softmax(logits).astype(np.float64)


def test_signed_keys_are_the_brute_force_values(example):
    labels, p = example
    s = summarize(labels, p, n_bins=10, test_resamples=0)
    conf, correct = p.max(1), (p.argmax(1) == labels).astype(float)
    assert s.metrics["signed_ece"] == pytest.approx(conf.mean() - correct.mean(), abs=1e-12)
    over, under = _brute_parts(conf, correct, 10)
    assert s.metrics["ece_over"] == pytest.approx(over, abs=1e-12)
    assert s.metrics["ece_under"] == pytest.approx(under, abs=1e-12)
    assert s.metrics["ece_over"] + s.metrics["ece_under"] == pytest.approx(
        s.metrics["ece_uniform"], abs=1e-12)
    assert s.tests == {}


def test_direction_sentence_over_and_under(example):
    labels, p = example
    over = summarize(labels, p, test_resamples=0).findings()
    assert len(over) == 1 and over[0].startswith("over-confident: mean confidence above "
                                                 "accuracy by 0.0392")
    # a temperature of 3 flattens the softmax: confidence falls below accuracy
    logits, _ = load_example()
    flat = softmax(logits / 3.0)
    s = summarize(labels, flat, test_resamples=0)
    gap = flat.max(1).mean() - (flat.argmax(1) == labels).mean()
    assert gap < 0
    assert s.findings()[0].startswith(f"under-confident: mean confidence below accuracy by "
                                      f"{-gap:.4f}")


def test_direction_words_for_the_positive_view():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < p ** 2).astype(int)    # predicts the positive class too often
    s = summarize(y, p, view="positive", test_resamples=0)
    assert s.findings()[0].startswith("over-predicts the positive class: mean P(y = 1) above "
                                      f"the observed rate by {p.mean() - y.mean():.4f}")


def test_largest_gap_bin_is_named(example):
    labels, p = example
    s = summarize(labels, p, n_bins=15, test_resamples=0)
    t = s.tables["uniform"]
    b = int(np.argmax(np.abs(t.sum_score - t.sum_target)))
    lo, hi = t.edges[b], t.edges[b + 1]
    assert f"largest gap in bin ({lo:.3g}, {hi:.3g}]" in s.findings()[0]


def test_consistency_line_is_the_test_of_the_reported_ece(example):
    labels, p = example
    s = summarize(labels, p, n_bins=12, test_resamples=60, random_state=5)
    test = s.tests["consistency"]
    direct = consistency_test(labels, p, n_bins=12, n_resamples=60, random_state=5)
    assert test["statistic"] == s.metrics["ece_uniform"] == pytest.approx(
        ece(labels, p, n_bins=12), rel=1e-12)
    assert test["pvalue"] == direct.pvalue == 1 / 61
    assert test["null_quantiles"]["q95"] == pytest.approx(
        np.quantile(direct.null_distribution, 0.95))
    line = s.findings()[1]
    assert line.startswith("consistency test of the ECE (L1), 12 equal-width bins: p = 0.0164")
    assert "at its floor 1/61" in line


def test_calibrated_model_is_not_flagged():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4) * 0.7, size=4000)
    y = (rng.uniform(size=(4000, 1)) > p.cumsum(1)).sum(1)     # y ~ Categorical(p)
    s = summarize(y, p, test_resamples=200)
    assert s.tests["consistency"]["pvalue"] > 0.05
    assert "share of 200 calibrated resamples" in s.findings()[1]


def test_confidence_form_runs_the_test_on_the_pairs():
    rng = np.random.default_rng(4)
    conf = rng.uniform(0.4, 1.0, 800)
    correct = (rng.uniform(size=800) < conf - 0.15).astype(int)
    s = summarize(correct, conf, confidence_form=True, test_resamples=50)
    assert s.tests["consistency"]["pvalue"] == 1 / 51
    assert s.findings()[0].startswith("over-confident: mean confidence above accuracy by "
                                      f"{conf.mean() - correct.mean():.4f}")


def test_written_reports_carry_the_findings(example, tmp_path):
    labels, p = example
    s = summarize(labels, p, test_resamples=20)
    md, page, text = to_markdown(s), to_html(s), format_table(s)
    for line in s.findings():
        assert f"- {line}" in md
        assert line.replace("'", "&#x27;") in page
        assert " ".join(line.split()) in " ".join(text.split())
    d = json.loads(json.dumps(s.to_dict()))
    assert d["tests"]["consistency"]["n_resamples"] == 20
    assert set(METRIC_LABELS) >= {"signed_ece", "ece_over", "ece_under"}
    several = format_table({"a": s, "b": s})
    assert "\na: over-confident" in several and "\nb: consistency test" in several


@pytest.mark.parametrize("bad", [-1, 2.5, True, "200"])
def test_test_resamples_is_validated(example, bad):
    labels, p = example
    with pytest.raises(ValueError, match="test_resamples"):
        summarize(labels, p, test_resamples=bad)


def test_hand_built_summary_without_signed_keys_has_no_findings():
    s = Summary({"accuracy": 0.9}, settings={"n_bins": 15})
    assert s.findings() == [] and "\n\n" not in format_table(s)


def test_bootstrap_intervals_cover_the_signed_parts(example):
    labels, p = example
    s = bootstrap_intervals(summarize(labels, p, test_resamples=0), labels, p, n_resamples=40)
    for key in ("signed_ece", "ece_over", "ece_under"):
        lo, hi = s.intervals[key]
        assert lo <= s.metrics[key] <= hi, key


NOTORCH = Path("/work/venv-notorch/bin/python")


@pytest.mark.skipif(not NOTORCH.exists(), reason="no torch-free venv on this machine")
def test_cli_example_without_torch(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    run = subprocess.run([str(NOTORCH), "-m", "calkit", "evaluate", "--example", "--out",
                          str(tmp_path / "rep")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "over-confident: mean confidence above accuracy by 0.0392" in run.stdout
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| signed ECE (L1, sign kept) | 0.0392 |" in md and "consistency test" in md
