"""Histogram binning (Zadrozny & Elkan 2001), on calkit's binning engine.

The scores are binned with :func:`calkit.binning.bin_table` and every score in
a bin is mapped to the bin's observed frequency of positives.  Equal-mass bins
(``strategy="quantile"``, the default, as in Gupta & Ramdas's top-label
histogram binning) are never empty; an empty equal-width bin maps to its own
midpoint.  New scores are binned with :func:`calkit.binning.assign_bins` under
the same ``closed`` convention.  Multiclass logits are reduced as described in
:mod:`calkit.posthoc._score_map`; a 1-D ``X`` is one probability (or confidence)
in ``[0, 1]`` per sample.  ``sample_weight`` gives weighted bins and bin
frequencies (:func:`calkit.binning.bin_table`).
"""

from __future__ import annotations

import numpy as np

from calkit._validation import check_n_bins, check_option
from calkit.binning import CLOSED, STRATEGIES, assign_bins, bin_table
from calkit.posthoc._score_map import _ScoreMapCalibrator


class HistogramBinning(_ScoreMapCalibrator):
    """Histogram binning: each score becomes the accuracy of its bin.

    Parameters
    ----------
    n_bins : int, default=15
        Number of bins (at most the number of calibration samples).
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-mass or equal-width bins (:func:`calkit.binning.bin_table`).
    closed : {"right", "left"}, default="right"
        Bin edge convention, ``(a, b]`` or ``[a, b)``.
    multiclass : {"top_label", "one_vs_rest"}, default="top_label"
        How ``(N, K)`` logits are reduced to scores (see
        :mod:`calkit.posthoc._score_map`).
    floor : float, default=1e-12
        Least probability given to any class (in ``[0, 1/K)``; see
        :mod:`calkit.posthoc._score_map`).
    ts_weight : float or "auto", default="auto"
        Weight ``a`` of temperature scaling in the output, ``(1 - a) map + a
        softmax(X / T)`` (both floored; (N, K) logits only).  ``"auto"`` chooses
        it by 5-fold out-of-fold NLL (:mod:`calkit.posthoc._score_map`), so the
        output's cross-validated log-loss is never above the input's; ``0`` is
        the map alone (the published estimator).

    Attributes
    ----------
    nodes_x_, nodes_y_, offsets_ : ndarray
        Bin edges and bin values of each map, concatenated.
    n_classes_ : int
    ts_weight_ : float
        The weight ``a`` used (0 for 1-D scores).
    temperature_ : float
        Temperature ``T`` of the mixed-in softmax (1.0 when ``ts_weight=0``).
    cv_nll_ : dict
        Out-of-fold NLL of the ``"map"``, of temperature scaling on the fitting
        data (``"reference"``) and of the chosen ``"mixture"`` behind
        ``ts_weight="auto"`` (empty otherwise).
    accuracy_change_ : float
        Accuracy change on the fitting data (0 for ``"top_label"``, which never
        changes the predicted class; one-vs-rest may).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc.histogram import HistogramBinning
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(3000, 3)) * 3
    >>> y = np.where(rng.random(3000) < 0.6, z.argmax(1), rng.integers(0, 3, 3000))
    >>> hb = HistogramBinning(n_bins=10).fit(z, y)
    >>> hb.predict_proba(z[:4]).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    _extra_x_nodes = 1  # bin edges, one more than the bin values

    def __init__(self, n_bins: int = 15, strategy: str = "quantile", closed: str = "right",
                 multiclass: str = "top_label", floor: float = 1e-12, ts_weight="auto"):
        self.n_bins = n_bins
        self.strategy = strategy
        self.closed = closed
        self.multiclass = multiclass
        self.floor = floor
        self.ts_weight = ts_weight

    def _check_params(self) -> None:
        super()._check_params()
        check_n_bins(self.n_bins)
        check_option(self.strategy, "strategy", STRATEGIES)
        check_option(self.closed, "closed", CLOSED)

    def _fit_map(self, scores, targets, sample_weight=None):
        if len(scores) < self.n_bins:
            raise ValueError(f"n_bins={self.n_bins} is more than the number of samples: "
                             f"got {len(scores)} sample{'s' if len(scores) != 1 else ''}; "
                             "use fewer bins")
        table = bin_table(scores, targets, n_bins=self.n_bins, strategy=self.strategy,
                          closed=self.closed, sample_weight=sample_weight)
        edges = np.asarray(table.edges, dtype=np.float64)
        midpoints = (edges[:-1] + edges[1:]) / 2
        values = np.where(table.nonempty, table.mean_target, midpoints)
        return edges, values

    def _apply_map(self, x, y, scores):
        return y[assign_bins(scores, x, self.closed)]
