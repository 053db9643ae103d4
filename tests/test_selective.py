"""Selective classification against brute-force loops (all tie-breaking orders enumerated)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from calkit import softmax
from calkit.metrics.selective import (
    accuracy_at_coverage,
    aurc,
    coverage_at_risk,
    eaurc,
    risk_coverage,
)


def aurc_of_order(wrong_in_order):
    """Geifman's AURC for one fixed ranking: mean over k of the risk of the top k."""
    total, errors = 0.0, 0
    for k, w in enumerate(wrong_in_order, start=1):
        errors += w
        total += errors / k
    return total / len(wrong_in_order)


def brute_aurc(conf, wrong):
    """Average of AURC over every order of the tied confidences."""
    groups = [np.flatnonzero(conf == v) for v in sorted(set(conf.tolist()), reverse=True)]
    perms = [list(itertools.permutations(g)) for g in groups]
    values = [aurc_of_order([wrong[i] for g in combo for i in g])
              for combo in itertools.product(*perms)]
    return float(np.mean(values))


def _binary_case(conf, wrong):
    """(y_true, y_prob) for a binary task whose top-label confidences/errors are given."""
    y_prob = np.stack([1 - conf, conf], 1)  # predicts class 1 (conf > 0.5)
    return np.where(wrong, 0, 1), y_prob


def test_aurc_equals_the_average_over_tie_orders():
    rng = np.random.default_rng(0)
    for _ in range(5):
        conf = rng.choice([0.6, 0.7, 0.8, 0.9], size=8)
        wrong = rng.uniform(size=8) < 0.4
        y, p = _binary_case(conf, wrong)
        assert aurc(y, p) == pytest.approx(brute_aurc(conf, wrong.astype(int)), abs=1e-12)


def test_without_ties_matches_the_plain_definition_and_oracle():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (300, 6))
    y = rng.integers(0, 6, 300)
    p = softmax(z)
    wrong = (p.argmax(1) != y).astype(int)
    order = np.argsort(-p.max(1))
    rc = risk_coverage(y, p)
    assert rc.aurc == pytest.approx(aurc_of_order(wrong[order]), abs=1e-12)
    oracle = aurc_of_order(np.sort(wrong))  # every correct one first
    assert rc.eaurc == pytest.approx(rc.aurc - oracle, abs=1e-12)
    assert eaurc(y, p) == rc.eaurc
    # Geifman's closed-form approximation of the oracle is close for large N
    r = wrong.mean()
    assert oracle == pytest.approx(r + (1 - r) * math.log(1 - r), abs=0.02)


def test_curve_points_are_group_boundaries():
    conf = np.array([0.9, 0.9, 0.8, 0.7, 0.7, 0.7])
    wrong = np.array([0, 1, 0, 1, 0, 0])
    y, p = _binary_case(conf, wrong)
    rc = risk_coverage(y, p)
    assert rc.coverage.tolist() == pytest.approx([2 / 6, 3 / 6, 1.0])
    assert rc.risk.tolist() == pytest.approx([1 / 2, 1 / 3, 2 / 6])
    assert rc.threshold.tolist() == [0.9, 0.8, 0.7]
    # a third of the samples (k = 2): the tied pair at 0.9, one of them wrong
    assert rc.accuracy_at_coverage(2 / 6) == pytest.approx(0.5)
    # k = 1 cuts the tied pair: expected error 1/2 under a random order
    assert rc.accuracy_at_coverage(1 / 6) == pytest.approx(0.5)
    assert rc.coverage_at_risk(0.34) == (1.0, 0.7)
    assert rc.coverage_at_risk(0.2) == (0.0, float("inf"))


def test_accuracy_at_coverage_brute_force():
    rng = np.random.default_rng(2)
    p = softmax(rng.normal(0, 2, (200, 3)))
    y = rng.integers(0, 3, 200)
    right = p.argmax(1) == y
    order = np.argsort(-p.max(1))
    for c in (0.1, 0.25, 0.5, 0.99, 1.0):
        k = math.ceil(c * 200)
        assert accuracy_at_coverage(y, p, c) == pytest.approx(right[order][:k].mean())
    # coverage at risk: the largest prefix (threshold) with error rate <= r
    for r in (0.3, 0.5, 0.7):
        risks = np.cumsum(~right[order]) / np.arange(1, 201)
        ok = np.flatnonzero(risks <= r)
        expected = (ok[-1] + 1) / 200 if ok.size else 0.0
        assert coverage_at_risk(y, p, r) == pytest.approx(expected)


def test_custom_confidence_and_order_invariance():
    rng = np.random.default_rng(3)
    p = softmax(rng.normal(0, 2, (100, 4)))
    y = rng.integers(0, 4, 100)
    score = np.round(rng.uniform(size=100), 1)
    perm = rng.permutation(100)
    a = risk_coverage(y, p, confidence=score)
    b = risk_coverage(y[perm], p[perm], confidence=score[perm])
    assert a.aurc == pytest.approx(b.aurc, abs=1e-15)
    np.testing.assert_array_equal(a.risk, b.risk)


def test_real_data(cifar10_ce_test):
    logits, labels = cifar10_ce_test
    p = softmax(logits)
    rc = risk_coverage(labels, p)
    assert rc.aurc == pytest.approx(brute_aurc_big(p, labels), abs=1e-12)
    assert 0 <= rc.eaurc < rc.aurc
    assert rc.coverage[-1] == 1.0 and rc.risk[-1] == pytest.approx(rc.n_errors / rc.n_samples)


def brute_aurc_big(p, y):
    """AURC with tied groups replaced by their mean error (linear in k): loop over samples."""
    conf = p.max(1)
    wrong = (p.argmax(1) != y).astype(float)
    order = np.argsort(-conf, kind="stable")
    conf, wrong = conf[order], wrong[order]
    total, errors, i, n = 0.0, 0.0, 0, len(conf)
    while i < n:
        j = i
        while j < n and conf[j] == conf[i]:
            j += 1
        rate = wrong[i:j].mean()
        for k in range(i + 1, j + 1):
            total += (errors + rate * (k - i)) / k
        errors += wrong[i:j].sum()
        i = j
    return total / n


def test_bad_input():
    p = np.array([[0.9, 0.1], [0.4, 0.6]])
    with pytest.raises(ValueError, match="coverage"):
        accuracy_at_coverage([0, 1], p, 0.0)
    with pytest.raises(ValueError, match="risk"):
        coverage_at_risk([0, 1], p, 1.5)
    with pytest.raises(ValueError, match="confidence"):
        risk_coverage([0, 1], p, confidence=np.array([0.1]))
