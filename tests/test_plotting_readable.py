"""Readable diagrams: zoomed confidence axes, counts that hide nothing, uncertainty drawn,
comparisons, class-wise panels and the estimator / calibrator constructors.

Checked against what was drawn (artists, axis transforms, pixel extents), with the
expected values computed independently (brute-force bins, scipy, hand formulas).
"""

from __future__ import annotations

import numpy as np
import pytest
from references import brute_bins
from scipy import stats

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calkit import calibration_error, softmax, uniform_edges  # noqa: E402
from calkit.datasets import load_example  # noqa: E402
from calkit.plotting import (  # noqa: E402
    ConfidenceHistogramDisplay,
    ReliabilityDisplay,
    _scale,  # noqa: E402
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def example():
    logits, labels = load_example()
    return labels, softmax(logits.astype(np.float64)), logits


def _axes_fraction(ax, values, axis="x"):
    """Where data ``values`` land on ``ax``, as a fraction of the axis (0 = left/bottom)."""
    pts = np.c_[values, np.full(len(values), 0.5)] if axis == "x" else \
        np.c_[np.full(len(values), 0.5), values]
    frac = ax.transAxes.inverted().transform(ax.transData.transform(pts))
    return frac[:, 0] if axis == "x" else frac[:, 1]


# ---------------------------------------------------------------------------- scales

@pytest.mark.parametrize("scale", ["-log(1-p)", "logit"])
def test_zoomed_axis_maps_ticks_exactly(scale):
    fig, ax = plt.subplots()
    low, high = _scale.limits(scale, [0.3, 0.97, 1 - 3e-6])
    _scale.apply(ax, scale, low, high)
    values, labels = _scale.ticks(scale, low, high)

    def u(p):  # the scale's definition, written out
        p = np.asarray(p, dtype=np.float64)
        return -np.log10(1 - p) if scale == "-log(1-p)" else np.log10(p / (1 - p))

    expected = (u(values) - u(low)) / (u(high) - u(low))
    np.testing.assert_allclose(_axes_fraction(ax, values), expected, atol=1e-9)
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == labels
    assert "0.9" in labels and "0.99" in labels and "0.999" in labels
    # labels name the value they sit at
    for v, text in zip(values, labels, strict=True):
        named = 1 - float(text[2:]) if text.startswith("1-") else float(text)
        assert v == pytest.approx(named, abs=1e-15)
    # half a decade beyond the score nearest to 1: 1 - 3e-6 needs 1 - 1e-6 at least
    assert high >= 1 - 1e-6 and high <= 1 - 1e-7


def test_error_rate_decades_are_equally_spaced():
    fig, ax = plt.subplots()
    _scale.apply(ax, "-log(1-p)", 0.0, 1 - 1e-4)
    frac = _axes_fraction(ax, [0.0, 0.9, 0.99, 0.999, 0.9999])
    np.testing.assert_allclose(np.diff(frac), 0.25, atol=1e-9)


def test_auto_scale_rule():
    assert _scale.resolve("auto", 0.51)[0] == "-log(1-p)"
    assert _scale.resolve("auto", 0.5) == ("linear", None)
    assert _scale.resolve("logit", 0.0) == ("logit", None)
    with pytest.raises(ValueError, match="confidence_scale"):
        _scale.resolve("log", 0.9)


def test_equal_mass_diagram_of_an_accurate_model_shows_every_bin(example):
    """The bundled example: 14 of 15 equal-mass edges above 0.9994.  On the automatic
    error-rate scale every bin's bar is at least 2 pixels wide (linear: all but one < 1)."""
    y, p, _ = example
    conf = p.max(1)
    assert np.mean(conf > 0.99) > 0.5
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins=15, strategy="quantile")
    assert disp.confidence_scale_ == "-log(1-p)"
    assert "error-rate scale" in disp.ax_.get_title()
    assert f"{100 * np.mean(conf > 0.99):.0f}%" in disp.ax_.get_title()
    disp.figure_.canvas.draw()
    widths = np.array([b.get_window_extent().width for b in disp.bars_[0]])
    assert len(widths) == disp.table.n_bins == 15 and widths.min() >= 2, widths
    # each bar spans its bin's edges (true widths on the scale)
    edges = np.asarray(disp.table.edges)
    x0 = np.array([b.get_x() for b in disp.bars_[0]])
    np.testing.assert_array_equal(x0[1:], edges[1:-1])
    linear = ReliabilityDisplay.from_predictions(y, p, n_bins=15, strategy="quantile",
                                                 confidence_scale="linear")
    linear.figure_.canvas.draw()
    lin_widths = np.array([b.get_window_extent().width for b in linear.bars_[0]])
    assert (lin_widths < 1).sum() >= 13 and "error-rate" not in linear.ax_.get_title()


def test_accuracy_axis_and_diagonal_on_the_zoomed_scale(example):
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p, confidence_scale="logit")
    ax = disp.ax_
    assert ax.get_xscale() == ax.get_yscale() == "function"
    x, yy = disp.diagonal_[0].get_data()
    np.testing.assert_allclose(x, yy)         # p = p, straight on equal scales
    low, high = ax.get_xlim()
    assert low == pytest.approx(x[0]) and high == pytest.approx(x[-1])
    # the accuracy axis stops where the bins can resolve it (a decade beyond 1/n), or at
    # the confidence axis' end if that comes first
    n = disp.table.count.max()
    resolved = 1 - 10.0 ** -(np.ceil(np.log10(n)) + 1)
    assert ax.get_ylim()[1] == pytest.approx(min(resolved, high))
    many = ReliabilityDisplay.from_predictions(y, p, n_bins=15, strategy="quantile",
                                               confidence_scale="logit")
    n = many.table.count.max()         # 134 samples: accuracy to 1e-2, the axis to 1e-4
    assert many.ax_.get_ylim()[1] == pytest.approx(1 - 10.0 ** -(np.ceil(np.log10(n)) + 1))
    assert many.ax_.get_xlim()[1] > many.ax_.get_ylim()[1]


# ---------------------------------------------------------------------------- counts

def test_every_non_empty_bin_is_visible_in_the_counts():
    rng = np.random.default_rng(0)
    conf = np.r_[np.full(3000, 0.97), 0.55, 0.65, 0.65]        # single samples far away
    p = np.c_[conf, 1 - conf]
    y = np.r_[np.zeros(2700, int), np.ones(300, int), 1, 0, 0]
    disp = ConfidenceHistogramDisplay.from_predictions(y, p, n_bins=10,
                                                       count_scale="linear")
    right, wrong = disp.correct_bars_[0], disp.wrong_bars_[0]
    disp.figure_.canvas.draw()
    count, _, tsum = brute_bins(conf, y == 0, uniform_edges(10))
    assert rng is not None and count[5] == 1 and count[6] == 2
    # linear axis: one sample is invisible as a bar, so a marker sits on each tiny bar
    xs, ys = disp.markers_[0].get_data()
    from calkit.plotting.histogram import MARKER_BELOW

    tiny = [(b.get_x() + b.get_width() / 2, b.get_height())
            for b in list(right) + list(wrong) if 0 < b.get_height() < MARKER_BELOW * 2700]
    assert len(tiny) == len(xs) == 2       # 1 wrong at 0.55, 2 correct at 0.65
    np.testing.assert_allclose(sorted(ys), sorted(h for _, h in tiny))
    log = ConfidenceHistogramDisplay.from_predictions(y, p, n_bins=10, counts=True)
    assert log.ax_.get_yscale() == "log" and log.ax_.get_ylim()[0] == 0.5
    log.figure_.canvas.draw()
    for b in list(log.correct_bars_[0]) + list(log.wrong_bars_[0]):
        if b.get_height() > 0:  # a count of one spans 0.5..1: visible on the log axis
            assert b.get_window_extent().height >= 3
    texts = sorted(int(t.get_text()) for t in log.ax_.texts)
    assert texts == sorted(int(v) for v in np.r_[tsum, count - tsum] if v > 0)


def test_reliability_count_panel_below_and_legend_outside(example):
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p)
    fig = disp.figure_
    fig.canvas.draw()
    ax, hax = disp.ax_, disp.hist_axes_[0]
    assert hax.get_window_extent().y1 <= ax.get_window_extent().y0
    legend = ax.get_legend()
    box = legend.get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1         # outside the data
    counts = ReliabilityDisplay.from_predictions(y, p, count_scale="linear", counts=True)
    assert len(counts.hist_axes_[0].texts) == int(np.sum(counts.table.sum_target > 0)
                                                  + np.sum(counts.table.count
                                                           - counts.table.sum_target > 0))


# ---------------------------------------------------------------------------- uncertainty

@pytest.mark.parametrize(("method", "scipy_method"), [("wilson", "wilson"),
                                                      ("clopper-pearson", "exact")])
def test_display_intervals_are_the_binomial_intervals(example, method, scipy_method):
    y, p, _ = example
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins=10, interval=method,
                                               confidence=0.9)
    t = disp.table
    low, high = disp.intervals[0]
    for j in np.flatnonzero(t.nonempty):
        ci = stats.binomtest(int(t.sum_target[j]), int(t.count[j])).proportion_ci(
            0.9, method=scipy_method)
        assert (low[j], high[j]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert np.isnan(low[~t.nonempty]).all()
    # drawn: one error bar per non-empty bin, from low to high at the mean confidence
    segments = disp.interval_bars_[0].lines[2][0].get_segments()
    assert len(segments) == int(t.nonempty.sum())
    for seg, j in zip(segments, np.flatnonzero(t.nonempty), strict=True):
        assert seg[0][0] == pytest.approx(t.mean_score[j])
        assert sorted([seg[0][1], seg[1][1]]) == pytest.approx([low[j], high[j]])
    name = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}[method]
    assert f"90% {name} interval" in disp.legend_texts()
    with pytest.raises(ValueError, match="interval"):
        ReliabilityDisplay.from_predictions(y, p, interval="agresti")


def test_display_interval_coverage_on_calibrated_data():
    """The display's 95% Wilson intervals hold the bins' true mean probability for
    93-97% of 900 bins (30 calibrated data sets of 30 bins; binomial sd 0.7 points)."""
    hits = total = 0
    fig, ax = plt.subplots()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        q = rng.uniform(size=3000)
        yy = (rng.uniform(size=3000) < q).astype(int)
        ax.clear()
        disp = ReliabilityDisplay.from_predictions(yy, q, view="positive", n_bins=30, ax=ax,
                                                   interval="wilson", hist=False, gap=False,
                                                   legend="none")
        low, high = disp.intervals[0]
        truth, ok = disp.table.mean_score, disp.table.nonempty
        hits += int(np.sum((low <= truth) & (truth <= high) & ok))
        total += int(ok.sum())
    assert 0.93 <= hits / total <= 0.97, hits / total


def test_display_consistency_band_and_marks():
    rng = np.random.default_rng(0)
    q = rng.uniform(size=3000)
    yy = (rng.uniform(size=3000) < np.where(q > 0.7, q - 0.25, q)).astype(int)
    disp = ReliabilityDisplay.from_predictions(yy, q, view="positive", n_bins=10,
                                               consistency_band=True, random_state=3)
    band, t = disp.band[0], disp.table
    np.testing.assert_array_equal(band.edges, t.edges)
    np.testing.assert_array_equal(band.count, t.count)
    out = disp.outside_band[0]
    np.testing.assert_array_equal(out, (t.mean_target < band.low) | (t.mean_target > band.high))
    assert out[7:].all()
    xs, ys = disp.outside_markers_[0].get_data()
    np.testing.assert_allclose(ys, t.mean_target[out])
    boxes = disp.band_boxes_[0]
    np.testing.assert_allclose([b.get_y() for b in boxes], band.low)
    np.testing.assert_allclose([b.get_y() + b.get_height() for b in boxes], band.high)
    assert "95% consistency band" in disp.legend_texts()
    again = ReliabilityDisplay.from_predictions(yy, q, view="positive", n_bins=10,
                                                consistency_band=True, random_state=3)
    np.testing.assert_array_equal(again.band[0].low, band.low)      # seeded


# ---------------------------------------------------------------------------- comparisons

def test_grid_comparison_shares_axes_and_keeps_full_titles(example):
    y, p, logits = example
    long = "ResNet-50 after temperature scaling fitted on the validation split"
    probs = {"raw": p, long: softmax(logits / 1.7), "T=3": softmax(logits / 3)}
    disp = ReliabilityDisplay.from_predictions(y, probs, layout="grid", ncols=2, smooth=True)
    assert len(disp.axes_) == 3 and all(h is not None for h in disp.hist_axes_)
    assert disp.axes_[1].get_shared_y_axes().joined(disp.axes_[0], disp.axes_[1])
    title = disp.axes_[1].get_title()
    assert title.replace("\n", " ").startswith(long)         # wrapped, never cut
    assert f"ECE {100 * float(calibration_error(y, probs[long])):.2f}%" in title
    assert all(line is not None for line in disp.smooth_lines_)   # nothing dropped
    assert all(b is not None for b in disp.count_bars_)
    assert len(disp.figure_.legends) == 1
    rows = {round(a.get_position().y0, 3) for a in disp.axes_}
    assert len(rows) == 2                                     # two rows of two


def test_classwise_panels(example):
    y, p, _ = example
    disp = ReliabilityDisplay.from_classwise(y, p, n_bins=8)
    assert len(disp.axes_) == 10 and disp.classes_ == list(range(10))
    for k, t in zip(disp.classes_, disp.tables, strict=True):
        count, _, tsum = brute_bins(p[:, k], y == k, uniform_edges(8))
        np.testing.assert_array_equal(t.count, count)
        np.testing.assert_allclose(t.sum_target, tsum)
    names = [f"label {k}" for k in range(10)]
    worst = ReliabilityDisplay.from_classwise(y, p, n_bins=8, max_panels=6, n_worst=3,
                                              class_names=names)
    per_class = [float(calibration_error((y == k).astype(int), p[:, k], view="positive",
                                         n_bins=8)) for k in range(10)]
    assert worst.classes_ == list(np.argsort(per_class)[::-1][:3])
    assert worst.names[0] == names[worst.classes_[0]]
    assert "3 worst of 10 classes" in worst.figure_._suptitle.get_text()
    picked = ReliabilityDisplay.from_classwise(y, p, classes=[2, 5])
    assert picked.classes_ == [2, 5]
    with pytest.raises(ValueError, match="classes"):
        ReliabilityDisplay.from_classwise(y, p, classes=[10])
    with pytest.raises(ValueError, match="class_names"):
        ReliabilityDisplay.from_classwise(y, p, class_names=["a"])


def test_from_estimator_and_from_calibrator(example):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from calkit.posthoc import TemperatureScaling

    assert sklearn is not None
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 3))
    yy = (X[:, 0] + rng.normal(size=800) > 0).astype(int)
    clf = LogisticRegression().fit(X[:400], yy[:400])
    disp = ReliabilityDisplay.from_estimator(clf, X[400:], yy[400:], n_bins=6)
    expected = calibration_error(yy[400:], clf.predict_proba(X[400:])[:, 1], view="positive",
                                 n_bins=6)
    np.testing.assert_allclose(disp.table.sum_target, expected.table.sum_target)
    assert disp.errors[0] == pytest.approx(float(expected))
    y, p, logits = example
    ts = TemperatureScaling().fit(logits[:1000], y[:1000])
    cal = ReliabilityDisplay.from_calibrator(ts, logits[1000:], y[1000:], name="TS")
    assert cal.names == ("uncalibrated", "TS") and len(cal.axes_) == 2
    assert cal.errors[1] == pytest.approx(float(calibration_error(
        y[1000:], ts.predict_proba(logits[1000:]))))
    assert cal.errors[0] == pytest.approx(float(calibration_error(y[1000:], p[1000:])))
    only = ReliabilityDisplay.from_calibrator(ts, logits[1000:], y[1000:], before=False)
    assert only.names == ("TemperatureScaling",)
    with pytest.raises(TypeError, match="predict_proba"):
        ReliabilityDisplay.from_estimator(object(), X, yy)


def test_evaluation_figures_for_the_command_line(example):
    from calkit.plotting import evaluation_figures

    y, p, logits = example
    one = evaluation_figures(y, p, smooth=False, interval="clopper-pearson",
                             confidence_scale="error-rate", counts=True)
    assert sorted(one) == ["confidence_histogram.png", "reliability_quantile.png",
                           "reliability_uniform.png", "risk_coverage.png"]
    ax = one["reliability_quantile.png"].axes[0]
    assert ax.get_xscale() == "function" and "quantile" in ax.get_title()
    # several files, each with its own labels: one panel each, the same tables as alone
    half = len(y) // 2
    two = evaluation_figures({"a": y[:half], "b": y[half:]}, {"a": p[:half], "b": p[half:]},
                             strategies=("uniform",), smooth=False)
    assert list(two) == ["reliability_uniform.png"]
    fig = two["reliability_uniform.png"]
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    b_ece = float(calibration_error(y[half:], p[half:]))
    assert any(t.startswith("b\n") and f"{100 * b_ece:.2f}%" in t for t in titles)
    with pytest.raises(ValueError, match="same names"):
        ReliabilityDisplay.from_predictions({"a": y}, {"b": p})
    with pytest.raises(ValueError, match="strategies"):
        evaluation_figures(y, p, strategies=("equal",))
