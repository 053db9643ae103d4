"""torch tensors (CPU, and CUDA when present) give the numpy results, on their own device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calkit import bin_table, brier_score, calibration_error, ece, nll, softmax, sweep_ece

torch = pytest.importorskip("torch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _data(n=2000, k=10, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, k)) * 3).astype(np.float32)
    y = rng.integers(0, k, n)
    return y, softmax(logits)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("closed", ["right", "left"])
def test_bin_table_agrees_and_stays_on_device(device, strategy, closed):
    rng = np.random.default_rng(1)
    s = np.round(rng.uniform(size=3000), 2).astype(np.float32)
    t = rng.uniform(size=3000) < s
    ref = bin_table(s, t, n_bins=15, strategy=strategy, closed=closed)
    got = bin_table(torch.as_tensor(s, device=device), torch.as_tensor(t, device=device),
                    n_bins=15, strategy=strategy, closed=closed)
    assert got.count.device.type == device and got.sum_score.dtype == torch.float64
    np.testing.assert_array_equal(got.to_numpy().count, ref.count)
    np.testing.assert_allclose(got.to_numpy().sum_score, ref.sum_score, rtol=1e-12)
    np.testing.assert_allclose(got.to_numpy().sum_target, ref.sum_target, rtol=1e-12)
    np.testing.assert_array_equal(got.to_numpy().edges, ref.edges)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kwargs", [
    dict(), dict(norm="l2"), dict(norm="max"), dict(strategy="quantile"),
    dict(view="classwise"), dict(closed="left"), dict(norm="l2", debias=True,
                                                      strategy="quantile"),
])
def test_calibration_error_agrees(device, kwargs):
    y, p = _data()
    ref = calibration_error(y, p, **kwargs)
    got = calibration_error(torch.as_tensor(y, device=device), torch.as_tensor(p, device=device),
                            **kwargs)
    assert isinstance(got.value, torch.Tensor) and got.value.device.type == device
    assert float(got) == pytest.approx(float(ref), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("device", DEVICES)
def test_scores_and_sweep_agree(device):
    y, p = _data(seed=2)
    ty, tp = torch.as_tensor(y, device=device), torch.as_tensor(p, device=device)
    assert float(brier_score(ty, tp)) == pytest.approx(brier_score(y, p), rel=1e-6)
    assert float(nll(ty, tp)) == pytest.approx(nll(y, p), rel=1e-6)
    assert float(sweep_ece(ty, tp)) == pytest.approx(float(sweep_ece(y, p)), rel=1e-12)
    binary = tp[:, 0] / (tp[:, 0] + tp[:, 1])
    yb = (ty % 2)
    assert float(ece(yb, binary, view="positive")) == pytest.approx(
        ece(yb.cpu().numpy(), binary.cpu().numpy(), view="positive"), rel=1e-12)


def test_softmax_torch_matches_numpy():
    z = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32) * 50
    np.testing.assert_allclose(softmax(torch.as_tensor(z)).numpy(), softmax(z), rtol=1e-5,
                               atol=1e-7)


def test_torch_validation_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        ece(torch.tensor([0, 1]), torch.tensor([[0.9, 0.9], [0.5, 0.5]]), n_bins=2)
    with pytest.raises(ValueError, match="NaN"):
        ece(torch.tensor([0, 1]), torch.tensor([[float("nan"), 1.0], [0.5, 0.5]]), n_bins=2)


@settings(max_examples=30, deadline=None)
@given(st.integers(20, 200), st.integers(2, 6), st.integers(1, 12),
       st.sampled_from(["uniform", "quantile"]), st.integers(0, 10_000))
def test_property_numpy_torch_agreement(n, k, n_bins, strategy, seed):
    rng = np.random.default_rng(seed)
    p = softmax(np.round(rng.normal(size=(n, k)) * 2, 1))
    y = rng.integers(0, k, n)
    ref = ece(y, p, n_bins=n_bins, strategy=strategy)
    got = ece(torch.as_tensor(y), torch.as_tensor(p), n_bins=n_bins, strategy=strategy)
    assert float(got) == pytest.approx(ref, abs=1e-12)
