"""Confidence histograms: how many predictions fall at each confidence, right and wrong.

The bars are the engine's bin table of top-label confidence against correctness:
a bin's correct count is its ``sum_target`` and its wrong count ``count -
sum_target``, so no second histogram is computed.

Nothing is hidden: each bin gets two bars side by side (correct on the left
half of the bin as drawn, wrong on the right half), not a stack in which a
few wrong answers on top of many right ones would be a sliver.  On a log axis
the bars start at 0.5, so a bin with a single sample is a visible bar; on a
linear axis a bar shorter than 1.5% of the axis gets a marker on top.
``counts=True`` prints every non-zero count above its bar.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calkit._validation import check_classification, check_n_bins, check_option
from calkit.binning import BinTable, _bin_table, resolve_n_bins
from calkit.plotting import _scale
from calkit.plotting._axes import colors, panel_grid

__all__ = ["ConfidenceHistogramDisplay"]

COUNT_SCALES = ("auto", "log", "linear")
LOG_FLOOR = 0.5  # log-axis bars start here: a count of 1 stays a visible bar
MARKER_BELOW = 0.04  # linear axes: bars shorter than this share of the axis get a marker


def resolve_count_scale(count_scale: str, table: BinTable) -> str:
    """``"auto"``: log when one bin holds more than half of the samples, else linear."""
    check_option(count_scale, "count_scale", COUNT_SCALES)
    if count_scale != "auto":
        return count_scale
    count = np.asarray(table.count)
    return "log" if count.max() > table.n_samples / 2 else "linear"


def _pair_positions(edges, scale: str, centres, max_width):
    """Left ends, meeting points and right ends of each bin's two count bars (data units).

    Without ``centres`` the bars tile the bin, split at its midpoint as drawn on ``scale``.
    With them (the bins' mean scores) and ``max_width`` (in scale units), a bin wider than
    ``max_width`` gets a pair ``max_width`` wide around its mean score, kept inside the
    bin: on a zoomed axis a wide bin's wrong answers are not drawn at confidences nobody
    predicted.
    """
    forward, inverse = _scale.FUNCTIONS[scale]
    u = forward(edges)
    ua, ub = u[:-1], u[1:]
    if centres is None or max_width is None:
        return edges[:-1], _scale.midpoints(scale, edges), edges[1:]
    width = np.minimum(ub - ua, max_width)
    c = forward(np.asarray(centres, dtype=np.float64))
    c = np.where(np.isfinite(c), c, (ua + ub) / 2)
    c = np.clip(c, ua + width / 2, ub - width / 2)
    left = np.where(width < ub - ua, inverse(c - width / 2), edges[:-1])
    right = np.where(width < ub - ua, inverse(c + width / 2), edges[1:])
    return left, inverse(c), right


def draw_split_counts(ax, edges, positive, negative, *, scale: str = "linear",
                      count_scale: str = "linear", labels=("correct", "wrong"),
                      colors_=("tab:blue", "0.55"), counts: bool = False, centres=None,
                      max_width: float | None = None):
    """Two bars per bin, side by side: ``positive`` counts left, ``negative`` right.

    Each bin ``[a, b]`` is split at its midpoint *as drawn on* ``scale``, so both
    halves have the same width on screen; with ``centres`` and ``max_width``
    (see :func:`_pair_positions`) wide bins get a narrower pair at their mean
    score.  Returns ``(positive_bars, negative_bars, markers)``; ``markers`` is
    the Line2D of the small-bar markers (None when there are none).
    """
    edges = np.asarray(edges, dtype=np.float64)
    start, mid, stop = _pair_positions(edges, scale, centres, max_width)
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    log = count_scale == "log"
    bottom = LOG_FLOOR if log else 0.0
    # on a log axis a bar of height h from 0.5 ends at 0.5 + h: draw it to the count instead
    pos_h = np.where(pos > 0, pos - bottom, 0.0)
    neg_h = np.where(neg > 0, neg - bottom, 0.0)
    pos_bars = ax.bar(start, pos_h, width=mid - start, bottom=bottom, align="edge",
                      color=colors_[0], edgecolor="white", linewidth=0.4, label=labels[0])
    neg_bars = ax.bar(mid, neg_h, width=stop - mid, bottom=bottom, align="edge",
                      color=colors_[1], edgecolor="white", linewidth=0.4, label=labels[1])
    top = max(float(pos.max(initial=0)), float(neg.max(initial=0)), 1.0)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(LOG_FLOOR, top * 2.5 if counts else top * 1.6)
    else:
        ax.set_ylim(0, top * (1.18 if counts else 1.05))
    markers = None
    if not log:
        small_x, small_y = [], []
        for left, right, value in ((start, mid, pos), (mid, stop, neg)):
            centre = _scale.midpoints(scale, np.c_[left, right].ravel())[::2]
            tiny = (value > 0) & (value < MARKER_BELOW * top)
            small_x += centre[tiny].tolist()
            small_y += value[tiny].tolist()
        if small_x:
            (markers,) = ax.plot(small_x, small_y, "v", color="0.15", ms=3.5,
                                 linestyle="none", zorder=4)
    if counts:
        for left, right, value in ((start, mid, pos), (mid, stop, neg)):
            centre = _scale.midpoints(scale, np.c_[left, right].ravel())[::2]
            for x, v in zip(centre, value, strict=True):
                if v > 0:
                    ax.annotate(f"{int(v)}", (x, v), xytext=(0, 1.5), textcoords="offset points",
                                ha="center", va="bottom", fontsize=5.5, rotation=90)
    return pos_bars, neg_bars, markers


class ConfidenceHistogramDisplay:
    """Histogram of top-label confidence, correct and wrong predictions side by side.

    Vertical lines mark the accuracy and the mean confidence (their distance is
    the over-confidence of Guo et al. 2017, Fig. 1).

    Attributes
    ----------
    tables : tuple of BinTable
        Per model, the uniform bin table of confidence against correctness.
    table : BinTable
        ``tables[0]``.
    accuracy, mean_confidence : tuple of float
    correct_bars_, wrong_bars_ : list of BarContainer
        Per model; bar ``j`` spans the left (correct) or right (wrong) half of
        bin ``j`` and reaches its count.
    markers_ : list of Line2D or None
        Per model, the markers over bars too short to see (linear axes).
    axes_, ax_, figure_
        The panels (one per model) and the figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.plotting import ConfidenceHistogramDisplay
    >>> logits, labels = load_example()
    >>> disp = ConfidenceHistogramDisplay.from_predictions(labels, softmax(logits), n_bins=20)
    >>> tops = [b.get_y() + b.get_height() for b in disp.correct_bars_[0] if b.get_height()]
    >>> int(sum(tops)) == int((logits.argmax(1) == labels).sum())
    True
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, tables, names, accuracy, mean_confidence):
        self.tables = tuple(t.to_numpy() for t in tables)
        self.names = tuple(names)
        self.accuracy = tuple(float(a) for a in accuracy)
        self.mean_confidence = tuple(float(c) for c in mean_confidence)

    @property
    def table(self) -> BinTable:
        return self.tables[0]

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins: int | str = 20, name: str | None = None,
                         ax=None, count_scale: str = "auto", counts: bool = False,
                         sum_tol: float | None = None) -> ConfidenceHistogramDisplay:
        """Bin the top-label confidence of one model, or of several (a mapping name -> probs).

        Parameters
        ----------
        y_true : array of shape (N,)
        y_prob : array of shape (N, K) or (N,), or mapping name -> array
        n_bins : int or str, default=20
            Equal-width bins on [0, 1], or a bin-count rule of the number of
            rows (``"sqrt"``, ``"sturges"``...: :func:`calkit.binning.resolve_n_bins`).
        name : str, optional
        ax : Axes or sequence of Axes (one per model), optional
        count_scale : {"auto", "log", "linear"}, default="auto"
            See :meth:`plot`.
        counts : bool, default=False
            Print each non-zero count above its bar.
        sum_tol : float, optional
            Row-sum tolerance of ``y_prob``.

        Returns
        -------
        ConfidenceHistogramDisplay
        """
        probs = dict(y_prob) if isinstance(y_prob, Mapping) else {name or "model": y_prob}
        tables, acc, conf = [], [], []
        for p in probs.values():
            data = check_classification(y_true, p, sum_tol=sum_tol)
            bins = (resolve_n_bins(n_bins, data.n_samples)[0] if isinstance(n_bins, str)
                    else check_n_bins(n_bins))
            table = _bin_table(data.confidence, data.correct, bins, "uniform", "right")
            tables.append(table)
            acc.append(float(table.sum_target.sum()) / table.n_samples)
            conf.append(float(table.sum_score.sum()) / table.n_samples)
        return cls(tables, list(probs), acc, conf).plot(ax=ax, count_scale=count_scale,
                                                          counts=counts)

    def plot(self, ax=None, *, count_scale: str = "auto",
             counts: bool = False) -> ConfidenceHistogramDisplay:
        """Draw one panel per model; returns ``self``.

        ``count_scale="auto"`` uses a log y axis when one bin holds more than half
        of a model's samples (a confident classifier, whose other bins would be
        invisible on a linear axis).  ``counts=True`` prints the counts.
        """
        check_option(count_scale, "count_scale", COUNT_SCALES)
        n = len(self.tables)
        if ax is None:
            _, axes, _ = panel_grid(n, with_hist=False, panel_size=(5.2, 3.4))
        else:
            axes = list(ax) if isinstance(ax, list | tuple | np.ndarray) else [ax]
            if len(axes) != n:
                raise ValueError(f"{n} models need {n} axes, got {len(axes)}")
        self.axes_, self.ax_, self.figure_ = axes, axes[0], axes[0].figure
        self.correct_bars_, self.wrong_bars_, self.markers_ = [], [], []
        for a, t, name, acc, conf, color in zip(axes, self.tables, self.names, self.accuracy,
                                                 self.mean_confidence, colors(n), strict=True):
            scale = resolve_count_scale(count_scale, t)
            right, wrong, markers = draw_split_counts(
                a, t.edges, t.sum_target, t.count - t.sum_target, count_scale=scale,
                colors_=(color, "0.6"), counts=counts)
            self.correct_bars_.append(right)
            self.wrong_bars_.append(wrong)
            self.markers_.append(markers)
            a.axvline(acc, color="black", ls="--", lw=1.2, label=f"accuracy {acc:.3f}")
            a.axvline(conf, color="tab:red", ls=":", lw=1.5, label=f"mean confidence {conf:.3f}")
            a.set(xlim=(0, 1), xlabel="Confidence (top-label probability)",
                  ylabel="Number of samples (log)" if scale == "log" else "Number of samples",
                  title=name)
            a.legend(loc="upper left", fontsize="small", framealpha=0.9)
            a.grid(alpha=0.25)
        return self
