"""PySpark: calibration of scores that live in Spark tables, from fixed-size states.

:func:`accumulate_spark` selects the label and score columns, turns every Arrow
batch of every partition into a :class:`~calkit.stream.CalibrationAccumulator`
(``DataFrame.mapInPandas``; one pickled state of a few hundred bytes per batch
leaves the Python worker), and merges the states with ``RDD.treeAggregate`` (a tree
reduce that also accepts an empty frame), so no
row is collected to the driver and each executor holds one batch plus the
fixed-size state.  One score column is a binary task's ``P(y = 1)`` (ad-click,
fraud), several are class probabilities in class order.

The Python workers must import calkit and pandas: set ``PYSPARK_PYTHON`` to the
interpreter of the environment (``sys.executable``) before the ``SparkSession``
starts.  PySpark needs Java 17 or newer.
"""

from __future__ import annotations

import pickle

from calkit.integrations.dask import _columns, partition_state
from calkit.stream import CalibrationAccumulator

__all__ = ["accumulate_spark", "evaluate_spark"]


def _states(label, cols, from_logits, settings):
    def states(batches):
        import pandas as pd

        for frame in batches:
            acc = partition_state(frame, label, cols, from_logits, settings)
            yield pd.DataFrame({"state": [pickle.dumps(acc)]})

    return states


def accumulate_spark(frame, label: str, scores, *, from_logits: bool = False,
                     depth: int = 2, **accumulator_kwargs) -> CalibrationAccumulator:
    """Accumulate a Spark DataFrame of (label, score columns) into one fixed-size state.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per sample.
    label : str
        Integer (0/1 for binary) label column.
    scores : str or sequence of str
        ``P(y = 1)`` column, or the probability (logit) columns in class order.
    from_logits : bool, default=False
        Softmax over the score columns first.
    depth : int, default=2
        Depth of the merge tree (``treeAggregate``).
    **accumulator_kwargs
        Settings of the :class:`~calkit.stream.CalibrationAccumulator`.

    Returns
    -------
    CalibrationAccumulator

    Examples
    --------
    A SparkSession takes 10 s or more to start, so this example is not run by
    the test suite (tests/test_integrations_spark.py runs it, marked slow).

    >>> import os, sys
    >>> os.environ["PYSPARK_PYTHON"] = sys.executable       # workers need calkit  # doctest: +SKIP
    >>> from pyspark.sql import SparkSession                                       # doctest: +SKIP
    >>> from calkit.integrations.spark import accumulate_spark
    >>> spark = SparkSession.builder.master("local[2]").getOrCreate()             # doctest: +SKIP
    >>> clicks = spark.read.parquet("clicks/")        # columns clicked, p_click  # doctest: +SKIP
    >>> acc = accumulate_spark(clicks, "clicked", "p_click", view="positive")      # doctest: +SKIP
    >>> acc.compute()["ece"]                                                       # doctest: +SKIP
    0.0123
    """
    label, cols = _columns(label, scores)
    missing = [c for c in [label, *cols] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame (it has {frame.columns})")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    settings = dict(accumulator_kwargs)
    empty = CalibrationAccumulator(**settings)  # invalid settings fail here, not in a worker
    states = frame.select(label, *cols).mapInPandas(
        _states(label, cols, from_logits, settings), schema="state binary")
    rdd = states.rdd.map(lambda row: pickle.loads(row.state))
    # the empty state is copied to every partition, so merging into it in place is safe;
    # an empty frame gives it back unchanged (treeReduce would raise, isEmpty costs a job)
    return rdd.treeAggregate(empty, CalibrationAccumulator.merge, CalibrationAccumulator.merge,
                              depth=depth)


def evaluate_spark(frame, label: str, scores, **kwargs) -> dict:
    """:func:`accumulate_spark`, then :meth:`~calkit.stream.CalibrationAccumulator.compute`.

    Examples
    --------
    As :func:`accumulate_spark` (needs a running SparkSession, so not run here):

    >>> from calkit.integrations.spark import evaluate_spark
    >>> out = evaluate_spark(clicks, "clicked", "p_click", view="positive")       # doctest: +SKIP
    >>> sorted(out)[:3]                                                            # doctest: +SKIP
    ['accuracy', 'brier', 'debiased_ece_uniform']
    """
    return accumulate_spark(frame, label, scores, **kwargs).compute()
