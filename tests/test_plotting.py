"""Displays: render with Agg and check the drawn artists against independent computations."""

from __future__ import annotations

import io

import numpy as np
import pytest
from references import brute_bins, brute_ece

from conftest import shared_path

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calkit import calibration_error, softmax, sweep_ece, uniform_edges  # noqa: E402
from calkit.datasets import load_example  # noqa: E402
from calkit.plotting import (  # noqa: E402
    ConfidenceHistogramDisplay,
    GammaDynamicsDisplay,
    OODRocDisplay,
    ReliabilityDisplay,
    RiskCoverageDisplay,
)
from calkit.plotting.curves import roc_points  # noqa: E402
from calkit.plotting.gamma import history_arrays  # noqa: E402
from calkit.plotting.reliability import smooth_visible  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def example():
    logits, labels = load_example()
    return labels, softmax(logits.astype(np.float64)), logits


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    return buf.getvalue()


def _rects(container):
    return np.array([[r.get_x(), r.get_width(), r.get_y(), r.get_height()] for r in container])


def _tops(container):
    """Where each count bar ends (0 for an empty one): log-axis bars start at 0.5."""
    return np.array([r.get_y() + r.get_height() if r.get_height() > 0 else 0.0
                     for r in container])


def test_reliability_bars_equal_brute_force_bins(example):
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins=15, name="net")
    conf, correct = p.max(1), p.argmax(1) == y
    count, ssum, tsum = brute_bins(conf, correct, uniform_edges(15))
    ok = count > 0
    bars = _rects(disp.bars_[0])
    np.testing.assert_allclose(bars[:, 3], tsum[ok] / count[ok], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bars[:, 2], 0)
    # bars sit on the bin edges (the first bin is empty here; the last one is drawn
    # only up to the largest confidence)
    edges = uniform_edges(15)
    assert not ok[0]
    np.testing.assert_allclose(bars[:, 0], edges[:-1][ok])
    np.testing.assert_allclose(bars[:-1, 1], np.diff(edges)[ok][:-1])
    assert bars[-1, 0] + bars[-1, 1] == pytest.approx(conf.max())
    # gap bars run from the accuracy to the mean confidence of each bin
    gaps = _rects(disp.gap_bars_[0])
    np.testing.assert_allclose(gaps[:, 2], tsum[ok] / count[ok], atol=1e-12)
    np.testing.assert_allclose(gaps[:, 2] + gaps[:, 3], ssum[ok] / count[ok], atol=1e-12)
    # count panel: every bin, correct and wrong side by side, empty ones at zero
    np.testing.assert_array_equal(_tops(disp.count_bars_[0]), tsum)
    np.testing.assert_array_equal(_tops(disp.wrong_bars_[0]), count - tsum)
    right, wrong = _rects(disp.count_bars_[0]), _rects(disp.wrong_bars_[0])
    np.testing.assert_allclose(right[:, 0] + right[:, 1], wrong[:, 0])  # they meet
    ece = brute_ece(conf, correct, uniform_edges(15))
    assert disp.legend_texts()[0] == f"net (ECE {100 * ece:.2f}%)"
    assert disp.hist_axes_[0].get_yscale() == "log"
    assert _png_bytes(disp.figure_)[:8] == b"\x89PNG\r\n\x1a\n"


def test_reliability_quantile_bars_have_variable_width(example):
    y, p, _ = example
    r = calibration_error(y, p, n_bins=10, strategy="quantile")
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins=10, strategy="quantile")
    bars = _rects(disp.bars_[0])
    edges = r.table.edges
    np.testing.assert_allclose(bars[1:-1, 1], np.diff(edges)[1:-1])
    assert np.ptp(bars[:, 1]) > 0.1                     # really different widths
    np.testing.assert_allclose(bars[:, 3], r.table.mean_target)
    counts = _tops(disp.count_bars_[0]) + _tops(disp.wrong_bars_[0])
    assert counts.max() - counts.min() <= 1             # equal mass (distinct scores)
    assert disp.hist_axes_[0].get_yscale() == "linear"
    assert "10 quantile bins" in disp.ax_.get_title()


def test_reliability_overlay_and_side_by_side(example):
    y, p, logits = example
    probs = {"raw": p, "T=2": softmax(logits / 2.0)}
    over = ReliabilityDisplay.from_predictions(y, probs)
    assert len(over.axes_) == 1 and len(over.bars_) == 2
    assert over.gap_bars_ == [None, None]               # no shading when overlaid
    labels = [t.get_text() for t in over.ax_.get_legend().get_texts()]
    for name, q in probs.items():
        e = float(calibration_error(y, q))
        assert f"{name} (ECE {100 * e:.2f}%)" in labels
    side = ReliabilityDisplay.from_predictions(y, probs, layout="side_by_side")
    assert len(side.axes_) == 2 and all(g is not None for g in side.gap_bars_)
    heights = _rects(side.bars_[1])[:, 3]
    t = calibration_error(y, probs["T=2"]).table
    np.testing.assert_allclose(heights, t.mean_target[t.nonempty])
    assert side.axes_[1].get_title().startswith("T=2")


def test_reliability_on_given_axes_puts_the_counts_below(example):
    y, p, _ = example
    fig, ax = plt.subplots()
    disp = ReliabilityDisplay.from_predictions(y, p, ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    hax = disp.hist_axes_[0]
    fig.canvas.draw()
    # the count panel is taken from the bottom of ax: it shares x and covers nothing
    top, bottom = ax.get_window_extent(), hax.get_window_extent()
    assert bottom.y1 <= top.y0 + 1e-6 and hax.get_shared_x_axes().joined(ax, hax)
    assert ax.get_legend() is not None      # legend="auto" on given axes: "best", inside
    fig2, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="needs 1 axes"):
        ReliabilityDisplay.from_predictions(y, p, ax=list(axes))


def test_reliability_from_result_sweep_and_errors(example):
    y, p, _ = example
    r = sweep_ece(y, p)
    disp = ReliabilityDisplay.from_result({"sweep": r}, hist=False)
    assert disp.hist_axes_ == [None]
    np.testing.assert_allclose(_rects(disp.bars_[0])[:, 3], r.table.mean_target)
    assert f"{100 * float(r):.2f}%" in disp.ax_.get_legend().get_texts()[0].get_text()
    mce = ReliabilityDisplay.from_result(calibration_error(y, p, norm="max"), name="m")
    assert mce.ax_.get_legend().get_texts()[0].get_text().startswith("m (MCE ")
    with pytest.raises(ValueError, match="single bin table"):
        ReliabilityDisplay.from_result(calibration_error(y, p, view="classwise"))
    with pytest.raises(ValueError, match="view must be one of"):
        ReliabilityDisplay.from_predictions(y, p, view="classwise")
    with pytest.raises(ValueError, match="layout must be one of"):
        ReliabilityDisplay.from_predictions(y, p, layout="mosaic")
    with pytest.raises(ValueError, match="CalibrationResult"):
        ReliabilityDisplay.from_result({"x": 0.1})


def test_reliability_positive_view_binary():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p ** 2).astype(int)
    disp = ReliabilityDisplay.from_predictions(y, p, view="positive", n_bins=5)
    count, _, tsum = brute_bins(p, y, uniform_edges(5))
    np.testing.assert_allclose(_rects(disp.bars_[0])[:, 3], tsum / count)
    assert disp.ax_.get_ylabel() == "Fraction of positives"


def test_confidence_histogram_counts(example):
    y, p, _ = example
    disp = ConfidenceHistogramDisplay.from_predictions(y, p, n_bins=20)
    conf, correct = p.max(1), p.argmax(1) == y
    count, _, tsum = brute_bins(conf, correct, uniform_edges(20))
    np.testing.assert_array_equal(_tops(disp.correct_bars_[0]), tsum)
    np.testing.assert_array_equal(_tops(disp.wrong_bars_[0]), count - tsum)
    right, wrong = _rects(disp.correct_bars_[0]), _rects(disp.wrong_bars_[0])
    edges = uniform_edges(20)
    # side by side, not stacked: correct on the left half of each bin, wrong on the right
    np.testing.assert_allclose(right[:, 0], edges[:-1])
    np.testing.assert_allclose(wrong[:, 0], (edges[:-1] + edges[1:]) / 2)
    np.testing.assert_allclose(wrong[:, 0] + wrong[:, 1], edges[1:])
    assert np.all(wrong[:, 2] == 0.5)     # log axis: bars start at 0.5, a count of 1 shows
    assert disp.accuracy[0] == pytest.approx(correct.mean())
    assert disp.mean_confidence[0] == pytest.approx(conf.mean())
    # the top bin holds most samples: "auto" switches to a log axis, "linear" keeps it linear
    assert count.max() > len(y) / 2 and disp.ax_.get_yscale() == "log"
    assert disp.ax_.get_ylabel() == "Number of samples (log)"
    lin = ConfidenceHistogramDisplay.from_predictions(y, p, count_scale="linear")
    assert lin.ax_.get_yscale() == "linear"
    q = np.linspace(0.5, 1, 400)  # spread-out confidences: no bin holds half of them
    spread = ConfidenceHistogramDisplay.from_predictions(np.arange(400) % 2, q)
    assert spread.ax_.get_yscale() == "linear"
    with pytest.raises(ValueError, match="count_scale"):
        ConfidenceHistogramDisplay.from_predictions(y, p, count_scale="sqrt")


def test_roc_points_match_sklearn_on_real_ood_data():
    metrics = pytest.importorskip("sklearn.metrics")
    path = shared_path("ood_mnist_fashion", "cnn_mnist_id_fashion_ood.npz")
    with np.load(path, allow_pickle=False) as d:
        s_in = softmax(d["test_logits"].astype(np.float64)).max(1)
        s_out = softmax(d["ood_logits"].astype(np.float64)).max(1)
    fpr, tpr, thr = roc_points(s_in, s_out)
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    sk_fpr, sk_tpr, sk_thr = metrics.roc_curve(y, np.r_[s_in, s_out], drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    disp = OODRocDisplay.from_scores({"MSP": (s_in, s_out)})
    assert disp.metrics[0].auroc == pytest.approx(metrics.roc_auc_score(y, np.r_[s_in, s_out]),
                                                  abs=1e-12)
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), fpr)
    # FPR at 95% TPR by brute force: the threshold keeping >= 95% of ID scores
    t = np.sort(s_in)[::-1][int(np.ceil(0.95 * len(s_in))) - 1]
    assert disp.metrics[0].fpr_at_tpr == pytest.approx((s_out >= t).mean())
    assert f"FPR@95 {(s_out >= t).mean():.3f}" in disp.lines_[0].get_label()


def test_risk_coverage_display_brute_force_with_ties():
    rng = np.random.default_rng(3)
    conf = np.round(rng.uniform(0.51, 1, 300), 2)       # many ties, all above 0.5
    y = (rng.uniform(size=300) < conf).astype(int)
    disp = RiskCoverageDisplay.from_predictions(y, conf, name="m")   # binary: predicts 1
    thresholds = np.unique(conf)[::-1]
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), [(conf >= t).mean()
                                                           for t in thresholds])
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), [(y[conf >= t] == 0).mean()
                                                           for t in thresholds])
    assert f"AURC {disp.results[0].aurc:.4f}" in disp.lines_[0].get_label()


def test_risk_coverage_aurc_without_ties_is_mean_running_risk(example):
    y, p, _ = example
    conf = p.max(1)
    assert len(np.unique(conf)) == len(conf)
    disp = RiskCoverageDisplay.from_predictions(y, {"a": p, "b": p})
    wrong = (p.argmax(1) != y)[np.argsort(-conf, kind="stable")]
    running = np.cumsum(wrong) / np.arange(1, len(y) + 1)
    assert disp.results[0].aurc == pytest.approx(running.mean(), rel=1e-12)
    assert len(disp.lines_) == 2


def test_gamma_dynamics_lines_and_padding():
    rng = np.random.default_rng(0)
    history = [{"epoch": e, "edges": np.linspace(0, 1, 6), "E_b": rng.normal(0, 0.02, 5),
                "gamma_b": 1 + rng.uniform(0, 1, 5)} for e in range(6)]
    history.append({"epoch": 6, "gap": [0.01, 0.0, -0.01], "gammas": [2.0, 1.0, -0.2]})
    epochs, gaps, gammas = history_arrays(history)
    assert gaps.shape == (7, 5) and np.isnan(gammas[6, 3:]).all()
    disp = GammaDynamicsDisplay.from_history(history, bins=[0, -1])
    assert disp.bins == [0, 4]
    np.testing.assert_array_equal(disp.gamma_lines_[1].get_ydata()[:6],
                                  [h["gamma_b"][4] for h in history[:6]])
    np.testing.assert_array_equal(disp.gap_lines_[0].get_xdata(), np.arange(7))
    assert len(_png_bytes(disp.figure_)) > 1000


@pytest.mark.parametrize("history, message", [
    ([], "non-empty"),
    ([{"epoch": 0, "gamma_b": [1.0]}], "none of the keys"),
    ([{"epoch": 0, "E_b": [0.1, 0.2], "gamma_b": [1.0]}], "2 gaps but 1 gammas"),
])
def test_gamma_history_errors(history, message):
    with pytest.raises(ValueError, match=message):
        GammaDynamicsDisplay.from_history(history)


def test_plotting_import_does_not_need_matplotlib():
    import subprocess
    import sys

    code = ("import sys; sys.modules['matplotlib'] = None; import calkit.plotting; "
            "from calkit.plotting import ReliabilityDisplay\n"
            "try:\n    ReliabilityDisplay.from_predictions([0, 1], [0.2, 0.7], n_bins=2,\n"
            "                                        view='positive')\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "pip install 'calkit[plot]'" in out.stdout


def test_reliability_smooth_curve(example):
    smooth = pytest.importorskip("calkit.metrics.smooth")
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p, smooth=True, name="net")
    r = smooth.smooth_ece(y, p)
    line = disp.smooth_lines_[0]
    # drawn where the kernel-weighted sample count N density sqrt(2 pi) sigma is >= 3
    dense = len(y) * np.asarray(r.density) * np.sqrt(2 * np.pi) * r.sigma >= 3
    np.testing.assert_array_equal(dense, smooth_visible(r))
    conf = p.max(1)  # ... and never beyond the data
    dense &= (np.asarray(r.grid) >= conf.min()) & (np.asarray(r.grid) <= conf.max())
    np.testing.assert_allclose(line.get_ydata()[dense], np.asarray(r.curve)[dense])
    assert np.isnan(line.get_ydata()[~dense]).all() and (~dense).any()
    assert line.get_label() == f"smooth curve (smECE {100 * float(r):.2f}%)"
    plain = ReliabilityDisplay.from_predictions(y, p)
    assert plain.smooth_lines_ == [None]


def test_reliability_smooth_band(example):
    smooth = pytest.importorskip("calkit.metrics.smooth")
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p, smooth=True, name="net")
    r = smooth.smooth_ece(y, p)
    low, high = smooth.curve_band(*_top_pairs(y, p), r.sigma, n_resamples=100, random_state=0)
    band = disp.smooth_bands_[0]
    # the shaded polygon runs along the band's upper and lower edges where data are dense
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    grid = np.asarray(r.grid)
    dense = smooth_visible(r) & (grid >= p.max(1).min()) & (grid <= p.max(1).max())
    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
    for x, lo, hi in zip(np.asarray(r.grid)[dense][::20], low[dense][::20], high[dense][::20],
                         strict=True):
        ys = vertices[np.isclose(vertices[:, 0], x), 1]
        assert np.isclose(ys, lo).any() and np.isclose(ys, hi).any()
    assert (high[dense] >= low[dense]).all() and (high[dense] - low[dense]).max() > 0
    assert band.get_label() == "95% bootstrap band"
    labels = disp.legend_texts()
    assert labels[-2:] == ["95% bootstrap band", "perfect calibration"]
    none = ReliabilityDisplay.from_predictions(y, p, smooth=True, smooth_band=None)
    assert none.smooth_bands_ == [None] and none.smooth_lines_[0] is not None


def _top_pairs(y, p):
    return p.max(1), (p.argmax(1) == y).astype(float)


def test_gamma_dynamics_from_a_real_adafocal_history(example):
    """The history of calkit's AdaFocal loss (when present) plots as recorded."""
    torch = pytest.importorskip("torch")
    training = pytest.importorskip("calkit.training")
    loss_fn = training.AdaFocalLoss(n_bins=5)
    y, p, logits = example
    z = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    for temperature in (2.0, 1.5, 1.0, 0.7):  # stand-ins for epochs of a sharpening model
        loss_fn.update(z / temperature, torch.as_tensor(y))
    disp = GammaDynamicsDisplay.from_history(loss_fn.history)
    gammas = np.array([np.asarray(r["gamma_b"], dtype=float) for r in loss_fn.history])
    gaps = np.array([np.asarray(r["E_b"], dtype=float) for r in loss_fn.history])
    assert len(disp.gamma_lines_) == 5
    for b in range(5):
        np.testing.assert_allclose(disp.gamma_lines_[b].get_ydata(), gammas[:, b])
        np.testing.assert_allclose(disp.gap_lines_[b].get_ydata(), gaps[:, b])
