"""Throughput (rows/s) of calkit's evaluation engines on one machine (issue 17, scale guide).

Run: ``python benchmarks/bench_engines.py [--rows N] [--classes K] [--no-spark]``.

The same float32 probabilities (N x K, default 2,000,000 x 10) are evaluated by:
* one ``CalibrationAccumulator.update`` call (numpy, in memory), and through torch (CPU);
* ``accumulate_chunked`` on a memory-mapped ``.npy`` file (16 MiB blocks);
* ``accumulate_dask`` on the threaded scheduler, and ``evaluate_parquet`` (8 part files)
  on a ``LocalCluster`` with 2 worker processes (cluster start not timed);
* ``accumulate_spark`` on ``local[2]`` from the same Parquet files (session start not
  timed; the first action warms up the Python workers).
Each row is one run after a warm-up run on a small slice; rows/s = N / seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import machine, print_table  # noqa: E402

from calkit.chunked import accumulate_chunked, accumulate_dask  # noqa: E402
from calkit.stream import CalibrationAccumulator  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    n, k = args.rows, args.classes
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, k)).astype(np.float32) * 3
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, k, size=n)
    ref = CalibrationAccumulator().update(y, p).compute()["ece"]
    rows = []

    def add(engine, seconds, acc, note=""):
        ece = acc.compute()["ece"]
        rows.append(dict(engine=engine, rows=n, seconds=seconds, rows_per_s=n / seconds,
                         same_ece=bool(abs(float(ece) - ref) < 1e-12), note=note))
        print(rows[-1], flush=True)

    CalibrationAccumulator().update(y[:1000], p[:1000])
    add("CalibrationAccumulator.update (numpy)", *timed(
        lambda: CalibrationAccumulator().update(y, p)))
    try:
        import torch

        pt, yt = torch.from_numpy(p), torch.from_numpy(y)
        CalibrationAccumulator().update(yt[:1000], pt[:1000])
        add("CalibrationAccumulator.update (torch CPU)", *timed(
            lambda: CalibrationAccumulator().update(yt, pt)))
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "p.npy", p)
        np.save(tmp / "y.npy", y)
        add("accumulate_chunked (memory-mapped .npy)", *timed(
            lambda: accumulate_chunked(tmp / "y.npy", tmp / "p.npy")), "16 MiB blocks")
        import dask.array as da

        dy, dp = da.from_array(y, chunks=n // 8), da.from_array(p, chunks=(n // 8, k))
        add("accumulate_dask (threads)", *timed(
            lambda: accumulate_dask(dy, dp, scheduler="threads")), "8 blocks")
        import pandas as pd

        folder = tmp / "parquet"
        folder.mkdir()
        cols = [f"p{j}" for j in range(k)]
        for i, part in enumerate(np.array_split(np.arange(n), 8)):
            pd.DataFrame({"label": y[part], **{c: p[part, j] for j, c in enumerate(cols)}}
                         ).to_parquet(folder / f"part-{i}.parquet")
        from distributed import Client, LocalCluster

        from calkit.integrations.dask import accumulate_dataframe

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            import dask.dataframe as dd

            frame = dd.read_parquet(folder, columns=["label", *cols], engine="pyarrow")
            accumulate_dataframe(frame.partitions[0], "label", cols)  # warm-up
            add("Dask LocalCluster, 2 processes, Parquet", *timed(
                lambda: accumulate_dataframe(frame, "label", cols)), "8 files, read included")
        if not args.no_spark:
            os.environ["PYSPARK_PYTHON"] = sys.executable
            from pyspark.sql import SparkSession

            from calkit.integrations.spark import accumulate_spark

            spark = (SparkSession.builder.master("local[2]")
                     .config("spark.ui.enabled", "false")
                     .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                     .config("spark.driver.memory", "4g").getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            frame = spark.read.parquet(str(folder))
            accumulate_spark(frame.limit(1000), "label", cols)  # warm-up
            add("Spark local[2], Parquet", *timed(
                lambda: accumulate_spark(frame, "label", cols)), "8 files, read included")
            spark.stop()
    print(f"\n{n:,} x {k} float32 probabilities; {machine()}\n")
    print_table(rows, ["engine", "rows", "seconds", "rows_per_s", "same_ece", "note"])


if __name__ == "__main__":
    main()
