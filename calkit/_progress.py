"""Progress bars on stderr: ``tqdm`` when it is installed, else plain text.

One :class:`ProgressBar` serves every long loop in calkit (bootstrap
resamples, chunked row scans); it never makes ``tqdm`` a dependency.
"""

from __future__ import annotations

import sys

__all__ = ["ProgressBar"]


class ProgressBar:
    """A progress bar on stderr: ``tqdm`` when installed, else a plain text counter.

    The fallback rewrites one line (``desc: done/total (pct%)``) at most every
    5 % and ends it with a newline on :meth:`close`.  A disabled bar does nothing.

    Parameters
    ----------
    total : int
        Number of steps (resamples, rows...) the work takes.
    desc : str
        Label shown in front of the bar.
    enable : bool, default=True
        Show anything at all; a disabled bar only counts :attr:`done`.
    unit : str, default="resample"
        What one step is, for the tqdm bar.
    lines : bool, default=False
        Log-friendly form for long scans: a ``tqdm.auto`` bar with scaled
        counts that stays on screen, or without tqdm a full line
        (``desc: done / total unit``) per 10 % instead of one rewritten line.

    Examples
    --------
    >>> from calkit.metrics.bootstrap import ProgressBar
    >>> bar = ProgressBar(10, "work", enable=False)
    >>> bar.update(4); bar.update(6); bar.close()
    >>> bar.done
    10
    """

    def __init__(self, total: int, desc: str, enable: bool = True, *, unit: str = "resample",
                 lines: bool = False):
        self.total, self.desc, self.done = int(total), desc, 0
        self.unit, self.lines = unit, lines
        self._tqdm = self._shown = None
        if not enable:
            return
        try:
            if lines:
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
        except ImportError:
            self._shown = -1
            if not lines:
                self._write()
        else:
            options = (dict(unit_scale=True) if lines
                       else dict(leave=False, file=sys.stderr))
            self._tqdm = tqdm(total=self.total, desc=desc, unit=unit, **options)

    def _write(self, end: str = "") -> None:
        if self.lines:
            tenth = 10 * self.done // max(self.total, 1)
            if tenth != self._shown:
                self._shown = tenth
                print(f"{self.desc}: {self.done:,} / {self.total:,} {self.unit}",
                      file=sys.stderr)
            return
        pct = int(100 * self.done / max(self.total, 1))
        if pct // 5 != self._shown // 5 or end:
            self._shown = pct
            sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} ({pct}%){end}")
            sys.stderr.flush()

    def update(self, k: int = 1) -> None:
        """Count ``k`` more steps done and redraw the bar when it moved."""
        self.done += k
        if self._tqdm is not None:
            self._tqdm.update(k)
        elif self._shown is not None:
            self._write()

    def close(self) -> None:
        """Close the tqdm bar, or end the plain counter's line."""
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._shown is not None and not self.lines:
            self._write(end="\n")
