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


def panel_grid(n_panels: int, with_hist: bool, panel_size=(4.6, 4.2), ncols: int | None = None,
               sharey: bool = False):
    """A figure with ``n_panels`` main axes in rows of ``ncols`` (default: one row) and,
    optionally, a count panel under each (height ratio 3:1, sharing its x axis).

    Returns (figure, axes, hist_axes); ``hist_axes`` is a list of None without counts.
    Unused grid cells are removed.
    """
    plt = pyplot()
    ncols = n_panels if ncols is None else max(1, min(int(ncols), n_panels))
    nrows = -(-n_panels // ncols)
    width, height = panel_size
    per_row = 2 if with_hist else 1
    fig = plt.figure(figsize=(width * ncols, height * nrows * (4 / 3 if with_hist else 1)),
                     layout="constrained")
    grid = fig.add_gridspec(per_row * nrows, ncols,
                            height_ratios=[3, 1] * nrows if with_hist else None)
    axes, hist_axes = [], []
    for i in range(n_panels):
        row, col = divmod(i, ncols)
        share = axes[0] if (sharey and axes) else None
        ax = fig.add_subplot(grid[per_row * row, col], sharey=share)
        axes.append(ax)
        hist_axes.append(fig.add_subplot(grid[per_row * row + 1, col], sharex=ax)
                         if with_hist else None)
    return fig, axes, hist_axes


def hist_axes_below(ax, size: str = "32%", pad: float = 0.08):
    """A count panel under ``ax``, sharing its x axis, taken from ``ax``'s own space
    (so it never covers the diagram's bars or markers)."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    return make_axes_locatable(ax).append_axes("bottom", size=size, pad=pad, sharex=ax)
