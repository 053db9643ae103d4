"""Label-wise reliability diagrams of a multilabel model: one small panel per label.

Each panel is a :class:`~calkit.plotting.ReliabilityDisplay` panel of one label's
bin table from :func:`calkit.metrics.multilabel_calibration_error` (the positive
view of that column: ``p[:, l]`` against ``y[:, l]``), so every bar, gap and
count is the table the per-label ECE in the panel's legend was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calkit._array import to_numpy
from calkit.metrics.multilabel import _probabilities, multilabel_calibration_error
from calkit.plotting.reliability import ReliabilityDisplay

_AXIS_LABELS = ("Predicted probability of the label", "Fraction with the label")
_COUNT_LABELS = ("label present", "label absent")


def plot_multilabel_reliability(y_true, y_prob, *, logits: bool = False,
                                labels: Sequence[int] | None = None,
                                label_names: Sequence[str] | None = None,
                                max_panels: int = 20, n_worst: int = 12, n_bins: int = 10,
                                strategy: str = "uniform", closed: str = "right",
                                norm: str = "l1", sample_weight=None,
                                **plot_kw) -> ReliabilityDisplay:
    """Reliability diagrams of every label (or of the worst-calibrated ones) in a grid.

    Parameters
    ----------
    y_true : array of shape (N, L)
        0/1 label matrix.
    y_prob : array of shape (N, L)
        Per-label probabilities (or logits with ``logits=True``).
    logits : bool, default=False
        Read ``y_prob`` as per-label logits (sigmoid applied).
    labels : sequence of int, optional
        The labels (column indices) to draw, in this order.  Default: all of
        them when ``L <= max_panels``, else the ``n_worst`` labels of largest
        per-label error (worst first).
    label_names : sequence of str, optional
        Names of the ``L`` labels (default ``"label l"``).
    max_panels : int, default=20
    n_worst : int, default=12
    n_bins, strategy, closed, norm, sample_weight
        As in :func:`calkit.metrics.multilabel_calibration_error`.
    **plot_kw
        See :meth:`ReliabilityDisplay.plot` (default ``layout="grid"`` with 4 or 5
        columns, a linear confidence scale and one colour).

    Returns
    -------
    ReliabilityDisplay
        One panel per drawn label; ``labels_`` holds the label index of each
        panel and ``result_`` the per-label
        :class:`~calkit.metrics.MultilabelCalibrationResult`.

    Examples
    --------
    >>> import matplotlib
    >>> import numpy as np
    >>> matplotlib.use("Agg")
    >>> from calkit.plotting import plot_multilabel_reliability
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=(3000, 6))
    >>> y = (rng.uniform(size=(3000, 6)) < p ** np.arange(1, 7)).astype(int)
    >>> disp = plot_multilabel_reliability(y, p, n_worst=3, max_panels=4)
    >>> len(disp.axes_), disp.labels_                  # 6 labels > 4: the 3 worst
    (3, [5, 4, 3])
    >>> heights = [b.get_height() for b in disp.bars_[0]]
    >>> t = disp.result_.tables[5]
    >>> bool(np.allclose(heights, t.mean_target[t.nonempty]))
    True
    >>> matplotlib.pyplot.close(disp.figure_)
    """
    result = multilabel_calibration_error(y_true, y_prob, logits=logits, n_bins=n_bins,
                                          strategy=strategy, norm=norm, average=None,
                                          closed=closed, sample_weight=sample_weight)
    errors = np.asarray(to_numpy(result.per_label), dtype=np.float64)
    n_labels = int(errors.shape[0])
    if labels is None:
        if n_labels <= max_panels:
            chosen = list(range(n_labels))
        else:
            chosen = [int(j) for j in np.argsort(-errors, kind="stable")[:n_worst]]
    else:
        chosen = [int(j) for j in labels]
        bad = [j for j in chosen if not 0 <= j < n_labels]
        if bad or not chosen:
            raise ValueError(f"labels must be non-empty indices in [0, {n_labels}), got "
                             f"{list(labels)}")
    if label_names is not None and len(label_names) != n_labels:
        raise ValueError(f"label_names needs {n_labels} names, got {len(label_names)}")
    names = [str(label_names[j]) if label_names is not None else f"label {j}"
             for j in chosen]
    p = np.asarray(to_numpy(_probabilities(_as_float(y_prob), logits)), dtype=np.float64)
    ranges = [(float(p[:, j].min()), float(p[:, j].max())) for j in chosen]
    display = ReliabilityDisplay([result.tables[j] for j in chosen], names,
                                 errors[chosen].tolist(), dict(result.settings),
                                 score_ranges=ranges,
                                 share_above=max(float(np.mean(p[:, j] > 0.99))
                                                 for j in chosen))
    display.labels_ = chosen
    display.result_ = result
    plot_kw.setdefault("layout", "grid")
    plot_kw.setdefault("ncols", min(len(chosen), 5 if len(chosen) > 16 else 4))
    plot_kw.setdefault("confidence_scale", "linear")
    plot_kw.setdefault("color", "tab:blue")
    plot_kw.setdefault("axis_labels", _AXIS_LABELS)
    plot_kw.setdefault("count_labels", _COUNT_LABELS)
    if len(chosen) < n_labels:
        plot_kw.setdefault("title", f"the {len(chosen)} worst of {n_labels} labels by "
                                    "per-label calibration error")
    return display.plot(**plot_kw)


def _as_float(y_prob):
    """``y_prob`` as an array (already validated by the metric above)."""
    if hasattr(y_prob, "to_numpy"):
        return y_prob.to_numpy()
    return y_prob if hasattr(y_prob, "shape") else np.asarray(y_prob)
