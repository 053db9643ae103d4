"""Cumulative calibration curves (Gupta et al. 2021): the picture behind the KS error.

Scores are sorted; the cumulative mean score and the cumulative accuracy are
drawn against the share of samples.  For a calibrated model the two curves lie
on each other; the KS calibration error
(:func:`calkit.metrics.ks_calibration_error`) is their largest vertical gap,
marked on the plot.  Unlike a reliability diagram there are no bins to choose.
"""

from __future__ import annotations

import numpy as np

from calkit.metrics.cumulative import KSCalibrationResult, ks_calibration_error
from calkit.plotting._axes import pyplot


class CumulativeCalibrationDisplay:
    """Cumulative score and accuracy curves with the KS gap marked.

    Parameters
    ----------
    result : KSCalibrationResult
        From :func:`calkit.metrics.ks_calibration_error` (its first curve is drawn).
    name : str, optional
        Legend label of the model.

    Attributes
    ----------
    ax_, figure_ : matplotlib axes and figure (after :meth:`plot`)
    lines_ : dict of the drawn lines (``"score"``, ``"accuracy"``, ``"ks"``)

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit.plotting import CumulativeCalibrationDisplay
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=500)
    >>> y = (rng.uniform(size=500) < p ** 2).astype(int)
    >>> disp = CumulativeCalibrationDisplay.from_predictions(y, p, view="positive")
    >>> round(disp.result.value, 3), sorted(disp.lines_)
    (0.163, ['accuracy', 'ks', 'score'])
    """

    def __init__(self, result: KSCalibrationResult, *, name: str | None = None):
        self.result = result
        self.name = name

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, view: str | None = None, name: str | None = None,
                         ax=None) -> CumulativeCalibrationDisplay:
        """Compute the KS error of ``(y_true, y_prob)`` and draw its curves."""
        return cls(ks_calibration_error(y_true, y_prob, view=view), name=name).plot(ax=ax)

    def plot(self, ax=None) -> CumulativeCalibrationDisplay:
        """Draw on ``ax`` (a new figure when None); returns ``self``."""
        plt = pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4.2))
        curve = self.result.curves[0]
        x = np.r_[0.0, curve["fraction"]]
        score, acc = np.r_[0.0, curve["cum_score"]], np.r_[0.0, curve["cum_target"]]
        label = f"{self.name}: " if self.name else ""
        self.lines_ = {
            "score": ax.plot(x, score, label=f"{label}cumulative score")[0],
            "accuracy": ax.plot(x, acc, label=f"{label}cumulative accuracy")[0],
        }
        i = int(np.argmax(np.abs(score - acc)))
        self.lines_["ks"] = ax.plot([x[i], x[i]], [score[i], acc[i]], color="black", lw=2,
                                    label=f"KS = {self.result.value:.4f}")[0]
        ax.set_xlabel("share of samples (sorted by score)")
        ax.set_ylabel("cumulative sum / N")
        ax.set_xlim(0, 1)
        ax.legend(loc="upper left", frameon=False)
        self.ax_, self.figure_ = ax, ax.figure
        return self
