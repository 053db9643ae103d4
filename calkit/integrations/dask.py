"""Dask DataFrames and partitioned Parquet datasets: one fixed-size state per partition.

:func:`accumulate_dataframe` turns every partition of a ``dask.dataframe`` of
(label, score columns) into a :class:`~calkit.stream.CalibrationAccumulator`
(one task per partition) and merges the states pairwise in a tree, so a worker
holds one partition and ``O(n_bins x n_classes)`` of state (plus 5 bytes per
sample with ``exact=True``) and only the states travel between worker processes.
It runs on whatever scheduler is active, e.g. a ``dask.distributed`` cluster.
:func:`evaluate_parquet` reads only the needed columns of a Parquet dataset (a
file, a folder of part files or a glob) and returns the metrics.

For ``dask.array`` inputs see :func:`calkit.chunked.accumulate_dask`; both use
the same block state and tree merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike, fspath

import numpy as np

from calkit.chunked import tree_reduce
from calkit.logits import softmax
from calkit.stream import CalibrationAccumulator

__all__ = ["accumulate_dataframe", "evaluate_parquet", "partition_state"]


def _columns(label, scores) -> tuple[str, list[str]]:
    if not isinstance(label, str):
        raise TypeError(f"label must be a column name, got {type(label).__name__}")
    cols = [scores] if isinstance(scores, str) else list(scores)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise ValueError("scores must be a column name or a non-empty sequence of column names")
    if label in cols:
        raise ValueError(f"label column {label!r} is also a score column")
    return label, cols


def partition_state(frame, label: str, scores: Sequence[str], from_logits: bool = False,
                    settings: dict | None = None) -> CalibrationAccumulator:
    """The accumulator of one pandas partition (what every Dask or Spark task computes).

    One score column is a binary task's ``P(y = 1)``; several are the class
    probabilities (or logits with ``from_logits=True``) in class order.

    Examples
    --------
    >>> import pytest
    >>> pd = pytest.importorskip("pandas")
    >>> from calkit.integrations.dask import partition_state
    >>> frame = pd.DataFrame({"y": [1, 0, 1], "p": [0.9, 0.2, 0.6]})
    >>> acc = partition_state(frame, "y", ["p"], settings={"n_bins": 5, "view": "positive"})
    >>> acc.n_samples, round(acc.compute()["brier"], 4)
    (3, 0.07)
    """
    label, cols = _columns(label, scores)
    acc = CalibrationAccumulator(**(settings or {}))
    if len(frame) == 0:
        return acc
    y = frame[label].to_numpy()
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"label column {label!r} must hold integer class labels")
        y = y.astype(np.int64)
    p = frame[cols].to_numpy(dtype=np.float64) if len(cols) > 1 else frame[cols[0]].to_numpy(
        dtype=np.float64)
    if from_logits:
        if p.ndim == 1:
            raise ValueError("from_logits=True needs one logit column per class")
        p = softmax(p)
    return acc.update(y, p)


def accumulate_dataframe(frame, label: str, scores, *, from_logits: bool = False,
                         scheduler=None, **accumulator_kwargs) -> CalibrationAccumulator:
    """Accumulate a Dask DataFrame of (label, score columns), partition by partition.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        One row per sample.
    label : str
        Integer label column.
    scores : str or sequence of str
        ``P(y = 1)`` column (binary), or the probability (logit) columns in
        class order.
    from_logits : bool, default=False
        Softmax over the score columns first (per partition).
    scheduler : optional
        Passed to ``dask.compute``; default: the active scheduler (a
        ``distributed.Client`` when one is running).
    **accumulator_kwargs
        Settings of the :class:`~calkit.stream.CalibrationAccumulator`.

    Returns
    -------
    CalibrationAccumulator
        Equal (to float64 rounding) to one accumulator fed all rows.

    Examples
    --------
    >>> import numpy as np
    >>> import pytest
    >>> pd = pytest.importorskip("pandas")
    >>> dd = pytest.importorskip("dask.dataframe")
    >>> import calkit
    >>> from calkit.integrations.dask import accumulate_dataframe
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=3000)
    >>> y = rng.integers(0, 3, size=3000)
    >>> frame = pd.DataFrame({"label": y, "p0": p[:, 0], "p1": p[:, 1], "p2": p[:, 2]})
    >>> acc = accumulate_dataframe(dd.from_pandas(frame, npartitions=4), "label",
    ...                            ["p0", "p1", "p2"], scheduler="synchronous")
    >>> acc.n_samples, abs(acc.compute()["ece"] - calkit.ece(y, p)) < 1e-12
    (3000, True)
    """
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - only without dask
        raise ImportError("accumulate_dataframe needs Dask: pip install 'calkit[dask]'") from exc
    label, cols = _columns(label, scores)
    missing = [c for c in [label, *cols] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame (it has {list(frame.columns)})")
    settings = dict(accumulator_kwargs)
    CalibrationAccumulator(**settings)  # invalid settings fail here, not in a worker
    parts = [dask.delayed(partition_state)(part, label, cols, from_logits, settings)
             for part in frame[[label, *cols]].to_delayed()]
    if not parts:
        return CalibrationAccumulator(**settings)
    total = tree_reduce(parts, dask.delayed(CalibrationAccumulator.merge))
    (result,) = dask.compute(total, scheduler=scheduler)
    return result


def evaluate_parquet(path, label: str, scores, *, scheduler=None, **kwargs) -> dict:
    """Metrics of a (partitioned) Parquet dataset read with ``dask.dataframe``.

    Only the ``label`` and ``scores`` columns are read, one Parquet file (or
    row group, as Dask splits it) per task.  ``kwargs`` go to
    :func:`accumulate_dataframe` (``from_logits``, ``n_bins``, ``exact``...).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import pytest
    >>> pd = pytest.importorskip("pandas")
    >>> _ = pytest.importorskip("pyarrow")
    >>> _ = pytest.importorskip("dask.dataframe")
    >>> import calkit
    >>> from calkit.integrations.dask import evaluate_parquet
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=2000); y = (rng.uniform(size=2000) < p).astype(int)
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     pd.DataFrame({"y": y[i::4], "score": p[i::4]}).to_parquet(
    ...         os.path.join(folder, f"part-{i}.parquet"))
    >>> out = evaluate_parquet(folder, "y", "score", view="positive", scheduler="synchronous")
    >>> out["n_samples"], abs(out["brier"] - calkit.brier_score(y, p)) < 1e-12
    (2000, True)
    """
    import dask.dataframe as dd

    label, cols = _columns(label, scores)
    source = fspath(path) if isinstance(path, (str, PathLike)) else path
    frame = dd.read_parquet(source, columns=[label, *cols], engine="pyarrow")
    return accumulate_dataframe(frame, label, cols, scheduler=scheduler, **kwargs).compute()
