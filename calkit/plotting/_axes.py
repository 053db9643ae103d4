"""matplotlib access for the Displays: a lazy import and figure/axes creation.

matplotlib is an optional extra; nothing in :mod:`calkit.plotting` imports it at
module level, so ``import calkit.plotting`` works without it and the error only
comes when a diagram is drawn.
"""

from __future__ import annotations


def pyplot():
    """Import ``matplotlib.pyplot``, with a clear error when it is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - only without matplotlib
        raise ImportError("calkit's diagrams need matplotlib: pip install 'calkit[plot]'") from exc
    return plt


def colors(n: int) -> list:
    """``n`` distinct colours of matplotlib's default cycle (repeating if needed)."""
    cycle = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


def panel_grid(n_panels: int, with_hist: bool, panel_size=(4.6, 4.2)):
    """A figure with ``n_panels`` main axes side by side and, optionally, a
    count panel under each (height ratio 3:1).  Returns (figure, axes, hist_axes)."""
    plt = pyplot()
    width, height = panel_size
    if not with_hist:
        fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height),
                                 squeeze=False, layout="constrained")
        return fig, list(axes[0]), [None] * n_panels
    fig, axes = plt.subplots(2, n_panels, figsize=(width * n_panels, height * 4 / 3),
                             squeeze=False, sharex="col", layout="constrained",
                             gridspec_kw={"height_ratios": [3, 1]})
    return fig, list(axes[0]), list(axes[1])


def inset_hist_axes(ax):
    """A small count panel inside ``ax``, under the legend, where top-label bins are empty."""
    return ax.inset_axes([0.09, 0.45, 0.32, 0.24])

