"""Result objects as plain data: JSON-ready dicts, pandas data frames, notebook HTML.

Every result class of calkit (bin tables, calibration results, bootstrap
intervals, risk-coverage curves, OOD metrics, smooth-ECE curves) mixes in
:class:`Exportable` and says two things: its JSON-ready :meth:`to_dict` and
the columns of its data frame (:meth:`Exportable._frame_columns`).  This module
turns those into ``to_frame()`` (pandas, imported only when called) and
``_repr_html_()`` (a small HTML table for Jupyter), so the three stay
consistent.  NaN and infinities become ``None`` in dicts, so that
``json.loads(json.dumps(result.to_dict()))`` gives the dict back.
"""

from __future__ import annotations

import html
import math

import numpy as np

from calkit._array import is_torch, to_numpy

_HTML_ROWS = 20  # rows shown by _repr_html_ before the table is cut


def json_ready(obj):
    """``obj`` with arrays as lists, numpy/torch scalars as Python numbers, NaN/inf as None."""
    if hasattr(obj, "to_dict") and not isinstance(obj, dict) and not _is_frame(obj):
        return json_ready(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if is_torch(obj):
        obj = to_numpy(obj)
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)  # e.g. a numpy Generator given as random_state


def _is_frame(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas"


def import_pandas():
    """Import pandas, with an install hint when it is missing."""
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - only without pandas
        raise ImportError("to_frame() needs pandas: pip install pandas") from exc
    return pandas


def _column(values) -> np.ndarray:
    if is_torch(values):
        values = to_numpy(values)
    return np.asarray(values)


class Exportable:
    """Mixin: ``to_frame()`` and ``_repr_html_()`` from ``_frame_columns()`` and ``to_dict()``."""

    def to_dict(self) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _frame_columns(self) -> dict:
        """Column name -> 1-D values (equal lengths); default: one row of the scalars."""
        return {k: [v] for k, v in self.to_dict().items()
                if not isinstance(v, (dict, list))}

    def to_frame(self):
        """A pandas ``DataFrame`` of the result (pandas is imported on first use)."""
        pd = import_pandas()
        return pd.DataFrame({k: _column(v) for k, v in self._frame_columns().items()})

    def _repr_html_(self) -> str:
        columns = {k: _column(v) for k, v in self._frame_columns().items()}
        names = list(columns)
        n = len(next(iter(columns.values()))) if columns else 0
        shown = min(n, _HTML_ROWS)
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in names)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(columns[c][i]))}</td>"
                                        for c in names) + "</tr>" for i in range(shown))
        more = f"<p>{n - shown} more rows: see .to_frame()</p>" if n > shown else ""
        title = html.escape(repr(self))
        return (f"<div><p><code>{title}</code></p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{more}</div>")


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if v != v else f"{float(v):.6g}"
    return str(v)
