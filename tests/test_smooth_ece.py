"""smooth_ece against relplot 1.0.3 (the reference implementation) and against a direct
O(N G) kernel sum written from the paper's definition."""

from __future__ import annotations

import numpy as np
import pytest

from calkit import softmax
from calkit.metrics.smooth import smooth_ece, smooth_ece_from_scores
from conftest import cuda_available


def _top(y, p):
    return p.max(1).astype(np.float64), (p.argmax(1) == y).astype(np.float64)


def direct_smece(f, y, sigma):
    """smECE at ``sigma`` by explicit sums over samples (no grid, exact reflected kernel).

    Each sample contributes a Gaussian at ``f_i`` plus its mirror images at ``-f_i`` and
    ``2 - f_i``; the relplot grid is a discretisation of exactly this.
    """
    t = np.linspace(0, 1, max(round(10 / sigma), 200))
    centres = np.concatenate([f, -f, 2 - f])
    weights = np.tile(f - y, 3)
    k = np.exp(-(t[:, None] - centres[None]) ** 2 / (2 * sigma ** 2)) / (
        np.sqrt(2 * np.pi) * sigma)
    scale = (max(2000, round(20 / sigma)) // 2) / 1.0  # grid nodes per unit: relplot's units
    dens = k.sum(1) / scale + 1e-4
    ys = (k @ weights) / scale / dens
    return float((np.abs(ys) * dens).sum() / dens.sum())


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(0)
    f = rng.beta(2, 1, 3000)
    y = (rng.uniform(size=3000) < f ** 1.5).astype(np.float64)
    return f, y


def test_fixed_sigma_matches_direct_kernel_sum(simulated):
    f, y = simulated
    for sigma in (0.05, 0.1, 0.3):
        got = float(smooth_ece(y.astype(int), f, view="positive", sigma=sigma))
        assert got == pytest.approx(direct_smece(f, y, sigma), abs=2e-4)


def test_fixed_point_property(simulated):
    f, y = simulated
    r = smooth_ece(y.astype(int), f, view="positive")
    # sigma is the upper end of a 2^-10 bracket around smECE(sigma) = sigma
    assert r.sigma >= float(r) - 1e-12
    lower = r.sigma - 2 ** -10
    assert lower < float(smooth_ece(y.astype(int), f, view="positive", sigma=lower))


def test_curve_and_density(simulated):
    f, y = simulated
    r = smooth_ece(y.astype(int), f, view="positive")
    assert r.grid.shape == r.residual.shape == r.density.shape == r.curve.shape
    assert r.density.mean() == pytest.approx(1.0)
    # smECE is the density-weighted mean absolute smoothed residual
    assert float(r) == pytest.approx(float(np.sum(np.abs(r.residual) * r.density)
                                           / np.sum(r.density)))
    # over-confident data (y ~ f^1.5): the smoothed residual is positive in the middle
    mid = (r.grid > 0.3) & (r.grid < 0.9)
    assert (r.residual[mid] > 0).all()


def test_perfectly_calibrated_is_small_and_flipped_is_large():
    rng = np.random.default_rng(1)
    f = rng.uniform(size=20000)
    y = (rng.uniform(size=20000) < f).astype(int)
    assert float(smooth_ece(y, f, view="positive")) < 0.02
    assert float(smooth_ece(1 - y, f, view="positive")) > 0.3


def test_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        smooth_ece([0, 1], np.array([0.2, 0.7]), view="positive", sigma=0)
    with pytest.raises(ValueError, match="sigma"):
        smooth_ece([0, 1], np.array([0.2, 0.7]), view="positive", sigma=2.0)
    with pytest.raises(ValueError, match="view"):
        smooth_ece([0, 1], np.array([[0.2, 0.8], [0.3, 0.7]]), view="classwise")
    with pytest.raises(ValueError, match="y_prob"):
        smooth_ece([0, 1], np.array([0.2, 1.7]), view="positive")


@pytest.mark.peers
def test_matches_relplot_on_real_data(cifar10_ce_test, netcal_cifar100):
    relplot = pytest.importorskip("relplot")
    logits, labels = cifar10_ce_test
    probs100, labels100 = netcal_cifar100
    cases = [(labels, softmax(logits.astype(np.float64))), (labels100, probs100)]
    for y, p in cases:
        f, t = _top(y, p)
        ref, sigma = relplot.smECE(f, t, return_width=True)
        r = smooth_ece(y, p)
        assert r.sigma == sigma
        assert float(r) == pytest.approx(ref, abs=1e-9)
        assert float(smooth_ece(y, p, sigma=0.05)) == pytest.approx(
            relplot.smECE_sigma(f, t, 0.05), abs=1e-9)


@pytest.mark.peers
@pytest.mark.parametrize("folder, name, view", [
    ("cifar10_resnet50_ce_vs_focal", "resnet50_cifar10_focal_loss_test_0.9_vanilla.npz",
     "top_label"),
    ("cv_probs_label_errors", "20news", "top_label"),   # strongly under-confident
    ("cv_probs_label_errors", "imdb", "positive"),      # binary, P(y = 1)
])
def test_matches_relplot_on_more_real_data(folder, name, view):
    relplot = pytest.importorskip("relplot")
    from conftest import shared_path

    if name.endswith(".npz"):
        with np.load(shared_path(folder, name), allow_pickle=False) as d:
            y, p = d["labels"], softmax(d["logits"].astype(np.float64))
    else:
        p = np.load(shared_path(folder, f"{name}_test_set_pyx.npy"), allow_pickle=False)
        y = np.load(shared_path(folder, f"{name}_test_set_original_labels.npy"),
                    allow_pickle=False).astype(np.int64)
        p = np.clip(p, 0, None)
        p = p / p.sum(1, keepdims=True)
    if view == "positive":
        f, t = p[:, 1], (y == 1).astype(np.float64)
    else:
        f, t = _top(y, p)
    ref, sigma = relplot.smECE(f, t, return_width=True)
    r = smooth_ece(y, p, view=view)
    assert r.sigma == sigma
    assert float(r) == pytest.approx(ref, abs=1e-9)


@pytest.mark.peers
def test_matches_relplot_float32_and_binary(simulated):
    relplot = pytest.importorskip("relplot")
    f, y = simulated
    f32 = f.astype(np.float32)
    ref, sigma = relplot.smECE(f32, y, return_width=True)
    r = smooth_ece(y.astype(int), f32, view="positive")
    assert r.sigma == sigma and float(r) == pytest.approx(ref, abs=1e-6)
    ref, sigma = relplot.smECE(f, y, return_width=True)
    r = smooth_ece(y.astype(int), f, view="positive")
    assert r.sigma == sigma and float(r) == pytest.approx(ref, abs=1e-12)


def test_torch_path_matches_numpy(cifar10_ce_test):
    torch = pytest.importorskip("torch")
    logits, labels = cifar10_ce_test
    p = softmax(logits.astype(np.float64))
    ref = smooth_ece(labels, p)
    for dtype in (torch.float64, torch.float32):
        pt = torch.as_tensor(p, dtype=dtype)
        pt = pt / pt.sum(1, keepdim=True)
        r = smooth_ece(torch.as_tensor(labels), pt)
        assert torch.is_tensor(r.value) and torch.is_tensor(r.curve)
        assert r.sigma == ref.sigma
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        assert float(r) == pytest.approx(float(ref), abs=tol)


@pytest.mark.skipif(not cuda_available(), reason="needs PyTorch with a CUDA device")
def test_cuda_matches_cpu(cifar10_ce_test):
    import torch

    logits, labels = cifar10_ce_test
    p = torch.as_tensor(softmax(logits.astype(np.float64)))
    r = smooth_ece(torch.as_tensor(labels).cuda(), p.cuda())
    assert r.value.device.type == "cuda"
    assert float(r) == pytest.approx(float(smooth_ece(labels, p.numpy())), abs=1e-10)


def test_scores_entry_point_agrees_with_positive_view(simulated):
    f, y = simulated
    a = smooth_ece_from_scores(f, y)
    b = smooth_ece(y.astype(int), f, view="positive")
    assert float(a) == float(b) and a.sigma == b.sigma


def test_curve_band_brute_force_and_options(simulated):
    from calkit.metrics.smooth import curve_band

    f, y = simulated
    r = smooth_ece(y.astype(int), f, view="positive", band=0.9, n_resamples=30,
                   random_state=3)
    low, high = r.band
    assert r.settings["band"] == 0.9 and r.settings["n_resamples"] == 30
    # brute force: each resample's curve at the same sigma, then per-point percentiles
    rng = np.random.default_rng(3)
    curves = []
    for _ in range(30):
        i = rng.integers(0, len(f), len(f))
        curves.append(smooth_ece(y[i].astype(int), f[i], view="positive", sigma=r.sigma).curve)
    np.testing.assert_allclose(low, np.percentile(curves, 5, axis=0), atol=1e-12)
    np.testing.assert_allclose(high, np.percentile(curves, 95, axis=0), atol=1e-12)
    # the true reliability curve y ~ f^1.5 lies inside the band where there are data
    inside = (low <= r.grid ** 1.5 + 0.02) & (r.grid ** 1.5 - 0.02 <= high)
    assert inside[(r.grid > 0.2) & (r.grid < 0.95)].mean() > 0.9
    assert smooth_ece(y.astype(int), f, view="positive").band is None
    with pytest.raises(ValueError, match="confidence"):
        curve_band(f, y, 0.1, confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        curve_band(f, y, 0.1, n_resamples=1)
