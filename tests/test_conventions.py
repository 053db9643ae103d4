"""Peer-convention presets: each one against the installed peer package, or against a literal
transcription of the peer's reference loop where the peer is not on PyPI (caltrain, AdaFocal)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from calkit import ece, softmax
from calkit.metrics.conventions import CONVENTIONS, _rule_edges, _torch_linspace, convention_error
from conftest import shared_path

# ----------------------------------------------------------------------------------------------
# literal transcriptions of reference code that is not installable (plain loops over samples)


def adafocal_ece_reference(conf, correct, num_bins=15):
    """focal_calibration/AdaFocal ``_populate_bins`` + ``expected_calibration_error``."""
    count, s_conf, s_acc = [0] * num_bins, [0.0] * num_bins, [0.0] * num_bins
    for c, a in zip(conf.tolist(), correct.tolist(), strict=True):
        b = int(math.ceil(num_bins * c - 1))
        if b == -1:
            b = 0
        count[b] += 1
        s_conf[b] += c
        s_acc[b] += a
    n = len(conf)
    return sum(k / n * abs(sa / k - sc / k) for k, sc, sa in zip(count, s_conf, s_acc,
                                                                  strict=True) if k > 0)


def adafocal_adaece_reference(conf, correct, num_bins=15):
    """AdaFocal ``adaECE_error_mukhoti``: np.interp edges, ``lower < c <= upper``."""
    n = len(conf)
    edges = np.interp(np.linspace(0, n, num_bins + 1), np.arange(n), np.sort(conf))
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        members = [i for i in range(n) if lo < conf[i] <= hi]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += abs(avg - acc) * len(members) / n
    return total


def caltrain_reference(conf, correct, num_bins=15, equal_mass=False, p=1):
    """caltrain ``BinEqualWidth`` / ``BinEqualExamples`` + ``_compute_error_all_binned``."""
    n = len(conf)
    if equal_mass:
        bins = np.zeros(n, dtype=int)
        bins[np.argsort(conf)] = np.minimum(num_bins - 1,
                                            np.floor((np.arange(n) / n) * num_bins))
    else:
        bins = np.digitize(conf, np.linspace(0, 1, num_bins + 1), right=False) - 1
        bins[conf == 1.0] = num_bins - 1
    total = 0.0
    for b in range(num_bins):
        members = [i for i in range(n) if bins[i] == b]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += len(members) * abs(acc - avg) ** p
    return (total / n) ** (1 / p)


# ----------------------------------------------------------------------------------------------
# data: real outputs and adversarial cases


def adversarial_multiclass(n=600, k=5, seed=0):
    """Confidences rounded to 2 decimals (many exactly on edges), ties, and exact 1.0."""
    rng = np.random.default_rng(seed)
    top = np.round(rng.uniform(1 / k, 1, n), 2)
    top[: n // 20] = 1.0
    rest = (1 - top)[:, None] * rng.dirichlet(np.ones(k - 1), n)
    pred = rng.integers(0, k, n)
    p = np.empty((n, k))
    for j in range(k):  # place the top probability at the predicted column
        p[:, j] = top
    cols = (pred[:, None] + 1 + np.arange(k - 1)[None]) % k
    np.put_along_axis(p, cols, rest, axis=1)
    mask = p.max(1) > top + 1e-12  # a rest entry above top would change the prediction
    p[mask] = np.eye(k)[pred[mask]]
    correct = rng.uniform(size=n) < top ** 1.5  # over-confident at the top, crossing
    y = np.where(correct, pred, (pred + 1) % k)
    return y, p


def adversarial_binary(n=800, seed=1):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 1, n), 1)  # every value on an edge of 10 or 5 bins
    p[:20], p[20:40] = 1.0, 0.0
    y = (rng.uniform(size=n) < np.clip(0.15 + 0.7 * p, 0, 1)).astype(int)
    return y, p


@pytest.fixture(scope="module")
def cifar10_probs(cifar10_ce_test):
    logits, labels = cifar10_ce_test
    return labels, softmax(logits)  # float32, as a torch user would pass them


@pytest.fixture(scope="module")
def imdb_binary():
    p = np.load(shared_path("cv_probs_label_errors", "imdb_test_set_pyx.npy"),
                allow_pickle=False)
    y = np.load(shared_path("cv_probs_label_errors", "imdb_test_set_original_labels.npy"),
                allow_pickle=False).astype(np.int64)
    p = np.clip(p, 0, 1)  # a few entries are 1 + 1e-5; sklearn rejects values above 1
    return y, p / p.sum(1, keepdims=True)


def _top(y, p):
    return p.max(1), (p.argmax(1) == y).astype(float)


# ----------------------------------------------------------------------------------------------
# engine helpers


def test_rule_edges_agree_with_the_rule_on_neighbouring_doubles():
    for b in (7, 10, 15, 25, 49):
        size = 1.0 / b

        def rule(f, size=size):
            return (f / size).astype(np.int64)

        edges = _rule_edges(rule, b - 1)
        assert (rule(edges) == np.arange(1, b)).all()
        assert (rule(np.nextafter(edges, 0)) == np.arange(0, b - 1)).all()


def test_torch_linspace_values_and_fallback(monkeypatch):
    torch = pytest.importorskip("torch")
    ulp = []
    for b in range(1, 120):
        for np_dt, t_dt in ((np.float32, torch.float32), (np.float64, torch.float64)):
            theirs = torch.linspace(0, 1, b + 1, dtype=t_dt).double().numpy()
            np.testing.assert_array_equal(_torch_linspace(b, np.dtype(np_dt)), theirs)
            with monkeypatch.context() as m:
                m.setitem(sys.modules, "torch", None)  # import fails: scalar fallback
                fallback = _torch_linspace(b, np.dtype(np_dt))
            ulp.append(np.max(np.abs(fallback - theirs) / np.spacing(np_dt(1) / 2)))
    assert max(ulp) <= 1


def test_edge_probe_from_the_reference_notes():
    p = np.array([0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0, 1.0])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    got = {c: float(convention_error(y, p, c, n_bins=5))
           for c in ("netcal", "caltrain", "uncertainty_calibration", "sklearn",
                     "torchmetrics", "relplot")}
    # published probe values: [a,b) + 1.0 last = 0.1875; (a,b] = 0.2625; 1.0 own bin = 0.2375
    assert got["netcal"] == pytest.approx(0.1875) and got["caltrain"] == pytest.approx(0.1875)
    assert got["sklearn"] == pytest.approx(0.2625)
    assert got["uncertainty_calibration"] == pytest.approx(0.2625)
    assert got["torchmetrics"] == pytest.approx(0.2375) and got["relplot"] == pytest.approx(0.2375)


def test_calkit_preset_is_calkit_ece():
    y, p = adversarial_multiclass()
    assert float(convention_error(y, p, "calkit")) == pytest.approx(float(ece(y, p)), abs=1e-15)


def test_bad_options_raise():
    y, p = adversarial_multiclass()
    with pytest.raises(ValueError, match="convention"):
        convention_error(y, p, "nope")
    with pytest.raises(ValueError, match="strategy"):
        convention_error(y, p, "torchmetrics", strategy="quantile")
    with pytest.raises(ValueError, match="binary only"):
        convention_error(y, p, "sklearn")
    with pytest.raises(ValueError, match="norm"):
        convention_error(y, p, "relplot", norm="l2")


def test_netcal_rejects_two_labels_with_many_columns_like_netcal():
    y, p = adversarial_multiclass()
    with pytest.raises(ValueError, match="binary"):
        convention_error(np.where(y > 0, 1, 0), p, "netcal")


# ----------------------------------------------------------------------------------------------
# literal reference loops (peers not on PyPI)


@pytest.mark.parametrize("seed", [0, 1])
def test_adafocal_matches_reference_loops(seed):
    y, p = adversarial_multiclass(400, seed=seed)
    conf, correct = _top(y, p)
    got = float(convention_error(y, p, "adafocal"))
    assert got == pytest.approx(adafocal_ece_reference(conf, correct), abs=1e-12)
    for b in (15, 25):
        got = float(convention_error(y, p, "adafocal", n_bins=b, strategy="quantile"))
        assert got == pytest.approx(adafocal_adaece_reference(conf, correct, b), abs=1e-12)


def test_adafocal_float_rule_puts_028_in_bin_7_of_25():
    # 25 * 0.28 = 7.000000000000001, so the reference's ceil(25 c - 1) gives bin 7, whereas
    # exact right-closed bins (calkit) put 0.28 = 7/25 on the upper edge of bin 6
    p = np.tile([[0.28, 0.24, 0.24, 0.24]], (25, 1))
    y = np.zeros(25, dtype=int)
    table = convention_error(y, p, "adafocal", n_bins=25).table
    assert np.flatnonzero(table.count).tolist() == [7]
    assert np.flatnonzero(convention_error(y, p, "calkit", n_bins=25).table.count).tolist() \
        == [6]
    assert adafocal_ece_reference(np.array([0.28]), np.array([1.0]), 25) == pytest.approx(0.72)


def test_adafocal_min_sample_is_excluded_but_counted():
    conf = np.array([0.6, 0.7, 0.8, 0.9])
    p = np.stack([conf, 1 - conf], 1)
    r = convention_error([0, 0, 0, 1], p, "adafocal", n_bins=2, strategy="quantile")
    assert int(r.table.count.sum()) == 3 and r.table.n_samples == 4
    assert float(r) == pytest.approx(adafocal_adaece_reference(conf, np.array([1, 1, 1, 0]), 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_caltrain_matches_reference_loops(seed):
    y, p = adversarial_multiclass(400, seed=seed)
    conf, correct = _top(y, p)
    for norm, power in (("l1", 1), ("l2", 2)):
        got = float(convention_error(y, p, "caltrain", norm=norm))
        assert got == pytest.approx(caltrain_reference(conf, correct, p=power), abs=1e-12)
    # equal mass: caltrain's unstable argsort makes tied scores order-dependent, so compare
    # on distinct scores
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.3, 1, 437)
    t = (rng.uniform(size=437) < q ** 2).astype(int)
    for b in (15, 22):
        got = float(convention_error(t, q, "caltrain", n_bins=b, strategy="quantile"))
        assert got == pytest.approx(caltrain_reference(q, t, b, equal_mass=True), abs=1e-12)


# ----------------------------------------------------------------------------------------------
# installed peers


@pytest.mark.peers
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_netcal(strategy, cifar10_probs):
    netcal = pytest.importorskip("netcal.metrics")
    compared = 0
    for y, p in (adversarial_multiclass(), adversarial_binary(), cifar10_probs):
        for b in (10, 15):
            try:
                theirs = netcal.ECE(bins=b, equal_intervals=strategy == "uniform").measure(p, y)
            except ValueError as exc:  # netcal fails when tied scores repeat a quantile edge
                assert strategy == "quantile" and "numerically 0" in str(exc)
                continue
            ours = float(convention_error(y, p, "netcal", n_bins=b, strategy=strategy))
            assert ours == pytest.approx(theirs, abs=1e-7)
            compared += 1
        if strategy == "uniform":
            theirs = netcal.MCE(bins=10).measure(p, y)
            assert float(convention_error(y, p, "netcal", norm="max")) == pytest.approx(
                theirs, abs=1e-7)
    assert compared >= 2


@pytest.mark.peers
def test_torchmetrics(cifar10_probs):
    torch = pytest.importorskip("torch")
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    from torchmetrics.functional.classification.calibration_error import _ce_compute

    for y, p in (adversarial_multiclass(), cifar10_probs):
        conf = torch.as_tensor(p).max(1).values.float()
        acc = torch.as_tensor(p).argmax(1).eq(torch.as_tensor(y))
        for norm in ("l1", "l2", "max"):
            ours = float(convention_error(y, p, "torchmetrics", norm=norm))
            theirs = float(tmf.multiclass_calibration_error(
                torch.as_tensor(p), torch.as_tensor(y), num_classes=p.shape[1], n_bins=15,
                norm=norm))
            assert ours == pytest.approx(theirs, abs=1e-5)  # torchmetrics sums in float32
            # torchmetrics' own binning (float32 edges, bucketize) with float64 sums: exact
            edges = torch.linspace(0, 1, 16, dtype=torch.float32).double()
            exact = float(_ce_compute(conf.double(), acc.double(), edges, norm=norm))
            assert ours == pytest.approx(exact, abs=1e-12)
    y, p = adversarial_binary()
    for dt in (np.float32, np.float64):
        for norm in ("l1", "max"):
            theirs = float(tmf.binary_calibration_error(
                torch.as_tensor(p.astype(dt)), torch.as_tensor(y), n_bins=10, norm=norm))
            ours = float(convention_error(y, p.astype(dt), "torchmetrics", n_bins=10,
                                          norm=norm))
            assert ours == pytest.approx(theirs, abs=1e-6)


@pytest.mark.peers
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_sklearn_curve_points(strategy, imdb_binary):
    from sklearn.calibration import calibration_curve

    for y, p in (adversarial_binary(), imdb_binary):
        prob_true, prob_pred = calibration_curve(y, p[:, 1] if p.ndim == 2 else p, n_bins=7,
                                                 strategy=strategy)
        table = convention_error(y, p, "sklearn", n_bins=7, strategy=strategy).table
        keep = table.count > 0
        np.testing.assert_allclose(table.mean_target[keep], prob_true, atol=1e-12)
        np.testing.assert_allclose(table.mean_score[keep], prob_pred, atol=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_uncertainty_calibration(strategy, cifar10_probs):
    calibration = pytest.importorskip("calibration")
    fn = calibration.get_ece if strategy == "uniform" else calibration.get_ece_em
    for y, p in (adversarial_multiclass(), adversarial_binary(), cifar10_probs):
        for b in (10, 15):
            theirs = fn(p, y, num_bins=b)
            ours = float(convention_error(y, p, "uncertainty_calibration", n_bins=b,
                                          strategy=strategy))
            assert ours == pytest.approx(theirs, abs=1e-6)


@pytest.mark.peers
def test_relplot_binned(cifar10_probs):
    relplot = pytest.importorskip("relplot")
    binned_ece = pytest.importorskip("relplot.metrics").binnedECE
    for y, p in (adversarial_multiclass(), adversarial_binary(), cifar10_probs):
        if p.ndim == 2:
            f, t = relplot.multiclass_logits_to_confidences(p, y, probs=True)
        else:
            f, t = p, y
        for b in (7, 10, 15):
            theirs = binned_ece(np.asarray(f, np.float64), np.asarray(t, float), nbins=b)
            ours = float(convention_error(y, p, "relplot", n_bins=b))
            assert ours == pytest.approx(theirs, abs=1e-7)


def test_every_convention_runs_on_binary_and_multiclass():
    yb, pb = adversarial_binary()
    ym, pm = adversarial_multiclass()
    for c in CONVENTIONS:
        assert 0 <= float(convention_error(yb, pb, c)) <= 1
        if c != "sklearn":
            assert 0 <= float(convention_error(ym, pm, c)) <= 1
