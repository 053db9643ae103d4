"""Confidence axes that zoom where accurate models put their scores.

Three scales of a probability axis:

* ``"linear"``: ``p`` itself, on [0, 1].
* ``"-log(1-p)"`` (the error-rate scale): ``u = -log10(1 - p)``; 0.9, 0.99,
  0.999... are equally spaced, one decade of error rate each, and [0, 0.9] takes
  one decade too.  Used for ImageNet and LLM confidences, most of which are
  above 0.99.
* ``"logit"``: ``u = log10(p / (1 - p))``, symmetric about 0.5; both tails zoom.

The axis is a matplotlib ``FuncScale`` with exactly these functions, so data
stay probabilities (bars keep their bin edges as corners and are drawn at their
true widths on the scale) and the ticks are placed at the probabilities they
name (0.9, 0.99, 0.999, then ``1-1e-4``...).  ``"auto"`` picks the error-rate
scale when more than half of the scores are above 0.99 (:data:`AUTO_THRESHOLD`),
else the linear one.  The limits reach half a decade beyond the score (or bin
edge, or mean) nearest to 1 that is not 1 itself; scores of exactly 1 (a float32
softmax saturates) are drawn at the limit.
"""

from __future__ import annotations

import numpy as np

from calkit._validation import check_option

SCALES = ("linear", "logit", "-log(1-p)", "auto")
AUTO_THRESHOLD = 0.99
_MAX_DECADES = 12  # 1 - 1e-12: beyond float32 resolution, inside float64's
_TINY = 10.0 ** -(_MAX_DECADES + 4)


def _error_rate(p):
    p = np.asarray(p, dtype=np.float64)
    return -np.log10(np.clip(1 - p, _TINY, None))


def _error_rate_inv(u):
    return 1 - 10.0 ** (-np.asarray(u, dtype=np.float64))


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), _TINY, 1 - _TINY)
    return np.log10(p) - np.log10(1 - p)


def _logit_inv(u):
    return 1 / (1 + 10.0 ** (-np.asarray(u, dtype=np.float64)))


def _identity(p):
    return np.asarray(p, dtype=np.float64)


FUNCTIONS = {"linear": (_identity, _identity), "-log(1-p)": (_error_rate, _error_rate_inv),
             "logit": (_logit, _logit_inv)}


def resolve(scale: str, share_above: float | None) -> tuple[str, str | None]:
    """The scale to draw and, for ``"auto"`` choosing a zoom, the reason to print.

    ``"error-rate"`` is accepted as another name of ``"-log(1-p)"`` (handy on a command
    line, where a value starting with ``-`` reads as an option).
    """
    if scale == "error-rate":
        scale = "-log(1-p)"
    check_option(scale, "confidence_scale", SCALES)
    if scale != "auto":
        return scale, None
    if share_above is not None and share_above > 0.5:
        return "-log(1-p)", (f"error-rate scale: {100 * share_above:.0f}% of the confidences are "
                             f"above {AUTO_THRESHOLD}")
    return "linear", None


def share_above_from_tables(tables) -> float:
    """Lower bound of the share of scores above 0.99: the bins lying wholly above it."""
    shares = []
    for t in tables:
        above = np.asarray(t.edges[:-1]) >= AUTO_THRESHOLD
        shares.append(float(np.asarray(t.count)[above].sum()) / max(t.n_samples, 1))
    return max(shares) if shares else 0.0


def limits(scale: str, values) -> tuple[float, float]:
    """Axis limits on ``scale`` covering ``values`` (probabilities; NaN ignored)."""
    if scale == "linear":
        return 0.0, 1.0
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    below_one = v[v < 1]
    err = 1 - below_one.max() if below_one.size else 1e-2
    decades = int(np.clip(np.ceil(-np.log10(max(err, _TINY)) + 0.5), 2, _MAX_DECADES))
    high = 1 - 10.0 ** -decades
    if scale == "-log(1-p)":
        return 0.0, high
    above_zero = v[v > 0]
    small = above_zero.min() if above_zero.size else 1e-2
    low_decades = int(np.clip(np.ceil(-np.log10(max(small, _TINY)) + 0.5), 1, _MAX_DECADES))
    return 10.0 ** -low_decades, high


def accuracy_limit(scale: str, high: float, max_count: int) -> float:
    """Upper limit of the accuracy axis: ``high``, or closer to 0.5 where the bins are too
    small to resolve it (a bin of ``n`` samples resolves accuracies to ``1/n``; the axis
    reaches a decade beyond, and an accuracy of 1 is drawn at the top)."""
    if scale == "linear":
        return 1.0
    decades = int(np.ceil(np.log10(max(max_count, 1)))) + 1
    return min(high, 1 - 10.0 ** -max(decades, 2))


def _decades(top: int) -> list[int]:
    """Decades of error rate to label: all up to 4, then every second (or third) one."""
    step = 1 if top <= 5 else 2 if top <= 9 else 3
    return [k for k in range(1, top + 1) if k <= 3 or (k - 3) % step == 0]


def ticks(scale: str, low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick positions (probabilities) and their labels."""
    if scale == "linear":
        values = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        return values, [f"{v:g}" for v in values]
    top = int(round(-np.log10(1 - high)))
    kept = _decades(top)
    upper = [1 - 10.0 ** -k for k in kept]
    upper_labels = ["0." + "9" * k if k <= 4 else f"1-1e-{k}" for k in kept]
    if scale == "-log(1-p)":
        return [0.0] + upper, ["0"] + upper_labels
    bottom = int(round(-np.log10(low)))
    lower = [10.0 ** -k for k in range(bottom, 0, -1)]
    lower_labels = ["0." + "0" * (k - 1) + "1" if k <= 4 else f"1e-{k}"
                    for k in range(bottom, 0, -1)]
    return lower + [0.5] + upper, lower_labels + ["0.5"] + upper_labels


def midpoints(scale: str, edges) -> np.ndarray:
    """Midpoint of each bin as drawn on ``scale`` (where a bin's two count bars meet)."""
    forward, inverse = FUNCTIONS[scale]
    u = forward(edges)
    return inverse((u[:-1] + u[1:]) / 2)


def apply(ax, scale: str, low: float, high: float, axis: str = "x") -> None:
    """Set ``scale`` with limits ``(low, high)`` and its ticks on ``ax``'s ``axis``."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    if scale != "linear":
        (ax.set_xscale if axis == "x" else ax.set_yscale)("function",
                                                          functions=FUNCTIONS[scale])
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)
    values, labels = ticks(scale, low, high)
    target.set_major_locator(FixedLocator(values))
    target.set_major_formatter(FixedFormatter(labels))
    if scale != "linear":
        target.set_minor_locator(NullLocator())
