"""Confidence histograms: how many predictions fall at each confidence, right and wrong.

The bars are the engine's bin table of top-label confidence against correctness:
a bin's correct count is its ``sum_target`` and its wrong count ``count -
sum_target``, so no second histogram is computed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calkit._validation import check_classification, check_option
from calkit.binning import _bin_table
from calkit.plotting._axes import colors, panel_grid


class ConfidenceHistogramDisplay:
    """Histogram of top-label confidence, split into correct and wrong predictions.

    Vertical lines mark the accuracy and the mean confidence (their distance is
    the over-confidence of Guo et al. 2017, Fig. 1).

    Attributes
    ----------
    tables : tuple of BinTable
        Per model, the uniform bin table of confidence against correctness.
    accuracy, mean_confidence : tuple of float
    correct_bars_, wrong_bars_ : list of BarContainer
        Per model; heights are the correct and wrong counts of every bin.
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
    >>> n_right = sum(b.get_height() for b in disp.correct_bars_[0])
    >>> int(n_right) == int((logits.argmax(1) == labels).sum())
    True
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, tables, names, accuracy, mean_confidence):
        self.tables = tuple(t.to_numpy() for t in tables)
        self.names = tuple(names)
        self.accuracy = tuple(float(a) for a in accuracy)
        self.mean_confidence = tuple(float(c) for c in mean_confidence)

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins: int = 20, name: str | None = None,
                         ax=None, count_scale: str = "auto",
                         sum_tol: float | None = None) -> ConfidenceHistogramDisplay:
        """Bin the top-label confidence of one model, or of several (a mapping name -> probs).

        Parameters
        ----------
        y_true : array of shape (N,)
        y_prob : array of shape (N, K) or (N,), or mapping name -> array
        n_bins : int, default=20
            Equal-width bins on [0, 1].
        name : str, optional
        ax : Axes or sequence of Axes (one per model), optional
        count_scale : {"auto", "log", "linear"}, default="auto"
            See :meth:`plot`.

        Returns
        -------
        ConfidenceHistogramDisplay
        """
        probs = dict(y_prob) if isinstance(y_prob, Mapping) else {name or "model": y_prob}
        tables, acc, conf = [], [], []
        for p in probs.values():
            data = check_classification(y_true, p, sum_tol=sum_tol)
            table = _bin_table(data.confidence, data.correct, n_bins, "uniform", "right")
            tables.append(table)
            acc.append(float(table.sum_target.sum()) / table.n_samples)
            conf.append(float(table.sum_score.sum()) / table.n_samples)
        return cls(tables, list(probs), acc, conf).plot(ax=ax, count_scale=count_scale)

    def plot(self, ax=None, *, count_scale: str = "auto") -> ConfidenceHistogramDisplay:
        """Draw one panel per model; returns ``self``.

        ``count_scale="auto"`` uses a log y axis when one bin holds more than half
        of a model's samples (a confident classifier, whose other bins would be
        invisible on a linear axis); the stacked correct/wrong split is then
        read from the bar tops.
        """
        check_option(count_scale, "count_scale", ("auto", "log", "linear"))
        n = len(self.tables)
        if ax is None:
            _, axes, _ = panel_grid(n, with_hist=False, panel_size=(4.6, 3.4))
        else:
            axes = list(ax) if isinstance(ax, list | tuple | np.ndarray) else [ax]
            if len(axes) != n:
                raise ValueError(f"{n} models need {n} axes, got {len(axes)}")
        self.axes_, self.ax_, self.figure_ = axes, axes[0], axes[0].figure
        self.correct_bars_, self.wrong_bars_ = [], []
        for a, t, name, acc, conf, color in zip(axes, self.tables, self.names, self.accuracy,
                                                 self.mean_confidence, colors(n), strict=True):
            left, width = t.edges[:-1], np.diff(t.edges)
            right = t.sum_target
            self.correct_bars_.append(a.bar(left, right, width, align="edge", color=color,
                                            edgecolor="white", lw=0.5, label="correct"))
            self.wrong_bars_.append(a.bar(left, t.count - right, width, bottom=right,
                                          align="edge", color="0.7", edgecolor="white", lw=0.5,
                                          label="wrong"))
            a.axvline(acc, color="black", ls="--", lw=1.2, label=f"accuracy {acc:.3f}")
            a.axvline(conf, color="tab:red", ls=":", lw=1.5, label=f"mean confidence {conf:.3f}")
            log = count_scale == "log" or (count_scale == "auto"
                                           and t.count.max() > t.n_samples / 2)
            if log:
                a.set_yscale("log")
            a.set(xlim=(0, 1), xlabel="Confidence (top-label probability)",
                  ylabel="Number of samples (log)" if log else "Number of samples", title=name)
            a.legend(loc="upper left", fontsize="small")
            a.grid(alpha=0.25)
        return self
