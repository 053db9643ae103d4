"""Reliability diagrams drawn from the binning engine's :class:`~calkit.binning.BinTable`.

Every bar is one bin of the table the metric itself used: its left side and
width are the bin's edges (so equal-mass bins give bars of different widths),
its height the bin's accuracy (mean target), and the shaded gap runs from the
accuracy to the bin's *mean confidence* (not the bin centre), so the shaded area
weighted by the counts is exactly the ECE printed in the legend.

What to trust is drawn too, on request:

* ``interval="wilson"`` or ``"clopper-pearson"``: an error bar on each bin's
  accuracy (:mod:`calkit.metrics.intervals`), at the bin's mean confidence;
* ``consistency_band=True`` (from predictions): a grey box per bin spanning the
  range in which a *calibrated* model's accuracy would fall given the same
  confidences (consistency resampling, :mod:`calkit.metrics.consistency`);
  bins whose accuracy lies outside their box are marked with a red cross;
* the count panel under the diagram: correct and wrong predictions per bin
  side by side (:func:`calkit.plotting.histogram.draw_split_counts`).

Accurate models put most confidences above 0.99, where a linear axis shows one
bar.  ``confidence_scale`` (:mod:`calkit.plotting._scale`) draws both axes on the
error-rate scale ``-log10(1 - p)`` or the logit scale instead, with the bins at
their true widths on that scale; ``"auto"`` (the default) switches to the
error-rate scale when more than half the confidences are above 0.99 and says so
in the title.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np

from calkit._array import to_numpy
from calkit._validation import check_classification, check_option
from calkit.binning import BinTable
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import CalibrationResult, calibration_error, error_from_table
from calkit.metrics.intervals import INTERVALS, bin_intervals
from calkit.plotting import _scale
from calkit.plotting._axes import colors, hist_axes_below, panel_grid
from calkit.plotting.histogram import draw_split_counts

LAYOUTS = ("overlay", "side_by_side", "grid")
_INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}
LEGENDS = ("auto", "outside", "best", "none")
SMOOTH_MIN_SAMPLES = 3.0
TITLE_WIDTH = 40
LEGEND_WIDTH = 34
_AXIS_LABELS = {
    "top_label": ("Confidence (top-label probability)", "Accuracy"),
    "positive": ("Predicted probability of class 1", "Fraction of positives"),
    "classwise": ("Predicted probability of the class", "Fraction of the class"),
}
_COUNT_LABELS = {"top_label": ("correct", "wrong"), "positive": ("class 1", "class 0"),
                 "classwise": ("this class", "other classes")}


class ReliabilityDisplay:
    """Reliability diagram of one or several models (scikit-learn Display conventions).

    Create it with :meth:`from_predictions`, :meth:`from_result`,
    :meth:`from_estimator`, :meth:`from_calibrator` or :meth:`from_classwise`;
    each computes (or takes) the bin tables and calls :meth:`plot`.  Nothing is
    shown: the figure is returned for saving (``display.figure_.savefig(...)``).

    Parameters
    ----------
    tables : sequence of BinTable
        One bin table per model (or per class).
    names : sequence of str
        Model names for the legend and panel titles (never cut; long ones wrap).
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
    bands : sequence of ConsistencyBand or None, optional
        Per model, a :func:`calkit.metrics.consistency.consistency_band` on the
        model's bins, drawn as grey boxes.
    share_above : float, optional
        Share of the scores above 0.99 (for ``confidence_scale="auto"``); when
        None it is bounded from the tables (the bins lying wholly above 0.99).

    Attributes
    ----------
    table : BinTable
        ``tables[0]``.
    intervals : list of (ndarray, ndarray) or None
        Per model, the ``(low, high)`` interval of each bin's accuracy (NaN for
        empty bins) when :meth:`plot` was given ``interval``; else None.
    band : list of ConsistencyBand or None
        Per model, its consistency band (None where not computed).
    outside_band : list of ndarray or None
        Per model, the mask of bins whose accuracy lies outside the band.
    confidence_scale_ : str
        The scale drawn (``"auto"`` resolved).
    axes_ : list of matplotlib Axes
        The reliability panels (one for ``layout="overlay"``).
    ax_ : matplotlib Axes
        ``axes_[0]``.
    hist_axes_ : list of matplotlib Axes or None
        The count panel under each reliability panel.
    bars_ : list of BarContainer
        Per model, the accuracy bars of its non-empty bins.
    gap_bars_ : list of BarContainer or None
        Per model, the shaded gap bars (None when not drawn).
    interval_bars_ : list of ErrorbarContainer or None
    band_boxes_ : list of BarContainer or None
    outside_markers_ : list of Line2D or None
    count_bars_ : list of BarContainer or None
        Per model, the counts: the correct (or positive) bars in a panel of its
        own; the total count of every bin when several models share a panel.
    wrong_bars_ : list of BarContainer or None
        Per model, the wrong (or negative) count bars (panel of its own only).
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
    >>> len(disp.bars_[0]) == int(disp.table.nonempty.sum())
    True
    >>> disp.legend_texts()[0]
    'ResNet-50 (ECE 4.00%)'
    >>> disp.confidence_scale_                 # 95% of the confidences are above 0.99
    '-log(1-p)'
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, tables: Sequence[BinTable], names: Sequence[str],
                 errors: Sequence[float], settings: dict | None = None,
                 score_ranges: Sequence[tuple[float, float]] | None = None,
                 smooth: Sequence | None = None, bands: Sequence | None = None,
                 share_above: float | None = None):
        if not (len(tables) == len(names) == len(errors)) or not tables:
            raise ValueError("tables, names and errors must be non-empty and of equal length")
        self.tables = tuple(t.to_numpy() for t in tables)
        self.names = tuple(str(n) for n in names)
        self.errors = tuple(float(e) for e in errors)
        self.settings = dict(settings or {})
        self.score_ranges = None if score_ranges is None else tuple(
            (float(lo), float(hi)) for lo, hi in score_ranges)
        self.smooth = None if smooth is None else tuple(smooth)
        if bands is not None and len(bands) != len(self.tables):
            raise ValueError(f"bands needs one entry per table ({len(self.tables)}), "
                             f"got {len(bands)}")
        self.band = None if bands is None else list(bands)
        self.share_above = None if share_above is None else float(share_above)
        self.intervals = None
        self.outside_band = None if self.band is None else [
            None if b is None else b.outside(t.mean_target)
            for b, t in zip(self.band, self.tables, strict=True)]

    @property
    def table(self) -> BinTable:
        """The first model's bin table."""
        return self.tables[0]

    def legend_texts(self) -> list[str]:
        """The texts of every legend drawn (panel legends, then the figure's)."""
        legends = [a.get_legend() for a in list(self.axes_) + [h for h in self.hist_axes_
                                                                if h is not None]]
        legends += list(self.figure_.legends)
        return [t.get_text() for leg in legends if leg is not None for t in leg.get_texts()]

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins: int | str = 15,
                         strategy: str = "uniform",
                         closed: str = "right", view: str | None = None, name: str | None = None,
                         smooth: bool = False, smooth_band: float | None = 0.95,
                         consistency_band: bool = False, confidence: float = 0.95,
                         n_resamples: int = 1000, random_state=0,
                         sum_tol: float | None = None, **plot_kw) -> ReliabilityDisplay:
        """Bin the predictions with :func:`calkit.calibration_error` and plot them.

        Parameters
        ----------
        y_true : array of shape (N,), or a mapping name -> array
            Integer labels, shared by all models, or one array per model (the same
            names as ``y_prob``; e.g. models evaluated on different files).
        y_prob : array of shape (N, K) or (N,), or a mapping name -> array
            Probabilities of one model, or of several models to compare.
        n_bins, strategy, closed, view, sum_tol
            As in :func:`calkit.calibration_error` (``n_bins`` may be a rule,
            ``"cube_root"``..., resolved per model): ``view`` is ``"top_label"``
            (the default for ``(N, K)`` probabilities), ``"positive"`` or
            ``"confidence"``, and a 1-D ``y_prob`` needs it said (it is never
            guessed); for one panel per class see :meth:`from_classwise`.
        name : str, optional
            Legend name of a single model (default ``"model"``).
        smooth : bool, default=False
            Also draw the smooth-ECE reliability curve (Blasiok and Nakkiran
            2023) of each model, from :func:`calkit.metrics.smooth.smooth_ece`.
        smooth_band : float or None, default=0.95
            With ``smooth=True``, shade the curve's pointwise bootstrap band at
            this level (100 seeded resamples, :func:`calkit.metrics.smooth.curve_band`);
            None draws the curve alone.
        consistency_band : bool, default=False
            Draw each bin's consistency band at level ``confidence``
            (:func:`calkit.metrics.consistency.consistency_band`, ``n_resamples``
            Bernoulli resamples seeded with ``random_state``) and mark the bins
            whose accuracy lies outside it.
        confidence : float, default=0.95
            Level of the consistency band and of the per-bin intervals.
        n_resamples : int, default=1000
        random_state : None, int or numpy.random.Generator, default=0
            Seed of the consistency resampling.
        **plot_kw
            ``ax``, ``layout``, ``ncols``, ``hist``, ``gap``, ``count_scale``,
            ``counts``, ``confidence_scale``, ``interval``, ``legend``,
            ``axis_labels``, ``hist_ax``, ``title``: see :meth:`plot`.

        Returns
        -------
        ReliabilityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> import numpy as np
        >>> matplotlib.use("Agg")
        >>> from calkit.plotting import ReliabilityDisplay
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(size=500)
        >>> y = (rng.uniform(size=500) < p).astype(int)           # calibrated
        >>> disp = ReliabilityDisplay.from_predictions(y, p, view="positive", n_bins=5,
        ...                                            consistency_band=True,
        ...                                            interval="wilson")
        >>> low, high = disp.intervals[0]
        >>> bool(np.all((low <= disp.table.mean_target) & (disp.table.mean_target <= high)))
        True
        >>> disp.band[0].low.shape, int(disp.outside_band[0].sum())
        ((5,), 0)
        >>> matplotlib.pyplot.close(disp.figure_)
        """
        if view is not None:
            check_option(view, "view", ("top_label", "positive", "confidence"))
        probs = dict(y_prob) if isinstance(y_prob, Mapping) else {name or "model": y_prob}
        if not probs:
            raise ValueError("y_prob must hold at least one model's probabilities")
        if isinstance(y_true, Mapping):
            if set(y_true) != set(probs):
                raise ValueError("a mapping y_true needs the same names as y_prob, got "
                                 f"{sorted(y_true)} and {sorted(probs)}")
            labels = {k: y_true[k] for k in probs}
        else:
            labels = dict.fromkeys(probs, y_true)
        results = {k: calibration_error(labels[k], p, n_bins=n_bins, strategy=strategy,
                                        closed=closed, view=view, sum_tol=sum_tol)
                   for k, p in probs.items()}
        scores = [_scores(labels[k], p, view, sum_tol) for k, p in probs.items()]
        curves = [_smooth_ece()(labels[k], p, view=view, sum_tol=sum_tol, band=smooth_band)
                  for k, p in probs.items()] if smooth else None
        bands = None
        if consistency_band:
            from calkit.metrics.consistency import consistency_band as band_of

            bands = [band_of(s, np.asarray(r.table.edges), closed=closed, confidence=confidence,
                             n_resamples=n_resamples, random_state=random_state)
                     for s, r in zip(scores, results.values(), strict=True)]
        share = max(float(np.mean(s > _scale.AUTO_THRESHOLD)) for s in scores)
        display = cls([r.table for r in results.values()], list(results),
                      [float(r) for r in results.values()], results[next(iter(results))].settings,
                      score_ranges=[(float(s.min()), float(s.max())) for s in scores],
                      smooth=curves, bands=bands, share_above=share)
        plot_kw.setdefault("confidence", confidence)
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
            See :meth:`plot`.  (Consistency bands need the scores: use
            :meth:`from_predictions`.)

        Returns
        -------
        ReliabilityDisplay

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
                                 "results have one per class (use "
                                 "ReliabilityDisplay.from_classwise)")
        settings = dict(next(iter(results.values())).settings)
        display = cls([r.table for r in results.values()], list(results),
                      [float(r) for r in results.values()], settings)
        return display.plot(**plot_kw)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, name: str | None = None,
                       view: str | None = None, **kwargs) -> ReliabilityDisplay:
        """Diagram of a fitted classifier's ``predict_proba(X)`` against labels ``y``.

        Like scikit-learn's ``CalibrationDisplay.from_estimator``: the estimator
        is only asked for probabilities.  ``y`` must be integer class indices
        ``0..K-1`` in the order of the estimator's columns.

        Parameters
        ----------
        estimator : object with ``predict_proba``
            A fitted classifier (scikit-learn, or a calkit ``CalibratedModel``).
        X : array-like
            Inputs of the estimator.
        y : array of shape (N,)
            Integer labels.
        name : str, optional
            Default: the estimator's class name.
        view : {"top_label", "positive"}, optional
            Default: ``"positive"`` for two classes (scikit-learn's convention),
            ``"top_label"`` otherwise.
        **kwargs
            As for :meth:`from_predictions`.

        Returns
        -------
        ReliabilityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from calkit.plotting import ReliabilityDisplay
        >>> X, y = make_classification(n_samples=600, random_state=0)
        >>> clf = LogisticRegression().fit(X[:300], y[:300])
        >>> disp = ReliabilityDisplay.from_estimator(clf, X[300:], y[300:], n_bins=8)
        >>> disp.names, disp.settings["view"], disp.table.n_samples
        (('LogisticRegression',), 'positive', 300)
        >>> matplotlib.pyplot.close(disp.figure_)
        """
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"estimator {type(estimator).__name__} has no predict_proba")
        probs = np.asarray(to_numpy(estimator.predict_proba(X)), dtype=np.float64)
        if view is None:
            view = "positive" if probs.ndim == 1 or probs.shape[1] == 2 else "top_label"
        return cls.from_predictions(y, probs, name=name or type(estimator).__name__, view=view,
                                    **kwargs)

    @classmethod
    def from_calibrator(cls, calibrator, logits, y, *, name: str | None = None,
                        before: bool = True, **kwargs) -> ReliabilityDisplay:
        """Diagram of a fitted calibrator on (test) ``logits``, by default beside the raw model.

        Parameters
        ----------
        calibrator : fitted calkit calibrator (or anything with ``predict_proba(logits)``)
        logits : array of shape (N, K), or (N,) binary scores
        y : array of shape (N,)
            Integer labels.
        name : str, optional
            Default: the calibrator's class name.
        before : bool, default=True
            Also draw the uncalibrated model (``softmax(logits)``; the sigmoid of
            1-D scores) in a panel to the left, with the same bins.
        **kwargs
            As for :meth:`from_predictions` (default ``layout="side_by_side"``
            when ``before``).

        Returns
        -------
        ReliabilityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from calkit.datasets import load_example
        >>> from calkit.plotting import ReliabilityDisplay
        >>> from calkit.posthoc import TemperatureScaling
        >>> logits, labels = load_example()
        >>> ts = TemperatureScaling().fit(logits[:1000], labels[:1000])
        >>> disp = ReliabilityDisplay.from_calibrator(ts, logits[1000:], labels[1000:])
        >>> disp.names, len(disp.axes_)
        (('uncalibrated', 'TemperatureScaling'), 2)
        >>> bool(disp.errors[1] < disp.errors[0])
        True
        >>> matplotlib.pyplot.close(disp.figure_)
        """
        if not hasattr(calibrator, "predict_proba"):
            raise TypeError(f"calibrator {type(calibrator).__name__} has no predict_proba")
        after = np.asarray(to_numpy(calibrator.predict_proba(logits)), dtype=np.float64)
        label = name or type(calibrator).__name__
        if not before:
            return cls.from_predictions(y, after, name=label, **kwargs)
        from calkit.logits import softmax

        z = np.asarray(to_numpy(logits), dtype=np.float64)
        raw = 1 / (1 + np.exp(-z)) if z.ndim == 1 else softmax(z)
        if raw.shape != after.shape:
            raise ValueError(f"the calibrator returned probabilities of shape {after.shape} "
                             f"for logits of shape {z.shape}; pass before=False")
        if label == "uncalibrated":
            raise ValueError("name 'uncalibrated' is taken by the raw model's panel")
        kwargs.setdefault("layout", "side_by_side")
        return cls.from_predictions(y, {"uncalibrated": raw, label: after}, **kwargs)

    @classmethod
    def from_classwise(cls, y_true, y_prob, *, classes=None, class_names=None,
                       max_panels: int = 20, n_worst: int = 12, n_bins: int = 10,
                       strategy: str = "uniform", closed: str = "right",
                       sum_tol: float | None = None, **plot_kw) -> ReliabilityDisplay:
        """One panel per class: ``p[:, k]`` against ``y == k`` (class-wise calibration).

        Parameters
        ----------
        y_true : array of shape (N,)
        y_prob : array of shape (N, K)
        classes : sequence of int, optional
            The classes to draw.  Default: all of them when ``K <= max_panels``,
            else the ``n_worst`` classes of largest class-wise ECE (worst first).
        class_names : sequence of str, optional
            Names of the ``K`` classes (default ``"class k"``).
        max_panels : int, default=20
        n_worst : int, default=12
        n_bins, strategy, closed, sum_tol
            As in :func:`calkit.calibration_error` with ``view="classwise"``.
        **plot_kw
            See :meth:`plot` (default ``layout="grid"`` with 4 or 5 columns).

        Returns
        -------
        ReliabilityDisplay
            ``classes_`` holds the class index of each panel.

        Examples
        --------
        >>> import matplotlib
        >>> import numpy as np
        >>> matplotlib.use("Agg")
        >>> from calkit import calibration_error, softmax
        >>> from calkit.datasets import load_example
        >>> from calkit.plotting import ReliabilityDisplay
        >>> logits, labels = load_example()
        >>> p = softmax(logits)
        >>> disp = ReliabilityDisplay.from_classwise(labels, p, n_worst=4, max_panels=5)
        >>> len(disp.axes_), len(disp.classes_)             # 10 classes > 5: the 4 worst
        (4, 4)
        >>> r = calibration_error(labels, p, view="classwise", n_bins=10)
        >>> from calkit.metrics import error_from_table
        >>> bool(np.isclose(disp.errors[0], max(float(error_from_table(t)) for t in r.tables)))
        True
        >>> matplotlib.pyplot.close(disp.figure_)
        """
        data = check_classification(y_true, y_prob, sum_tol=sum_tol)
        if data.binary:
            raise ValueError("from_classwise needs (N, K) probabilities of K >= 2 classes; "
                             "for a binary task use from_predictions(view='positive')")
        k_all = data.n_classes
        result = calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy,
                                   closed=closed, view="classwise", sum_tol=sum_tol)
        errors = np.array([float(error_from_table(t)) for t in result.tables])
        if classes is None:
            if k_all <= max_panels:
                chosen = list(range(k_all))
            else:
                chosen = [int(k) for k in np.argsort(-errors, kind="stable")[:n_worst]]
        else:
            chosen = [int(k) for k in classes]
            bad = [k for k in chosen if not 0 <= k < k_all]
            if bad or not chosen:
                raise ValueError(f"classes must be non-empty indices in [0, {k_all}), got "
                                 f"{list(classes)}")
        if class_names is not None and len(class_names) != k_all:
            raise ValueError(f"class_names needs {k_all} names, got {len(class_names)}")
        names = [str(class_names[k]) if class_names is not None else f"class {k}"
                 for k in chosen]
        p = np.asarray(to_numpy(data.y_prob))
        ranges = [(float(p[:, k].min()), float(p[:, k].max())) for k in chosen]
        settings = dict(result.settings)
        display = cls([result.tables[k] for k in chosen], names, errors[chosen].tolist(),
                      settings, score_ranges=ranges,
                      share_above=max(float(np.mean(p[:, k] > 0.99)) for k in chosen))
        display.classes_ = chosen
        plot_kw.setdefault("layout", "grid")
        plot_kw.setdefault("ncols", min(len(chosen), 5 if len(chosen) > 16 else 4))
        plot_kw.setdefault("confidence_scale", "linear")
        plot_kw.setdefault("color", "tab:blue")
        if len(chosen) < k_all:
            plot_kw.setdefault("title", f"the {len(chosen)} worst of {k_all} classes by "
                                        f"class-wise ECE")
        return display.plot(**plot_kw)

    def plot(self, ax=None, *, layout: str = "overlay", ncols: int | None = None,
             hist: bool = True, gap: bool | None = None, count_scale: str = "auto",
             counts: bool = False, confidence_scale: str = "auto", interval: str | None = None,
             confidence: float = 0.95, legend: str = "auto",
             axis_labels: tuple[str, str] | None = None, hist_ax=None,
             title: str | None = None, color=None,
             count_labels: tuple[str, str] | None = None) -> ReliabilityDisplay:
        """Draw the diagram.

        Parameters
        ----------
        ax : matplotlib Axes, or a sequence of them (one per panel), optional
            Where to draw.  When None a new figure is made with a count panel
            under each diagram; on given axes the count panel is taken from the
            bottom of each axes (never drawn over the diagram).
        layout : {"overlay", "side_by_side", "grid"}, default="overlay"
            Several models in one panel (outlined bars and markers), one panel
            each in a row, or one panel each in rows of ``ncols``; panels share
            their y axis.
        ncols : int, optional
            Panels per row for ``layout="grid"`` (default 4).
        hist : bool, default=True
            Draw the per-bin counts: correct and wrong side by side in a panel
            of its own, the total count per model when models share a panel.
        gap : bool, optional
            Shade the gap between accuracy and mean confidence; default: on
            whenever a panel shows a single model.
        count_scale : {"auto", "log", "linear"}, default="auto"
            y scale of the count panel.  ``"auto"``: log when one bin holds more
            than half of the samples, linear otherwise.  On a log axis the bars
            start at 0.5 so a single sample is a visible bar; on a linear one,
            bars too short to see get a marker.
        counts : bool, default=False
            Print each bin's counts above its bars.
        confidence_scale : {"auto", "linear", "logit", "-log(1-p)"}, default="auto"
            Scale of both axes (:mod:`calkit.plotting._scale`).  ``"auto"``:
            the error-rate scale ``-log(1-p)`` when more than half of the
            scores are above 0.99 (said in the title), else linear.
            ``"error-rate"`` is another name of ``"-log(1-p)"``.
        interval : {"wilson", "clopper-pearson"} or None, default=None
            Error bar on each bin's accuracy at level ``confidence``
            (:mod:`calkit.metrics.intervals`): Wilson's score interval (close to
            nominal coverage), or Clopper-Pearson's exact one (at least nominal,
            wider).  Stored in ``intervals``.
        confidence : float, default=0.95
            Level of the intervals.
        legend : {"auto", "outside", "best", "none"}, default="auto"
            ``"outside"``: under the panel, outside the data; ``"best"``:
            matplotlib's least-covering place inside the panel.  ``"auto"``:
            outside on a figure the display made, best on given axes.
        axis_labels : (str, str), optional
            x and y labels; the default depends on the view (e.g. "Confidence"
            and "Accuracy" for the top-label view).
        hist_ax : matplotlib Axes or a sequence of them, optional
            With ``ax`` given: where to draw the counts (one per panel), e.g. a
            short axes under each diagram of a grid.
        title : str, optional
            Figure title (default: the bins, and the scale when chosen
            automatically).
        color : matplotlib colour, optional
            One colour for every model (default: matplotlib's colour cycle).
        count_labels : (str, str), optional
            Legend names of the two count bars (default by view: "correct" and
            "wrong" for the top-label view, "class 1" and "class 0" for the
            positive one).

        Returns
        -------
        ReliabilityDisplay
            ``self``, with the artists stored as attributes.
        """
        check_option(layout, "layout", LAYOUTS)
        check_option(count_scale, "count_scale", ("auto", "log", "linear"))
        check_option(legend, "legend", LEGENDS)
        if interval is not None:
            check_option(interval, "interval", INTERVALS)
        share = self.share_above if self.share_above is not None else \
            _scale.share_above_from_tables(self.tables)
        scale, reason = _scale.resolve(confidence_scale, share)
        self.confidence_scale_ = scale
        self._axis_labels = axis_labels
        n_models = len(self.tables)
        n_panels = 1 if layout == "overlay" else n_models
        if layout == "side_by_side":
            ncols = n_panels
        elif layout == "grid" and ncols is None:
            ncols = min(n_panels, 4)
        self.axes_, self.hist_axes_ = self._make_axes(ax, n_panels, hist, hist_ax, ncols)
        self.figure_ = self.axes_[0].figure
        self.ax_ = self.axes_[0]
        palette = colors(n_models) if color is None else [color] * n_models
        overlaid = n_panels == 1 and n_models > 1
        shade = (not overlaid) if gap is None else bool(gap)
        edges_drawn = [_drawn_edges(t, None if self.score_ranges is None else
                                    self.score_ranges[i]) for i, t in enumerate(self.tables)]
        low, high = _scale.limits(scale, np.concatenate(
            [np.r_[e[1:-1], t.mean_score, t.mean_target]
             for e, t in zip(edges_drawn, self.tables, strict=True)]))
        self._limits = (low, high)
        self._ylimits = (low, _scale.accuracy_limit(scale, high, max(
            int(np.max(t.count)) for t in self.tables)))
        self.intervals = None if interval is None else [
            bin_intervals(t, interval, confidence) for t in self.tables]
        self.bars_, self.gap_bars_, self.count_bars_, self.wrong_bars_ = [], [], [], []
        self.interval_bars_, self.band_boxes_, self.outside_markers_ = [], [], []
        self.smooth_lines_ = [None] * n_models
        self.smooth_bands_ = [None] * n_models
        count_labels = count_labels or _COUNT_LABELS.get(self.settings.get("view", "top_label"),
                                                         _COUNT_LABELS["top_label"])
        for i, (table, label, err) in enumerate(zip(self.tables, self.names, self.errors,
                                                    strict=True)):
            panel = 0 if n_panels == 1 else i
            a = self.axes_[panel]
            edges = edges_drawn[i]
            bars, gaps = _draw_bins(a, table, edges, palette[i],
                                    label=f"{label} ({_metric_name(self.settings)} "
                                    f"{100 * err:.2f}%)",
                                    filled=not overlaid, shade=shade, floor=low)
            self.bars_.append(bars)
            self.gap_bars_.append(gaps)
            self.interval_bars_.append(None if self.intervals is None else _draw_intervals(
                a, table, self.intervals[i], palette[i] if overlaid else "black",
                f"{100 * confidence:g}% {_INTERVAL_NAMES[interval]} interval"
                if i == 0 or not overlaid
                else None))
            band = None if self.band is None else self.band[i]
            if band is None:
                self.band_boxes_.append(None)
                self.outside_markers_.append(None)
            else:
                boxes, marks = _draw_band(a, table, band, edges, self.outside_band[i], scale)
                self.band_boxes_.append(boxes)
                self.outside_markers_.append(marks)
            if self.smooth is not None:
                self.smooth_lines_[i], self.smooth_bands_[i] = _draw_smooth(
                    a, self.smooth[i], palette[i], overlaid, with_value=n_panels == 1,
                    score_range=None if self.score_ranges is None else self.score_ranges[i])
            hax = self.hist_axes_[panel]
            if hax is None:
                self.count_bars_.append(None)
                self.wrong_bars_.append(None)
            elif overlaid:
                self.count_bars_.append(_draw_total_counts(hax, table, edges, palette[i]))
                self.wrong_bars_.append(None)
            else:
                cscale = _count_scale(count_scale, table)
                forward = _scale.FUNCTIONS[scale][0]
                pos, neg, _ = draw_split_counts(
                    hax, edges, table.sum_target, table.count - table.sum_target, scale=scale,
                    count_scale=cscale, labels=count_labels, colors_=(palette[i], "0.6"),
                    counts=counts, centres=None if scale == "linear" else table.mean_score,
                    max_width=0.1 * float(forward(high) - forward(low)))
                self.count_bars_.append(pos)
                self.wrong_bars_.append(neg)
        if overlaid and self.hist_axes_[0] is not None:
            cscale = "log" if any(_count_scale(count_scale, t) == "log"
                                  for t in self.tables) else "linear"
            self.hist_axes_[0].set_yscale(cscale)
            if cscale == "log":
                self.hist_axes_[0].set_ylim(bottom=0.5)
        multi = n_panels > 1
        self.diagonal_ = [self._finish_panel(a, h, i, multi, scale, legend, ax is None)
                          for i, (a, h) in enumerate(zip(self.axes_, self.hist_axes_,
                                                         strict=True))]
        self._set_title(title, reason, multi)
        return self

    def _make_axes(self, ax, n_panels: int, hist: bool, hist_ax=None, ncols=None):
        self._inset = False  # counts are never drawn inside the diagram (kept for callers)
        if ax is None:
            if hist_ax is not None:
                raise ValueError("hist_ax needs ax (the diagrams' axes) as well")
            size = (4.6, 4.2) if n_panels > 1 else (7.4, 4.6)
            _, axes, hist_axes = panel_grid(n_panels, hist, ncols=ncols, sharey=n_panels > 1,
                                            panel_size=size)
            return axes, hist_axes
        axes = list(np.ravel(ax)) if isinstance(ax, Sequence | np.ndarray) else [ax]
        if len(axes) != n_panels:
            raise ValueError(f"layout needs {n_panels} axes, got {len(axes)}")
        if hist_ax is not None and hist:
            hist_axes = list(np.ravel(hist_ax)) if isinstance(hist_ax, Sequence | np.ndarray) \
                else [hist_ax]
            if len(hist_axes) != len(axes):
                raise ValueError(f"hist_ax needs one axes per panel ({len(axes)}), got "
                                 f"{len(hist_axes)}")
            return axes, hist_axes
        return axes, [hist_axes_below(a) if hist else None for a in axes]

    def _finish_panel(self, ax, hist_ax, i: int, multi: bool, scale: str, legend: str,
                      own_figure: bool):
        s = self.settings
        xlabel, ylabel = self._axis_labels or _AXIS_LABELS.get(s.get("view", "top_label"),
                                                                _AXIS_LABELS["top_label"])
        low, high = self._limits
        forward, inverse = _scale.FUNCTIONS[scale]
        line = inverse(np.linspace(forward(low), forward(high), 200))
        (diagonal,) = ax.plot(line, line, ls="--", color="0.35", lw=1,
                              label="perfect calibration", zorder=6)
        _scale.apply(ax, scale, low, high, "x")
        _scale.apply(ax, scale, *self._ylimits, "y")
        ax.set_ylabel(ylabel)
        if multi:
            numbers = f"{_metric_name(s)} {100 * self.errors[i]:.2f}%"
            if self.smooth is not None:
                numbers += f", smECE {100 * float(self.smooth[i]):.2f}%"
            ax.set_title(f"{textwrap.fill(self.names[i], TITLE_WIDTH)}\n{numbers}",
                         fontsize="medium")
        ax.grid(alpha=0.25)
        if hist_ax is None:
            ax.set_xlabel(xlabel)
        else:
            ax.tick_params(labelbottom=False)
            hist_ax.set_xlabel(xlabel)
            hist_ax.set_ylabel("Count (log)" if hist_ax.get_yscale() == "log" else "Count")
            hist_ax.grid(alpha=0.25)
        if not multi or legend == "best" or (legend == "auto" and not own_figure):
            self._legend(ax, hist_ax, diagonal, legend, own_figure)
        elif i == 0 and legend != "none":  # one legend for all panels, under the figure
            handles, labels = self._handles(ax, hist_ax, diagonal)
            keep = [j for j, t in enumerate(labels) if not t.startswith(self.names[0] + " (")]
            self.figure_.legend([handles[j] for j in keep], [labels[j] for j in keep],
                                loc="outside lower center", ncols=min(len(keep), 4),
                                fontsize="small", frameon=False)
        return diagonal

    def _handles(self, ax, hist_ax, diagonal):
        """The panel's legend handles and labels (with its count bars), in display order."""
        from matplotlib.collections import Collection

        handles, labels = ax.get_legend_handles_labels()
        if hist_ax is not None:  # the count bars' colours, once
            more, more_labels = hist_ax.get_legend_handles_labels()
            handles, labels = handles + more, labels + [f"count: {t}" for t in more_labels]

        def rank(h):  # bars and gaps, then curves, then bands, the diagonal last
            return 3 if h is diagonal else 2 if isinstance(h, Collection) else int(
                isinstance(h, type(diagonal)))

        order = sorted(range(len(handles)), key=lambda j: rank(handles[j]))
        return [handles[j] for j in order], [labels[j] for j in order]

    def _legend(self, ax, hist_ax, diagonal, legend: str, own_figure: bool) -> None:
        if legend == "none":
            return
        handles, labels = self._handles(ax, hist_ax, diagonal)
        where = ("outside" if own_figure else "best") if legend == "auto" else legend
        if where == "best":
            ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.9)
            return
        ax.legend(handles, [textwrap.fill(t, LEGEND_WIDTH) for t in labels], loc="upper left",
                  bbox_to_anchor=(1.03, 1), fontsize="small", frameon=False, borderaxespad=0)

    def _set_title(self, title: str | None, reason: str | None, multi: bool) -> None:
        s = self.settings
        bins = f"{s.get('n_bins', '?')} {s.get('strategy', '')} bins"
        if s.get("n_bins_rule"):
            bins += f" by {s['n_bins_rule']}"
        if title is None:
            title = bins if multi else f"Reliability diagram, {bins}"
        elif multi:
            title = f"{title}, {bins}"
        if reason:
            title = f"{title}\n({reason})"
        if multi:
            self.figure_.suptitle(title, fontsize="medium")
        else:
            self.ax_.set_title(title, fontsize="medium")


def _count_scale(count_scale: str, table: BinTable) -> str:
    if count_scale != "auto":
        return count_scale
    count = np.asarray(table.count)
    return "log" if count.max() > table.n_samples / 2 else "linear"


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


def _draw_smooth(ax, result, color, overlaid: bool, with_value: bool = True,
                 score_range=None):
    """The smoothed reliability curve, labelled with its smooth ECE, and its band
    (clipped to [0, 1]) where :func:`smooth_visible`."""
    grid = np.asarray(to_numpy(result.grid), dtype=np.float64)
    curve = np.asarray(to_numpy(result.curve), dtype=np.float64)
    seen = smooth_visible(result)
    if score_range is not None:  # never beyond the data (a zoomed axis would stretch it)
        seen = seen & (grid >= score_range[0]) & (grid <= score_range[1])
    curve = np.where(seen, curve, np.nan)
    line_color = color if overlaid else "black"
    (line,) = ax.plot(grid, curve, color=line_color, lw=2, zorder=5,
                      label=f"smooth curve (smECE {100 * float(result):.2f}%)" if with_value
                      else "smooth curve")
    band = None
    if getattr(result, "band", None) is not None:
        low, high = result.band
        level = 100 * result.settings.get("band", 0.95)
        band = ax.fill_between(grid, np.clip(low, 0, 1), np.clip(high, 0, 1), where=seen,
                               color=line_color, alpha=0.15,
                               lw=0, zorder=4, label=f"{level:g}% bootstrap band")
    return line, band


def _scores(y_true, y_prob, view: str, sum_tol) -> np.ndarray:
    """The view's scores as float64 numpy (for the score range, auto scale and bands)."""
    data = check_classification(y_true, y_prob, sum_tol=sum_tol)
    ((scores, _),) = score_target_pairs(data, view)
    return np.asarray(to_numpy(scores), dtype=np.float64)


def _score_range(y_true, y_prob, view: str, sum_tol) -> tuple[float, float]:
    """Smallest and largest score of ``view`` (for drawing the outer bins)."""
    s = _scores(y_true, y_prob, view, sum_tol)
    return float(s.min()), float(s.max())


def _drawn_edges(table: BinTable, score_range) -> np.ndarray:
    """The table's edges with the outer two pulled in to the observed score range."""
    edges = np.array(table.edges, dtype=np.float64)
    if score_range:
        lo, hi = score_range
        edges[0] = min(max(edges[0], lo), edges[1])
        edges[-1] = max(min(edges[-1], hi), edges[-2])
    return edges


def _draw_bins(ax, table: BinTable, edges, color, label: str, filled: bool, shade: bool,
               floor: float = 0.0):
    """Accuracy bars of the non-empty bins and, optionally, the shaded gap."""
    ok = table.nonempty
    left = edges[:-1][ok]
    width = np.diff(edges)[ok]
    acc, conf = table.mean_target[ok], table.mean_score[ok]
    base = floor  # the axis' lower limit: 0, or 1e-k on the logit scale
    if filled:
        bars = ax.bar(left, acc - base, width=width, bottom=base, align="edge", color=color,
                      alpha=0.85, edgecolor="white", linewidth=0.6, label=label, zorder=2)
        # a dot at (mean confidence, accuracy): narrow equal-mass bins stay visible
        ax.plot(conf, acc, "o", color="0.1", ms=2.5, zorder=5)
    else:
        bars = ax.bar(left, acc - base, width=width, bottom=base, align="edge", fill=False,
                      edgecolor=color, linewidth=1.6, label=label, zorder=3)
        ax.plot(conf, acc, "o-", color=color, ms=3.5, lw=1, zorder=5)
    gaps = None
    if shade:
        gaps = ax.bar(left, conf - acc, bottom=acc, width=width, align="edge",
                      color="tab:red", alpha=0.25, edgecolor="tab:red", hatch="//",
                      linewidth=0.5, label="gap to mean confidence", zorder=3)
    return bars, gaps


def _draw_intervals(ax, table: BinTable, interval, color, label):
    ok = table.nonempty
    low, high = interval
    acc = table.mean_target[ok]
    yerr = np.maximum([acc - low[ok], high[ok] - acc], 0)  # never negative by rounding
    return ax.errorbar(table.mean_score[ok], acc, yerr=yerr,
                       fmt="none", ecolor=color, elinewidth=1.1, capsize=2.5, zorder=6,
                       label=label)


def _draw_band(ax, table: BinTable, band, edges, outside, scale: str):
    """Grey boxes of the consistency band over the middle half of each bin (as drawn),
    and red crosses on the bins whose accuracy lies outside."""
    ok = table.nonempty
    quarter = _quarter_points(edges, scale)
    boxes = ax.bar(quarter[0][ok], (band.high - band.low)[ok],
                   width=(quarter[1] - quarter[0])[ok], bottom=band.low[ok], align="edge",
                   color="0.25", alpha=0.28, linewidth=0, zorder=4,
                   label=f"{100 * band.confidence:g}% consistency band")
    marks = None
    if outside is not None and bool(np.any(outside)):
        (marks,) = ax.plot(table.mean_score[outside], table.mean_target[outside], "X",
                           color="tab:red", ms=7, mec="white", mew=0.6, zorder=7,
                           linestyle="none", label="outside the band")
    return boxes, marks


def _quarter_points(edges, scale: str):
    forward, inverse = _scale.FUNCTIONS[scale]
    u = forward(edges)
    width = u[1:] - u[:-1]
    return inverse(u[:-1] + width / 4), inverse(u[1:] - width / 4)


def _draw_total_counts(ax, table: BinTable, edges, color):
    """Total count of every bin, outlined (several models in one panel)."""
    left, width = edges[:-1], np.diff(edges)
    return ax.bar(left, table.count, width=width, align="edge", fill=False, edgecolor=color,
                  linewidth=1.4)
