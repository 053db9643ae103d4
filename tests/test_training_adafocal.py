"""AdaFocal and CalFocal: the update rule against a reference written from Algorithm 1, bins,
hard cases (saturated confidences, empty bins, tiny validation sets), state and history."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from calkit.training.adafocal import AdaFocalLoss, CalFocalLoss  # noqa: E402
from calkit.training.focal import FocalLoss  # noqa: E402

N_BINS = 15


# --------------------------------------------------------------------------- references
def reference_bins(conf, correct, n_bins):
    """Equal-mass validation bins for distinct confidences, by hand: np.array_split of the
    sorted samples, edges at midpoints, E_b = mean confidence - accuracy."""
    order = np.argsort(conf)
    c, a = np.asarray(conf)[order], np.asarray(correct)[order]
    parts_c, parts_a = np.array_split(c, n_bins), np.array_split(a, n_bins)
    edges = [0.0] + [(parts_c[i][-1] + parts_c[i + 1][0]) / 2 for i in range(n_bins - 1)] + [1.0]
    gaps = [float(np.mean(pc) - np.mean(pa)) for pc, pa in zip(parts_c, parts_a, strict=True)]
    return edges, gaps


def reference_gamma_update(gammas, gaps, lam, gamma_max, gamma_min, s_th):
    """Lines 14-23 of Algorithm 1 (AdaFocal paper), one bin at a time."""
    new = []
    for g, e in zip(gammas, gaps, strict=True):
        if g >= 0:
            g1 = min(gamma_max, g * math.exp(lam * e))
            if abs(g1) < s_th:
                g1 = -s_th
        else:
            g1 = max(gamma_min, g * math.exp(-lam * e))
            if abs(g1) < s_th:
                g1 = s_th
        new.append(g1)
    return new


def reference_bin_of(p, edges):
    """Bin of p under (a, b] bins, first bin [0, b], everything above the top edge in the last."""
    for b in range(len(edges) - 1):
        if p <= edges[b + 1]:
            return b
    return len(edges) - 2


def val_set(n, k, temperature, seed, dtype=torch.float64):
    """Logits whose labels are drawn from softmax(z): over-confident for temperature > 1."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return (z * temperature).to(dtype), y


def top(z, y):
    p = torch.softmax(z, 1).double()  # in the dtype the loss sees
    conf, pred = p.max(1)
    return conf.numpy(), (pred == y).double().numpy()


# --------------------------------------------------------------------------- the update rule
def test_update_rule_step_by_step_matches_algorithm_1():
    kw = dict(lam=8.0, gamma_max=6.0, gamma_min=-1.5, switch_threshold=0.3)
    loss = AdaFocalLoss(n_bins=N_BINS, **kw)
    gammas = [1.0] * N_BINS
    seen = set()
    # over-confident, then under-confident, then calibrated: exercises every branch
    for step, temp in enumerate([2.5, 2.5, 2.5, 0.3, 0.3, 0.3, 0.3, 0.3, 1.0, 2.0]):
        z, y = val_set(600, 6, temp, seed=step)
        record = loss.update(z, y)
        edges, gaps = reference_bins(*top(z, y), N_BINS)
        new = reference_gamma_update(gammas, gaps, kw["lam"], kw["gamma_max"],
                                     kw["gamma_min"], kw["switch_threshold"])
        for g_old, g_new in zip(gammas, new, strict=True):
            seen.add(("focal" if g_old >= 0 else "inverse",
                      "cap" if g_new in (6.0, -1.5) else "switch" if abs(g_new) == 0.3
                      else "step"))
        gammas = new
        np.testing.assert_allclose(record["E_b"], gaps, rtol=0, atol=1e-12)
        np.testing.assert_allclose(record["edges"], edges, rtol=0, atol=1e-15)
        np.testing.assert_allclose(loss.gammas.numpy(), gammas, rtol=1e-12)
        assert record["gamma_b"] == loss.gammas.tolist() and record["epoch"] == step + 1
    assert seen >= {("focal", "cap"), ("focal", "switch"), ("focal", "step"),
                    ("inverse", "cap"), ("inverse", "switch"), ("inverse", "step")}
    assert int(loss.num_updates) == 10 and len(loss.history) == 10


def test_calfocal_sets_gamma_from_the_current_gap_only():
    loss = CalFocalLoss(n_bins=5, lam=10.0)
    for seed, temp in enumerate([2.0, 0.5]):
        z, y = val_set(300, 4, temp, seed=seed)
        loss.update(z, y)
        _, gaps = reference_bins(*top(z, y), 5)
        np.testing.assert_allclose(loss.gammas.numpy(), np.exp(10.0 * np.asarray(gaps)),
                                   rtol=1e-12)


def test_initial_state_is_equal_width_focal_gamma_init():
    loss = AdaFocalLoss(gamma_init=1.0)
    np.testing.assert_array_equal(loss.edges.numpy(), np.arange(16) / 15)
    assert loss.gammas.tolist() == [1.0] * 15
    z, y = val_set(50, 5, 1.0, seed=0)
    torch.testing.assert_close(loss(z, y), FocalLoss(1.0)(z, y))


def test_training_samples_use_the_gamma_of_their_true_class_bin():
    loss = AdaFocalLoss(n_bins=6, reduction="none")
    z, y = val_set(120, 3, 2.0, seed=1)
    loss.update(z, y)
    loss.gammas.copy_(torch.tensor([0.5, 2.0, -1.0, 7.0, -0.4, 3.0], dtype=torch.float64))
    zt, yt = val_set(200, 3, 1.5, seed=2)
    p_t = torch.softmax(zt, 1).gather(1, yt[:, None]).squeeze(1)
    edges = loss.edges.tolist()
    want = []
    for p, lp in zip(p_t.tolist(), torch.log_softmax(zt, 1).gather(1, yt[:, None]).tolist(),
                     strict=True):
        g = loss.gammas[reference_bin_of(p, edges)].item()
        base = 1 - p if g >= 0 else 1 + p
        want.append(-(base ** abs(g)) * lp[0])
    torch.testing.assert_close(loss(zt, yt), torch.tensor(want, dtype=torch.float64),
                               rtol=1e-10, atol=1e-12)
    assert {reference_bin_of(p, edges) for p in p_t.tolist()} >= {0, 5}  # catch-alls used


# --------------------------------------------------------------------------- hard cases
def test_collapsed_edges_with_saturated_confidences():
    """40% of validation confidences are exactly 1.0 in float32: equal-mass edges collapse."""
    g = torch.Generator().manual_seed(3)
    n = 500
    z = torch.randn(n, 4, generator=g)
    z[:200, 0] += 200.0  # softmax == 1.0 exactly
    y = torch.randint(0, 4, (n,), generator=g)
    y[:200] = torch.where(torch.rand(200, generator=g) < 0.9, 0, 1)
    conf = torch.softmax(z, 1).max(1).values
    assert int((conf == 1.0).sum()) == 200
    loss = AdaFocalLoss(n_bins=N_BINS)
    record = loss.update(z, y)
    edges = np.asarray(record["edges"])
    assert np.all(np.diff(edges) >= 0) and edges[-1] == 1.0
    # the 300 distinct confidences take ranks 0..299; the run of 1.0 starts at rank 300, in
    # array_split part `top`; that part's bin takes the whole run (a tied run is never split),
    # and the parts after it are empty: zero width, NaN gap, gamma kept
    top_part = next(i for i, r in enumerate(np.array_split(np.arange(n), N_BINS)) if 300 in r)
    assert top_part == 8
    counts = record["count"]
    assert sum(counts) == n
    assert [b for b in range(N_BINS) if counts[b] > 0] == list(range(top_part + 1))
    assert all(math.isnan(record["E_b"][b]) for b in range(top_part + 1, N_BINS))
    assert record["gamma_b"][top_part + 1:] == [1.0] * (N_BINS - top_part - 1)
    assert np.all(edges[top_part + 1:] == 1.0) and edges[top_part] < 1.0
    # the saturated bin: C and A over (edge_8, 1] computed by brute force
    c, a = top(z, y)
    in_bin = c > edges[top_part]
    assert counts[top_part] == in_bin.sum() > 200
    assert record["E_b"][top_part] == pytest.approx(c[in_bin].mean() - a[in_bin].mean(),
                                                    abs=1e-12)
    assert record["gamma_b"][top_part] == pytest.approx(math.exp(record["E_b"][top_part]))
    # a training sample with p_t == 1.0 gets the gamma of that bin, the one just updated
    assert int(loss.bin_index(torch.tensor([1.0]))) == top_part
    # the bins below hold exactly the array_split parts of the sorted confidences
    parts = np.array_split(np.sort(c), N_BINS)
    assert counts[:top_part] == [len(p) for p in parts[:top_part]]


def test_validation_set_smaller_than_n_bins():
    z = torch.tensor([[2.0, 0.0], [0.0, 0.3], [1.0, 0.0], [0.0, 4.0], [0.1, 0.0]])
    y = torch.tensor([0, 0, 1, 1, 0])
    loss = AdaFocalLoss(n_bins=N_BINS)
    record = loss.update(z, y)
    c, a = top(z, y)
    order = np.argsort(c)
    np.testing.assert_allclose(record["E_b"][:5], (c - a)[order], atol=1e-7)
    assert record["count"] == [1] * 5 + [0] * 10
    np.testing.assert_allclose(record["gamma_b"][:5], np.exp((c - a)[order]), rtol=1e-6)
    assert record["gamma_b"][5:] == [1.0] * 10
    single = AdaFocalLoss(n_bins=3)
    single.update(z[:1], y[:1])
    assert single.gammas.tolist()[1:] == [1.0, 1.0]


def test_empty_bins_keep_gamma_and_all_tied_confidences():
    z = torch.zeros(40, 3)
    z[:, 0] = 1.0  # every confidence identical: one bin
    y = torch.zeros(40, dtype=torch.long)
    loss = AdaFocalLoss(n_bins=4, gamma_init=2.0)
    record = loss.update(z, y)
    conf = torch.softmax(z, 1)[0, 0].item()
    assert record["count"] == [40, 0, 0, 0]
    assert record["gamma_b"][0] == pytest.approx(2.0 * math.exp(conf - 1.0))
    assert record["gamma_b"][1:] == [2.0, 2.0, 2.0]
    # every training p_t goes to the only non-empty slot 0 or to slot 3 above it; none to 1, 2
    idx = loss.bin_index(torch.linspace(0, 1, 101))
    assert set(idx.tolist()) <= {0, 3}


@pytest.mark.parametrize("bad, match", [
    (dict(n_bins=0), "n_bins must be a positive integer"),
    (dict(lam=-1.0), "lam must be >= 0"),
    (dict(gamma_max=0.1), "gamma_max"),
    (dict(gamma_min=-0.1), "gamma_min"),
    (dict(gamma_init=25.0), "gamma_init"),
    (dict(reduction="avg"), "reduction"),
])
def test_bad_settings_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        AdaFocalLoss(**bad)


def test_bad_validation_inputs_raise():
    loss = AdaFocalLoss()
    with pytest.raises(ValueError, match="empty"):
        loss.update(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="samples"):
        loss.update(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        loss.update(torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="NaN"):
        loss.update(torch.full((4, 3), float("nan")), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="not initialised"):
        loss.update(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), distributed=True)
    assert int(loss.num_updates) == 0 and loss.history == []


# --------------------------------------------------------------------------- state and history
def _train(loss, model, opt, steps, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for step in range(steps):
        x = torch.randn(32, 8, generator=g)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        value = loss(model(x), y)
        opt.zero_grad()
        value.backward()
        opt.step()
        out.append(value.item())
        if step % 3 == 2:
            xv = torch.randn(64, 8, generator=g)
            with torch.no_grad():
                loss.update(model(xv), (xv[:, 0] > 0).long() + (xv[:, 1] > 0).long())
    return out


def test_state_dict_round_trip_resumes_identically():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = AdaFocalLoss(n_bins=5, lam=3.0)
    _train(loss, model, opt, 9, seed=1)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "loss": loss.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2 = torch.nn.Linear(8, 3)
    model2.load_state_dict(ckpt["model"])
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5)
    opt2.load_state_dict(ckpt["opt"])
    loss2 = AdaFocalLoss(n_bins=5, lam=3.0)
    loss2.load_state_dict(ckpt["loss"])
    assert loss2.history == loss.history and int(loss2.num_updates) == 3
    assert set(ckpt["loss"]) >= {"edges", "gammas", "num_updates"}
    a = _train(loss, model, opt, 9, seed=2)
    b = _train(loss2, model2, opt2, 9, seed=2)
    assert a == b
    assert torch.equal(loss.gammas, loss2.gammas) and torch.equal(loss.edges, loss2.edges)
    assert loss.history == loss2.history and len(loss.history) == 6


def test_history_renders_as_gamma_dynamics():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from calkit.plotting.gamma import GammaDynamicsDisplay

    loss = AdaFocalLoss(n_bins=N_BINS)
    for epoch, temp in enumerate([2.0, 1.5, 1.0, 0.7]):
        z, y = val_set(400, 5, temp, seed=epoch)
        loss.update(z, y, epoch=epoch)
    disp = GammaDynamicsDisplay.from_history(loss.history, bins=[0, 7, 14])
    assert len(disp.gamma_lines_) == 3
    np.testing.assert_allclose(disp.gamma_lines_[2].get_ydata(),
                               [r["gamma_b"][14] for r in loss.history])
    np.testing.assert_allclose(disp.gap_lines_[0].get_xdata(), [0, 1, 2, 3])
    matplotlib.pyplot.close(disp.figure_)


# --------------------------------------------------------------------------- peers, CUDA
@pytest.mark.peers
def test_edges_equal_uncertainty_calibration_equal_bins():
    cal = pytest.importorskip("calibration")
    z, y = val_set(997, 10, 1.7, seed=7)
    loss = AdaFocalLoss(n_bins=N_BINS)
    record = loss.update(z, y)
    c, _ = top(z, y)
    np.testing.assert_allclose(record["edges"][1:], cal.get_equal_bins(list(c), N_BINS),
                               rtol=0, atol=1e-15)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_agrees_with_cpu_and_forward_does_not_synchronise():
    cpu, gpu = AdaFocalLoss(), AdaFocalLoss().cuda()
    for seed, temp in enumerate([2.0, 0.5, 1.2]):
        z, y = val_set(3000, 10, temp, seed=seed, dtype=torch.float32)
        cpu.update(z, y)
        gpu.update(z.cuda(), y.cuda())
        torch.testing.assert_close(gpu.gammas.cpu(), cpu.gammas, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(gpu.edges.cpu(), cpu.edges, rtol=0, atol=1e-7)
    z, y = val_set(512, 10, 1.0, seed=9, dtype=torch.float32)
    zc, yc = z.cuda().requires_grad_(), y.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = gpu(zc, yc)
        out.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(out.cpu(), cpu(z, y), rtol=1e-5, atol=1e-6)


def test_gradcheck_and_reductions_with_mixed_focal_and_inverse_bins():
    loss = AdaFocalLoss(n_bins=4, reduction="none")
    loss.gammas.copy_(torch.tensor([3.0, -0.5, 0.2, -2.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(11)
    z = (torch.randn(12, 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, 3, (12,), generator=g)
    assert len(set(loss.bin_index(torch.softmax(z, 1).gather(1, y[:, None])[:, 0]).tolist())) > 2
    assert torch.autograd.gradcheck(lambda v: loss(v, y), (z,))
    per_sample = loss(z, y)
    for reduction, reduce in (("sum", torch.sum), ("mean", torch.mean)):
        loss.reduction = reduction
        torch.testing.assert_close(loss(z, y), reduce(per_sample))
