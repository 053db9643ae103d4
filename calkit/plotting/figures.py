"""The standard figures of an evaluation, in one call (what ``calkit evaluate`` saves).

:func:`evaluation_figures` draws, for one model or several, the reliability
diagrams under equal-width and equal-mass bins and, for a single model with
class probabilities, the confidence histogram and the risk-coverage curve.  It
returns the figures by file name; saving (and closing) them is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping

from calkit._validation import check_option
from calkit.binning import STRATEGIES
from calkit.plotting.curves import RiskCoverageDisplay
from calkit.plotting.histogram import ConfidenceHistogramDisplay
from calkit.plotting.reliability import ReliabilityDisplay

__all__ = ["evaluation_figures"]


def evaluation_figures(y_true, y_prob, *, n_bins: int = 15,
                       strategies: tuple[str, ...] = ("uniform", "quantile"),
                       view: str | None = None, smooth: bool = True,
                       interval: str | None = None, consistency_band: bool = False,
                       confidence: float = 0.95, n_resamples: int = 1000, random_state=0,
                       confidence_scale: str = "auto", count_scale: str = "auto",
                       counts: bool = False, axis_labels: tuple[str, str] | None = None,
                       count_labels: tuple[str, str] | None = None, curves: bool = True,
                       sum_tol: float | None = None) -> dict:
    """Reliability diagrams (and, for one model, histogram and risk-coverage) by file name.

    Parameters
    ----------
    y_true : array of shape (N,), or mapping name -> array
        Labels, shared or one per model (see
        :meth:`ReliabilityDisplay.from_predictions`).
    y_prob : array of shape (N, K) or (N,), or mapping name -> array
        One model, or several to compare (side by side up to three, else a grid).
    n_bins : int, default=15
    strategies : tuple of {"uniform", "quantile"}, default=("uniform", "quantile")
        One reliability figure per strategy, ``reliability_<strategy>.png``.
    view : {"top_label", "positive", "confidence"}, optional
        As in :meth:`ReliabilityDisplay.from_predictions` (needed for 1-D scores).
    smooth : bool, default=True
        Draw the smooth-ECE curve and its bootstrap band.
    interval : {"wilson", "clopper-pearson"} or None, default=None
        Per-bin intervals on the accuracy.
    consistency_band : bool, default=False
        Consistency bands (``n_resamples`` resamples seeded by ``random_state``).
    confidence : float, default=0.95
        Level of the intervals and bands.
    n_resamples : int, default=1000
    random_state : None, int or numpy.random.Generator, default=0
    confidence_scale : {"auto", "linear", "logit", "-log(1-p)", "error-rate"}, default="auto"
    count_scale : {"auto", "log", "linear"}, default="auto"
    counts : bool, default=False
        Print the counts in the count panels.
    axis_labels, count_labels : pairs of str, optional
        As in :meth:`ReliabilityDisplay.plot`.
    curves : bool, default=True
        With a single top-label model: also ``confidence_histogram.png`` and
        ``risk_coverage.png``.
    sum_tol : float, optional

    Returns
    -------
    dict
        File name -> matplotlib Figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.plotting import evaluation_figures
    >>> logits, labels = load_example()
    >>> figures = evaluation_figures(labels, softmax(logits), interval="wilson", smooth=False)
    >>> sorted(figures)
    ['confidence_histogram.png', 'reliability_quantile.png', 'reliability_uniform.png', \
'risk_coverage.png']
    >>> for fig in figures.values():
    ...     plt.close(fig)
    """
    for strategy in strategies:
        check_option(strategy, "strategies", STRATEGIES)
    several = isinstance(y_prob, Mapping) and len(y_prob) > 1
    plot_kw = dict(interval=interval, confidence_scale=confidence_scale,
                   count_scale=count_scale, counts=counts, axis_labels=axis_labels,
                   count_labels=count_labels)
    if several:
        plot_kw["layout"] = "side_by_side" if len(y_prob) <= 3 else "grid"
    figures = {}
    for strategy in strategies:
        display = ReliabilityDisplay.from_predictions(
            y_true, y_prob, n_bins=n_bins, strategy=strategy, view=view, smooth=smooth,
            consistency_band=consistency_band, confidence=confidence, n_resamples=n_resamples,
            random_state=random_state, sum_tol=sum_tol, **plot_kw)
        figures[f"reliability_{strategy}.png"] = display.figure_
    if curves and not several and view in (None, "top_label"):
        labels = next(iter(y_true.values())) if isinstance(y_true, Mapping) else y_true
        probs = next(iter(y_prob.values())) if isinstance(y_prob, Mapping) else y_prob
        name = next(iter(y_prob)) if isinstance(y_prob, Mapping) else None
        figures["confidence_histogram.png"] = ConfidenceHistogramDisplay.from_predictions(
            labels, probs, name=name, count_scale=count_scale, counts=counts,
            sum_tol=sum_tol).figure_
        figures["risk_coverage.png"] = RiskCoverageDisplay.from_predictions(
            labels, probs, name=name, sum_tol=sum_tol).figure_
    return figures
