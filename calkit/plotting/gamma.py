"""AdaFocal dynamics: per-bin calibration gap ``E_b`` and focal ``gamma_b`` over training.

The history is a list of records, one per gamma update (the AdaFocal loss's
``history``), each a mapping with

``epoch``
    int or float, the x position.
``E_b`` (aliases ``gap``, ``gaps``, ``calibration_gap``)
    sequence of B floats, validation ``mean confidence - accuracy`` per bin.
``gamma_b`` (aliases ``gamma``, ``gammas``)
    sequence of B floats, the gamma of each bin after the update.
``edges`` (optional)
    sequence of B + 1 bin edges.

B may change between records (collapsed equal-mass edges); bin ``b`` is the
``b``-th bin of each record and missing bins are left blank.  This reproduces
the AdaFocal paper's Fig. 5 (gamma and E_b of low, middle and high bins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from calkit.plotting._axes import pyplot

_GAP_KEYS = ("E_b", "gap", "gaps", "calibration_gap")
_GAMMA_KEYS = ("gamma_b", "gamma", "gammas")


def _field(record: Mapping, keys: tuple, i: int) -> np.ndarray:
    for key in keys:
        if key in record:
            values = np.asarray(record[key], dtype=np.float64).ravel()
            if values.size == 0:
                raise ValueError(f"history record {i}: {key!r} is empty")
            return values
    raise ValueError(f"history record {i} has none of the keys {list(keys)}")


def history_arrays(history: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs (T,), E (T, B), gamma (T, B))`` from a history, NaN-padded to the largest B.

    Examples
    --------
    >>> from calkit.plotting.gamma import history_arrays
    >>> h = [{"epoch": 0, "E_b": [0.1, -0.2], "gamma_b": [1.1, 0.8]},
    ...      {"epoch": 1, "E_b": [0.05], "gamma_b": [1.2]}]
    >>> epochs, gaps, gammas = history_arrays(h)
    >>> epochs.tolist(), gammas.tolist()
    ([0.0, 1.0], [[1.1, 0.8], [1.2, nan]])
    """
    if isinstance(history, Mapping) or len(history) == 0:
        raise ValueError("history must be a non-empty list of records")
    epochs = np.array([float(r.get("epoch", i)) for i, r in enumerate(history)])
    gaps = [_field(r, _GAP_KEYS, i) for i, r in enumerate(history)]
    gammas = [_field(r, _GAMMA_KEYS, i) for i, r in enumerate(history)]
    for i, (g, m) in enumerate(zip(gaps, gammas, strict=True)):
        if g.shape != m.shape:
            raise ValueError(f"history record {i}: {g.size} gaps but {m.size} gammas")
    width = max(g.size for g in gaps)
    return epochs, _pad(gaps, width), _pad(gammas, width)


def _pad(rows: list, width: int) -> np.ndarray:
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):  # one row per epoch, not per sample
        out[i, :row.size] = row
    return out


class GammaDynamicsDisplay:
    """Per-bin ``E_b`` (top) and ``gamma_b`` (bottom) against the epoch.

    Attributes
    ----------
    epochs : array (T,)
    gaps, gammas : arrays (T, B)
    bins : list of int
        The bins drawn.
    gap_lines_, gamma_lines_ : list of Line2D
        One per drawn bin; ``gamma_lines_[j].get_ydata()`` is ``gammas[:, bins[j]]``.
    axes_, figure_

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from calkit.plotting import GammaDynamicsDisplay
    >>> h = [{"epoch": e, "E_b": [0.02, -0.01, 0.03], "gamma_b": [1 + e, 1 - 0.1 * e, 2.0]}
    ...      for e in range(5)]
    >>> disp = GammaDynamicsDisplay.from_history(h)
    >>> disp.gamma_lines_[0].get_ydata().tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> matplotlib.pyplot.close(disp.figure_)
    """

    def __init__(self, epochs, gaps, gammas):
        self.epochs, self.gaps, self.gammas = epochs, gaps, gammas

    @classmethod
    def from_history(cls, history: Sequence[Mapping], *, bins: Sequence[int] | None = None,
                     axes=None) -> GammaDynamicsDisplay:
        """Read the history (format in the module docstring) and plot it.

        Parameters
        ----------
        history : list of mappings
        bins : sequence of int, optional
            Bins to draw (default: all).  Negative indices count from the top bin.
        axes : pair of Axes, optional
            Where to draw E_b and gamma.
        """
        return cls(*history_arrays(history)).plot(bins=bins, axes=axes)

    def plot(self, *, bins: Sequence[int] | None = None, axes=None) -> GammaDynamicsDisplay:
        """Draw one line per bin, coloured from low (dark) to high (yellow) bins."""
        n_bins = self.gammas.shape[1]
        chosen = list(range(n_bins)) if bins is None else [int(b) % n_bins for b in bins]
        if axes is None:
            _, axes = pyplot().subplots(2, 1, sharex=True, figsize=(6.4, 5.6),
                                        layout="constrained")
        self.axes_, self.figure_ = list(axes), axes[0].figure
        cmap = pyplot().get_cmap("viridis")
        shades = np.linspace(0, 0.92, max(len(chosen), 2))
        self.bins, self.gap_lines_, self.gamma_lines_ = chosen, [], []
        for b, shade in zip(chosen, shades, strict=False):
            kw = dict(color=cmap(shade), lw=1.4, marker="o", ms=2.5, label=f"bin {b}")
            self.gap_lines_.append(self.axes_[0].plot(self.epochs, self.gaps[:, b], **kw)[0])
            self.gamma_lines_.append(self.axes_[1].plot(self.epochs, self.gammas[:, b], **kw)[0])
        top, bottom = self.axes_
        top.axhline(0, color="0.4", lw=0.8, ls="--")
        top.set(ylabel="$E_b$ = confidence - accuracy", title="AdaFocal per-bin dynamics")
        bottom.axhline(0, color="0.4", lw=0.8, ls="--")
        bottom.set(xlabel="epoch", ylabel=r"$\gamma_b$")
        for a in self.axes_:
            a.grid(alpha=0.25)
        top.legend(fontsize="x-small", ncol=max(1, len(chosen) // 8), loc="best")
        return self
