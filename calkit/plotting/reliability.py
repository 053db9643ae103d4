"""Reliability diagrams drawn from the binning engine's :class:`~calkit.binning.BinTable`.

Every bar is one bin of the table the metric itself used: its left side and
width are the bin's edges (so equal-mass bins give bars of different widths),
its height the bin's accuracy (mean target), and the shaded gap runs from the
accuracy to the bin's *mean confidence* (not the bin centre), so the shaded area
weighted by the counts is exactly the ECE printed in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_classification, check_option
from calkit.binning import BinTable
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import CalibrationResult, calibration_error
from calkit.plotting._axes import colors, inset_hist_axes, panel_grid

LAYOUTS = ("overlay", "side_by_side")
SMOOTH_MIN_SAMPLES = 3.0
_AXIS_LABELS = {
    "top_label": ("Confidence (top-label probability)", "Accuracy"),
    "positive": ("Predicted probability of class 1", "Fraction of positives"),
}


class ReliabilityDisplay:
    """Reliability diagram of one or several models (scikit-learn Display conventions).

    Create it with :meth:`from_predictions` or :meth:`from_result`; both compute
    (or take) the bin tables and call :meth:`plot`.  Nothing is shown: the
    figure is returned for saving (``display.figure_.savefig(...)``).

    Parameters
    ----------
    tables : sequence of BinTable
        One bin table per model.
    names : sequence of str
        Model names for the legend and panel titles.
    errors : sequence of float
        The calibration error of each model, shown in the legend.
    settings : dict, optional
        ``n_bins``, ``strategy``, ``view``... (shown in the title and axis labels).
    score_ranges : sequence of (float, float), optional
        Per model, the smallest and largest score.  The outer bins' bars are
        drawn only over that range (the engine's outer edges are 0 and 1, which
        would draw the first equal-mass bin from 0).  Heights are unaffected.
    smooth : sequence of SmoothECEResult, optional
        Per model, a :func:`calkit.metrics.smooth.smooth_ece` result whose
        smoothed reliability curve is drawn over the bars.

    Attributes
    ----------
    axes_ : list of matplotlib Axes
        The reliability panels (one for ``layout="overlay"``).
    ax_ : matplotlib Axes
        ``axes_[0]``.
    hist_axes_ : list of matplotlib Axes or None
        The count panel under (or inside) each reliability panel.
    bars_ : list of BarContainer
        Per model, the accuracy bars of its non-empty bins.
    gap_bars_ : list of BarContainer or None
        Per model, the shaded gap bars (None when not drawn).
    count_bars_ : list of BarContainer or None
        Per model, the bin counts (all bins, empty ones with height 0).
    diagonal_ : list of Line2D
        The perfect-calibration diagonal of each panel.
    smooth_lines_ : list of Line2D or None
        Per model, the smoothed reliability curve (when ``smooth`` was given).
    smooth_bands_ : list of PolyCollection or None
        Per model, the shaded bootstrap band of that curve (when the result has one).
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.plotting import ReliabilityDisplay
    >>> logits, labels = load_example()
    >>> disp = ReliabilityDisplay.from_predictions(labels, softmax(logits), name="ResNet-50")
    >>> len(disp.bars_[0]) == int(disp.tables[0].nonempty.sum())
    True
    >>> disp.ax_.get_legend().get_texts()[0].get_text()
    'ResNet-50 (ECE 4.00%)'
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, tables: Sequence[BinTable], names: Sequence[str],
                 errors: Sequence[float], settings: dict | None = None,
                 score_ranges: Sequence[tuple[float, float]] | None = None,
                 smooth: Sequence | None = None):
        if not (len(tables) == len(names) == len(errors)) or not tables:
            raise ValueError("tables, names and errors must be non-empty and of equal length")
        self.tables = tuple(t.to_numpy() for t in tables)
        self.names = tuple(str(n) for n in names)
        self.errors = tuple(float(e) for e in errors)
        self.settings = dict(settings or {})
        self.score_ranges = None if score_ranges is None else tuple(
            (float(lo), float(hi)) for lo, hi in score_ranges)
        self.smooth = None if smooth is None else tuple(smooth)

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins: int = 15, strategy: str = "uniform",
                         closed: str = "right", view: str = "top_label", name: str | None = None,
                         smooth: bool = False, smooth_band: float | None = 0.95,
                         sum_tol: float | None = None, **plot_kw) -> ReliabilityDisplay:
        """Bin the predictions with :func:`calkit.calibration_error` and plot them.

        Parameters
        ----------
        y_true : array of shape (N,)
            Integer labels (shared by all models).
        y_prob : array of shape (N, K) or (N,), or a mapping name -> array
            Probabilities of one model, or of several models to compare.
        n_bins, strategy, closed, view, sum_tol
            As in :func:`calkit.calibration_error` (``view`` is ``"top_label"``
            or ``"positive"``).
        name : str, optional
            Legend name of a single model (default ``"model"``).
        smooth : bool, default=False
            Also draw the smooth-ECE reliability curve (Blasiok and Nakkiran
            2023) of each model, from :func:`calkit.metrics.smooth.smooth_ece`.
        smooth_band : float or None, default=0.95
            With ``smooth=True``, shade the curve's pointwise bootstrap band at
            this level (100 seeded resamples, :func:`calkit.metrics.smooth.curve_band`);
            None draws the curve alone.
        **plot_kw
            ``ax``, ``layout``, ``hist``, ``gap``, ``count_scale``,
            ``axis_labels``: see :meth:`plot`.

        Returns
        -------
        ReliabilityDisplay
        """
        check_option(view, "view", tuple(_AXIS_LABELS))
        probs = dict(y_prob) if isinstance(y_prob, Mapping) else {name or "model": y_prob}
        results = {k: calibration_error(y_true, p, n_bins=n_bins, strategy=strategy,
                                        closed=closed, view=view, sum_tol=sum_tol)
                   for k, p in probs.items()}
        ranges = [_score_range(y_true, p, view, sum_tol) for p in probs.values()]
        curves = [_smooth_ece()(y_true, p, view=view, sum_tol=sum_tol, band=smooth_band)
                  for p in probs.values()] if smooth else None
        display = cls([r.table for r in results.values()], list(results),
                      [float(r) for r in results.values()], results[next(iter(results))].settings,
                      score_ranges=ranges, smooth=curves)
        return display.plot(**plot_kw)

    @classmethod
    def from_result(cls, result: CalibrationResult | Mapping[str, CalibrationResult], *,
                    name: str | None = None, **plot_kw) -> ReliabilityDisplay:
        """Plot the bin table(s) of calibration result(s) already computed.

        Parameters
        ----------
        result : CalibrationResult or mapping name -> CalibrationResult
            From :func:`calkit.calibration_error` or :func:`calkit.sweep_ece`
            (top-label or positive view: one table per result).
        name : str, optional
            Legend name of a single result.
        **plot_kw
            ``ax``, ``layout``, ``hist``, ``gap``, ``count_scale``,
            ``axis_labels``: see :meth:`plot`.

        Examples
        --------
        >>> import matplotlib
        >>> import numpy as np
        >>> matplotlib.use("Agg")
        >>> from calkit import calibration_error, softmax
        >>> from calkit.datasets import load_example
        >>> from calkit.plotting import ReliabilityDisplay
        >>> logits, labels = load_example()
        >>> r = calibration_error(labels, softmax(logits), n_bins=10, strategy="quantile")
        >>> disp = ReliabilityDisplay.from_result(r, name="ResNet-50")
        >>> heights = [b.get_height() for b in disp.bars_[0]]
        >>> bool(np.allclose(heights, r.table.mean_target))
        True
        >>> matplotlib.pyplot.close(disp.figure_)
        """
        results = dict(result) if isinstance(result, Mapping) else {name or "model": result}
        if not results:
            raise ValueError("result must hold at least one CalibrationResult")
        for key, r in results.items():
            if not isinstance(r, CalibrationResult):
                raise ValueError(f"result {key!r} is not a CalibrationResult")
            if len(r.tables) != 1:
                raise ValueError("a reliability diagram needs a single bin table; class-wise "
                                 "results have one per class (plot one class with "
                                 "view='positive' on its column)")
        settings = dict(next(iter(results.values())).settings)
        display = cls([r.table for r in results.values()], list(results),
                      [float(r) for r in results.values()], settings)
        return display.plot(**plot_kw)

    def plot(self, ax=None, *, layout: str = "overlay", hist: bool = True,
             gap: bool | None = None, count_scale: str = "auto",
             axis_labels: tuple[str, str] | None = None,
             hist_ax=None) -> ReliabilityDisplay:
        """Draw the diagram.

        Parameters
        ----------
        ax : matplotlib Axes, or a sequence of them for ``layout="side_by_side"``, optional
            Where to draw.  When None a new figure is made, with the count
            panel under each diagram; on given axes the counts go in an inset.
        layout : {"overlay", "side_by_side"}, default="overlay"
            Several models in one panel (outlined bars and markers) or one panel
            each (filled bars).
        hist : bool, default=True
            Draw the per-bin sample counts.
        gap : bool, optional
            Shade the gap between accuracy and mean confidence; default: on
            whenever a panel shows a single model.
        count_scale : {"auto", "log", "linear"}, default="auto"
            y scale of the count panel.  ``"auto"``: log for equal-width bins
            (top-label confidences pile up in the last bins, which hides the
            others on a linear scale), linear otherwise (equal-mass counts are equal).
        axis_labels : (str, str), optional
            x and y labels; the default depends on the view (e.g. "Confidence"
            and "Accuracy" for the top-label view).
        hist_ax : matplotlib Axes or a sequence of them, optional
            With ``ax`` given: where to draw the counts (one per panel) instead
            of an inset, e.g. a short axes under each diagram of a grid.

        Returns
        -------
        ReliabilityDisplay
            ``self``, with the artists stored as attributes.
        """
        check_option(layout, "layout", LAYOUTS)
        check_option(count_scale, "count_scale", ("auto", "log", "linear"))
        if count_scale == "auto":
            count_scale = "log" if self.settings.get("strategy") == "uniform" else "linear"
        self._count_scale = count_scale
        self._axis_labels = axis_labels
        n_models = len(self.tables)
        n_panels = n_models if layout == "side_by_side" else 1
        self.axes_, self.hist_axes_ = self._make_axes(ax, n_panels, hist, hist_ax)
        self.figure_ = self.axes_[0].figure
        self.ax_ = self.axes_[0]
        palette = colors(n_models)
        overlaid = n_panels == 1 and n_models > 1
        shade = (not overlaid) if gap is None else bool(gap)
        self.bars_, self.gap_bars_, self.count_bars_ = [], [], []
        self.smooth_lines_ = [None] * n_models
        self.smooth_bands_ = [None] * n_models
        for i, (table, label, err) in enumerate(zip(self.tables, self.names, self.errors,
                                                    strict=True)):
            panel = i if n_panels > 1 else 0
            edges = _drawn_edges(table, self.score_ranges and self.score_ranges[i])
            bars, gaps = _draw_bins(self.axes_[panel], table, edges, palette[i],
                                    f"{_short(label)} ({_metric_name(self.settings)} "
                                    f"{100 * err:.2f}%)",
                                    filled=not overlaid,
                                    shade=shade)
            self.bars_.append(bars)
            self.gap_bars_.append(gaps)
            if self.smooth is not None:
                self.smooth_lines_[i], self.smooth_bands_[i] = _draw_smooth(
                    self.axes_[panel], self.smooth[i], palette[i], overlaid)
            hax = self.hist_axes_[panel]
            self.count_bars_.append(None if hax is None else
                                    _draw_counts(hax, table, edges, palette[i],
                                                 filled=not overlaid))
        self.diagonal_ = [self._finish_panel(a, h, _short(self.names[i]) if n_panels > 1
                                             else None)
                          for i, (a, h) in enumerate(zip(self.axes_, self.hist_axes_,
                                                         strict=True))]
        return self

    def _make_axes(self, ax, n_panels: int, hist: bool, hist_ax=None):
        self._inset = ax is not None and hist_ax is None
        if ax is None:
            if hist_ax is not None:
                raise ValueError("hist_ax needs ax (the diagrams' axes) as well")
            _, axes, hist_axes = panel_grid(n_panels, hist)
            return axes, hist_axes
        axes = list(ax) if isinstance(ax, Sequence | np.ndarray) else [ax]
        if len(axes) != n_panels:
            raise ValueError(f"layout needs {n_panels} axes, got {len(axes)}")
        if hist_ax is not None and hist:
            hist_axes = list(hist_ax) if isinstance(hist_ax, Sequence | np.ndarray) else [
                hist_ax]
            if len(hist_axes) != len(axes):
                raise ValueError(f"hist_ax needs one axes per panel ({len(axes)}), got "
                                 f"{len(hist_axes)}")
            return axes, hist_axes
        return axes, [inset_hist_axes(a) if hist else None for a in axes]

    def _finish_panel(self, ax, hist_ax, title: str | None):
        s = self.settings
        xlabel, ylabel = self._axis_labels or _AXIS_LABELS.get(s.get("view", "top_label"),
                                                                _AXIS_LABELS["top_label"])
        (diagonal,) = ax.plot([0, 1], [0, 1], ls="--", color="0.35", lw=1,
                              label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=ylabel)
        bins = f"{s.get('n_bins', '?')} {s.get('strategy', '')} bins"
        ax.set_title(f"{title}, {bins}" if title else f"Reliability diagram, {bins}",
                     fontsize="medium")
        from matplotlib.collections import Collection

        handles, labels = ax.get_legend_handles_labels()

        def rank(h):  # bars and gaps, then curves, then bands, the diagonal last
            return 3 if h is diagonal else 2 if isinstance(h, Collection) else int(
                isinstance(h, type(diagonal)))

        order = sorted(range(len(handles)), key=lambda i: rank(handles[i]))
        ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left",
                  fontsize="small", framealpha=0.9)
        inset = hist_ax is not None and self._inset
        ax.grid(alpha=0.25)
        if hist_ax is None or inset:
            ax.set_xlabel(xlabel)
        if hist_ax is not None:
            hist_ax.set_yscale(self._count_scale)
        if inset:
            hist_ax.set_xlim(0, 1)
            hist_ax.set_ylabel("count", fontsize="x-small")
            hist_ax.tick_params(labelsize="x-small")
        elif hist_ax is not None:
            hist_ax.set(xlabel=xlabel, xlim=(0, 1),
                        ylabel="Count (log)" if self._count_scale == "log" else "Count")
            hist_ax.grid(alpha=0.25)
        return diagonal


def _short(name: str, width: int = 30) -> str:
    """``name`` cut to ``width`` characters (with an ellipsis) for titles and legends."""
    return name if len(name) <= width else name[:width - 1] + "\u2026"


def _metric_name(settings: dict) -> str:
    """ECE, RMSCE or MCE (debiased when so), from a result's settings."""
    name = {"l2": "RMSCE", "max": "MCE"}.get(settings.get("norm", "l1"), "ECE")
    return f"debiased {name}" if settings.get("debiased") else name


def _smooth_ece():
    try:
        from calkit.metrics.smooth import smooth_ece
    except ImportError as exc:  # pragma: no cover - only in builds without the module
        raise ImportError("smooth=True needs calkit.metrics.smooth") from exc
    return smooth_ece


def smooth_visible(result) -> np.ndarray:
    """Where a smooth reliability curve is drawn: enough data under the kernel.

    The kernel-weighted number of samples near ``x`` is about ``N density(x)
    sqrt(2 pi) sigma`` (``density`` averages 1 on [0, 1]); the curve and its band
    are drawn where that is at least ``SMOOTH_MIN_SAMPLES`` (3).  Elsewhere the
    kernel estimate rests on less than a few samples (or only on the regulariser).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.smooth import smooth_ece
    >>> from calkit.plotting.reliability import smooth_visible
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1, 300)                      # no score below 0.5
    >>> y = (rng.uniform(size=300) < p).astype(int)
    >>> r = smooth_ece(y, p, view="positive")
    >>> seen = smooth_visible(r)
    >>> seen.shape == r.grid.shape, round(float(r.grid[seen].min()), 2), bool(seen[-1])
    (True, 0.44, True)
    """
    density = np.asarray(to_numpy(result.density), dtype=np.float64)
    n = result.settings.get("n_samples", 0)
    return n * density * np.sqrt(2 * np.pi) * result.sigma >= SMOOTH_MIN_SAMPLES


def _draw_smooth(ax, result, color, overlaid: bool):
    """The smoothed reliability curve, labelled with its smooth ECE, and its band
    (clipped to [0, 1]) where :func:`smooth_visible`."""
    grid = np.asarray(to_numpy(result.grid), dtype=np.float64)
    curve = np.asarray(to_numpy(result.curve), dtype=np.float64)
    seen = smooth_visible(result)
    curve = np.where(seen, curve, np.nan)
    line_color = color if overlaid else "black"
    (line,) = ax.plot(grid, curve, color=line_color, lw=2, zorder=5,
                      label=f"smooth curve (smECE {100 * float(result):.2f}%)")
    band = None
    if getattr(result, "band", None) is not None:
        low, high = result.band
        level = 100 * result.settings.get("band", 0.95)
        band = ax.fill_between(grid, np.clip(low, 0, 1), np.clip(high, 0, 1), where=seen,
                               color=line_color, alpha=0.15,
                               lw=0, zorder=4, label=f"{level:g}% bootstrap band")
    return line, band


def _score_range(y_true, y_prob, view: str, sum_tol) -> tuple[float, float]:
    """Smallest and largest score of ``view`` (for drawing the outer bins)."""
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    ((scores, _),) = score_target_pairs(data, view)
    return float(scores.min()), float(scores.max())


def _drawn_edges(table: BinTable, score_range) -> np.ndarray:
    """The table's edges with the outer two pulled in to the observed score range."""
    edges = np.array(table.edges, dtype=np.float64)
    if score_range:
        lo, hi = score_range
        edges[0] = min(max(edges[0], lo), edges[1])
        edges[-1] = max(min(edges[-1], hi), edges[-2])
    return edges


def _draw_bins(ax, table: BinTable, edges, color, label: str, filled: bool, shade: bool):
    """Accuracy bars of the non-empty bins and, optionally, the shaded gap."""
    ok = table.nonempty
    left = edges[:-1][ok]
    width = np.diff(edges)[ok]
    acc, conf = table.mean_target[ok], table.mean_score[ok]
    if filled:
        bars = ax.bar(left, acc, width=width, align="edge", color=color, alpha=0.85,
                      edgecolor="white", linewidth=0.6, label=label, zorder=2)
        # a dot at (mean confidence, accuracy): narrow equal-mass bins stay visible
        ax.plot(conf, acc, "o", color="0.1", ms=2.5, zorder=4)
    else:
        bars = ax.bar(left, acc, width=width, align="edge", fill=False, edgecolor=color,
                      linewidth=1.6, label=label, zorder=3)
        ax.plot(conf, acc, "o-", color=color, ms=3.5, lw=1, zorder=4)
    gaps = None
    if shade:
        gaps = ax.bar(left, conf - acc, bottom=acc, width=width, align="edge",
                      color="tab:red", alpha=0.25, edgecolor="tab:red", hatch="//",
                      linewidth=0.5, label="gap to mean confidence", zorder=3)
    return bars, gaps


def _draw_counts(ax, table: BinTable, edges, color, filled: bool):
    """Sample count of every bin (empty bins drawn with height 0)."""
    left, width = edges[:-1], np.diff(edges)
    if filled:
        return ax.bar(left, table.count, width=width, align="edge", color=color, alpha=0.85,
                      edgecolor="white", linewidth=0.6)
    return ax.bar(left, table.count, width=width, align="edge", fill=False, edgecolor=color,
                  linewidth=1.4)

