"""Curves of confidence scores: OOD ROC curves and selective-classification risk-coverage curves.

The points come from the metric modules (:mod:`calkit.metrics.ood`,
:mod:`calkit.metrics.selective`): one point per distinct score value, so tied
scores move together and the curves depend only on the data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calkit.metrics.ood import _check_scores_1d, _roc_points, ood_metrics
from calkit.metrics.selective import risk_coverage
from calkit.plotting._axes import colors, pyplot


def roc_points(score_in, score_out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of in-distribution (positive) against OOD samples, higher score = more ID.

    Returns ``(fpr, tpr, thresholds)`` with a leading ``(0, 0)`` point; a
    threshold ``t`` accepts scores ``>= t``.  The points are those
    :func:`calkit.metrics.ood.ood_metrics` integrates (ties grouped), which
    equal ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Examples
    --------
    >>> from calkit.plotting.curves import roc_points
    >>> fpr, tpr, _ = roc_points([0.9, 0.8, 0.4], [0.7, 0.4, 0.1])
    >>> fpr.round(3).tolist(), tpr.round(3).tolist()
    ([0.0, 0.0, 0.0, 0.333, 0.667, 1.0], [0.0, 0.333, 0.667, 0.667, 1.0, 1.0])
    """
    s_in = _check_scores_1d(score_in, "score_in")
    s_out = _check_scores_1d(score_out, "score_out")
    thresholds, tp, fp = _roc_points(s_in, s_out)
    return np.r_[0.0, fp / len(s_out)], np.r_[0.0, tp / len(s_in)], np.r_[np.inf, thresholds]


class OODRocDisplay:
    """ROC curves of OOD detection scores (in-distribution is the positive class).

    Attributes
    ----------
    fpr, tpr : tuple of arrays
    metrics : tuple of OODResult
        :func:`calkit.metrics.ood.ood_metrics` of each score (AUROC, AUPR,
        FPR at 95% TPR), shown in the legend.
    lines_ : list of Line2D
    ax_, figure_

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit.plotting import OODRocDisplay
    >>> disp = OODRocDisplay.from_scores([0.9, 0.8, 0.4], [0.7, 0.4, 0.1], name="MSP")
    >>> round(disp.metrics[0].auroc, 4)
    0.8333
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, fpr, tpr, metrics, names):
        self.fpr, self.tpr = tuple(fpr), tuple(tpr)
        self.metrics, self.names = tuple(metrics), tuple(names)

    @classmethod
    def from_scores(cls, score_in, score_out=None, *, name: str | None = None,
                    ax=None) -> OODRocDisplay:
        """ROC of ``score_in`` (ID samples) against ``score_out`` (OOD samples).

        Pass a mapping ``name -> (score_in, score_out)`` as ``score_in`` to
        compare several scores.  Higher scores must mean "more in-distribution"
        (e.g. max softmax probability, negative energy).
        """
        pairs = dict(score_in) if isinstance(score_in, Mapping) else {
            name or "score": (score_in, score_out)}
        curves = [roc_points(i, o) for i, o in pairs.values()]
        metrics = [ood_metrics(i, o) for i, o in pairs.values()]
        return cls([c[0] for c in curves], [c[1] for c in curves], metrics,
                   list(pairs)).plot(ax=ax)

    def plot(self, ax=None) -> OODRocDisplay:
        """Draw the curves and the chance diagonal; returns ``self``."""
        if ax is None:
            _, ax = pyplot().subplots(figsize=(4.8, 4.6), layout="constrained")
        self.ax_, self.figure_ = ax, ax.figure
        self.lines_ = []
        for f, t, name, m, color in zip(self.fpr, self.tpr, self.names, self.metrics,
                                        colors(len(self.names)), strict=True):
            tpr = 100 * m.settings["tpr"]
            (line,) = ax.plot(f, t, color=color, lw=1.8,
                              label=f"{name}\nAUROC {m.auroc:.3f}, FPR@{tpr:g} {m.fpr_at_tpr:.3f}")
            self.lines_.append(line)
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate (OOD accepted)",
               ylabel="True positive rate (ID accepted)", title="OOD detection ROC")
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(alpha=0.25)
        return self


class RiskCoverageDisplay:
    """Risk-coverage curves of selective classification by confidence.

    The curves, AURC and E-AURC come from
    :func:`calkit.metrics.selective.risk_coverage` (one point per distinct
    confidence; ties never depend on sample order).

    Attributes
    ----------
    results : tuple of RiskCoverage
    lines_ : list of Line2D
    ax_, figure_

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.plotting import RiskCoverageDisplay
    >>> logits, labels = load_example()
    >>> disp = RiskCoverageDisplay.from_predictions(labels, softmax(logits))
    >>> float(disp.lines_[0].get_ydata()[-1]) == float((logits.argmax(1) != labels).mean())
    True
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, results, names):
        self.results, self.names = tuple(results), tuple(names)

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, name: str | None = None, ax=None,
                         sum_tol: float | None = None) -> RiskCoverageDisplay:
        """Curves of one model, or several (``y_prob`` a mapping name -> probs)."""
        probs = dict(y_prob) if isinstance(y_prob, Mapping) else {name or "model": y_prob}
        results = [risk_coverage(y_true, p, sum_tol=sum_tol) for p in probs.values()]
        return cls(results, list(probs)).plot(ax=ax)

    def plot(self, ax=None) -> RiskCoverageDisplay:
        """Draw the curves (risk at each distinct confidence threshold); returns ``self``."""
        if ax is None:
            _, ax = pyplot().subplots(figsize=(4.8, 4.2), layout="constrained")
        self.ax_, self.figure_ = ax, ax.figure
        self.lines_ = []
        for r, name, color in zip(self.results, self.names, colors(len(self.names)),
                                  strict=True):
            (line,) = ax.plot(r.coverage, r.risk, color=color, lw=1.8,
                              label=f"{name}\nAURC {r.aurc:.4f}, E-AURC {r.eaurc:.4f}")
            self.lines_.append(line)
        ax.set(xlim=(0, 1), ylim=(0, None), xlabel="Coverage (share of predictions kept)",
               ylabel="Risk (error rate of kept predictions)", title="Risk-coverage")
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(alpha=0.25)
        return self
