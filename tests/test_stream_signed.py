"""The accumulator's signed ECE and Murphy terms equal the batch functions (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

from calkit.binning import bin_table
from calkit.metrics import brier_decomposition, signed_ece
from calkit.metrics.decompositions import murphy_from_table, signed_parts_from_table
from calkit.stream import CalibrationAccumulator


def _data(seed=0, n=3000, k=4):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * 2.5
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.exp(z / 2).cumsum(1) / np.exp(z / 2).sum(1,
                                                                       keepdims=True)).sum(1)
    return y, p


def test_table_helpers_against_a_loop():
    rng = np.random.default_rng(1)
    s = rng.uniform(size=500)
    t = (rng.uniform(size=500) < s ** 1.7).astype(float)
    table = bin_table(s, t, n_bins=7)
    idx = np.minimum(np.ceil(s * 7).astype(int) - 1, 6).clip(0)
    signed = over = under = rel = res = 0.0
    base = t.mean()
    for b in range(7):
        m = idx == b
        if m.any():
            gap = s[m].mean() - t[m].mean()
            signed += m.mean() * gap
            over += m.mean() * max(gap, 0)
            under += m.mean() * max(-gap, 0)
            rel += m.mean() * gap ** 2
            res += m.mean() * (t[m].mean() - base) ** 2
    got = [float(v) for v in signed_parts_from_table(table)]
    assert got == pytest.approx([signed, over, under], abs=1e-13)
    terms = {k: float(v) for k, v in murphy_from_table(table).items()}
    assert terms == pytest.approx(dict(reliability=rel, resolution=res,
                                       uncertainty=base * (1 - base)), abs=1e-13)


@pytest.mark.parametrize("n_bins", [10, 15])
def test_streamed_equals_batch(n_bins):
    y, p = _data()
    acc = CalibrationAccumulator(n_bins=n_bins)
    other = CalibrationAccumulator(n_bins=n_bins)
    for start in range(0, 2000, 250):
        acc.update(y[start:start + 250], p[start:start + 250])
    other.update(y[2000:], p[2000:])
    out = acc.merge(other).compute()
    r = signed_ece(y, p, n_bins=n_bins)
    assert out["signed_ece"] == pytest.approx(r.value, abs=1e-13)
    assert out["ece_over"] == pytest.approx(r.over, abs=1e-13)
    assert out["ece_under"] == pytest.approx(r.under, abs=1e-13)
    assert out["signed_ece"] == pytest.approx(p.max(1).mean() - (p.argmax(1) == y).mean(),
                                              abs=1e-12)
    d = brier_decomposition(y, p, n_bins=n_bins, view="top_label")
    for key in ("reliability", "resolution", "uncertainty"):
        assert out[key] == pytest.approx(getattr(d, key), abs=1e-13), key


def test_streamed_positive_view_and_torch():
    rng = np.random.default_rng(3)
    q = rng.uniform(size=1200)
    y = (rng.uniform(size=1200) < q ** 2).astype(int)
    acc = CalibrationAccumulator(view="positive")
    for start in range(0, 1200, 400):
        acc.update(y[start:start + 400], q[start:start + 400])
    out = acc.compute()
    assert out["signed_ece"] == pytest.approx(signed_ece(y, q, view="positive").value,
                                              abs=1e-13)
    assert out["reliability"] == pytest.approx(
        brier_decomposition(y, q, n_bins=15).reliability, abs=1e-13)
    torch = pytest.importorskip("torch")
    tacc = CalibrationAccumulator(view="positive").update(torch.as_tensor(y),
                                                          torch.as_tensor(q))
    tout = tacc.compute()
    for key in ("signed_ece", "ece_over", "ece_under", "reliability", "resolution",
                "uncertainty"):
        assert tout[key].dtype == torch.float64
        assert float(tout[key]) == pytest.approx(out[key], abs=1e-12), key
