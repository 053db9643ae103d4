"""calkit.integrations.spark on a local[2] SparkSession (slow: Spark starts in 10-20 s)."""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pyspark = pytest.importorskip("pyspark")

import calkit  # noqa: E402
from calkit.integrations.spark import accumulate_spark, evaluate_spark  # noqa: E402
from calkit.stream import CalibrationAccumulator  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.skipif(shutil.which("java") is None, reason="PySpark needs Java")]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must import calkit and pandas
    session = (SparkSession.builder.master("local[2]")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_binary_scores_in_a_spark_table_equal_one_process(spark):
    rng = np.random.default_rng(0)
    n = 50_000
    score = rng.uniform(size=n)
    clicked = (rng.uniform(size=n) < score ** 1.5).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frame = spark.createDataFrame(pd.DataFrame({"clicked": clicked, "p_click": score}))
    frame = frame.repartition(4)
    acc = accumulate_spark(frame, "clicked", "p_click", n_bins=20, view="positive")
    ref = CalibrationAccumulator(n_bins=20, view="positive").update(clicked, score).compute()
    got = acc.compute()
    assert got["n_samples"] == n
    for key in ("ece", "mce", "debiased_ece_uniform", "brier", "nll", "accuracy"):
        assert got[key] == pytest.approx(ref[key], rel=1e-12)
    assert got["brier"] == pytest.approx(calkit.brier_score(clicked, score), rel=1e-12)


def test_multiclass_columns_and_empty_frames(spark):
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), size=3000)
    y = rng.integers(0, 3, size=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frame = spark.createDataFrame(pd.DataFrame({"y": y, "a": p[:, 0], "b": p[:, 1],
                                                    "c": p[:, 2]}))
    out = evaluate_spark(frame, "y", ["a", "b", "c"])
    assert out["ece"] == pytest.approx(calkit.ece(y, p), rel=1e-12)
    empty = accumulate_spark(frame.filter("y < 0"), "y", ["a", "b", "c"])
    assert empty.n_samples == 0
    with pytest.raises(ValueError, match="not in the frame"):
        accumulate_spark(frame, "y", ["d"])
