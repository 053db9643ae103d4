"""calkit.integrations.dask on a real dask.distributed LocalCluster with worker processes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import calkit  # noqa: E402
from calkit.chunked import accumulate_dask  # noqa: E402
from calkit.integrations.dask import (  # noqa: E402
    accumulate_dataframe,
    evaluate_parquet,
    partition_state,
)
from calkit.stream import CalibrationAccumulator  # noqa: E402

N, K = 8_000, 5
KEYS = ("ece", "rmsce", "mce", "debiased_ece_uniform", "accuracy", "brier", "nll", "classwise_ece")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


def predictions(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, K)) * 2
    y = rng.integers(0, K, size=N)
    return y, logits, calkit.softmax(logits)


def single(y, p, **kw):
    return CalibrationAccumulator(**kw).update(y, p).compute()


def test_accumulate_dask_arrays_on_worker_processes(client):
    y, _, p = predictions()
    with distributed.get_task_stream(client) as stream:
        acc = accumulate_dask(da.from_array(y, chunks=1000), da.from_array(p, chunks=(1000, K)),
                              classwise=True)
    workers = {t["worker"] for t in stream.data}
    assert len(workers) == 2  # the block states were computed in two other processes
    got, ref = acc.compute(), single(y, p, classwise=True)
    assert got["n_samples"] == N
    for key in KEYS:
        assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15)


def test_partitioned_parquet_through_dask_dataframe(client, tmp_path):
    y, logits, p = predictions(1)
    cols = [f"p{k}" for k in range(K)]
    for i, part in enumerate(np.array_split(np.arange(N), 8)):
        frame = pd.DataFrame({"label": y[part], **{c: p[part, k] for k, c in enumerate(cols)},
                              **{f"z{k}": logits[part, k] for k in range(K)},
                              "unused": np.zeros(len(part))})
        frame.to_parquet(tmp_path / f"part-{i:02d}.parquet")
    assert dd.read_parquet(tmp_path, engine="pyarrow").npartitions == 8
    got = evaluate_parquet(tmp_path, "label", cols, classwise=True, exact=True,
                           pair_dtype="float64")
    ref = single(y, p, classwise=True)
    for key in KEYS:
        assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15)
    assert got["ece_quantile"] == pytest.approx(calkit.ece(y, p, strategy="quantile"),
                                                rel=1e-12)
    from_logits = evaluate_parquet(tmp_path, "label", [f"z{k}" for k in range(K)],
                                   from_logits=True)
    assert from_logits["ece"] == pytest.approx(ref["ece"], rel=1e-12)


def test_binary_score_column_and_fixed_size_states(client):
    rng = np.random.default_rng(2)
    score = rng.uniform(size=N)
    clicked = (rng.uniform(size=N) < score ** 2).astype(np.int64)
    frame = dd.from_pandas(pd.DataFrame({"clicked": clicked, "p_click": score}),
                           npartitions=6)
    acc = accumulate_dataframe(frame, "clicked", "p_click", n_bins=20, view="positive")
    ref = single(clicked, score, n_bins=20, view="positive")
    for key in ("ece", "brier", "nll", "debiased_ece_uniform"):
        assert acc.compute()[key] == pytest.approx(ref[key], rel=1e-12)
    small = partition_state(pd.DataFrame({"y": clicked[:10], "p": score[:10]}), "y", ["p"],
                            settings={"n_bins": 20, "view": "positive"})
    big = partition_state(pd.DataFrame({"y": clicked, "p": score}), "y", ["p"],
                          settings={"n_bins": 20, "view": "positive"})
    assert len(pickle.dumps(big)) == len(pickle.dumps(small)) < 4096  # O(bins), not O(rows)


def test_bad_columns_are_named():
    frame = dd.from_pandas(pd.DataFrame({"y": [0, 1], "p": [0.2, 0.7]}), npartitions=1)
    with pytest.raises(ValueError, match=r"\['q'\]"):
        accumulate_dataframe(frame, "y", ["q"])
    with pytest.raises(ValueError, match="also a score"):
        accumulate_dataframe(frame, "y", ["y"])
    with pytest.raises(ValueError, match="n_bins"):
        accumulate_dataframe(frame, "y", "p", n_bins=0)
    with pytest.raises(ValueError, match="integer class labels"):
        partition_state(pd.DataFrame({"y": [0.5, 1.0], "p": [0.2, 0.7]}), "y", ["p"])
