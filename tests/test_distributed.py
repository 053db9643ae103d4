"""calkit.distributed on torch.distributed: 2 CPU processes on the gloo backend.

Each rank evaluates its shard; the all-reduced result must equal the
single-process result on the concatenated data to 1e-12 (float64).
"""

from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pytest

import calkit
from calkit.stream import CalibrationAccumulator

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from calkit.distributed import CalibrationMetric, all_reduce_accumulator  # noqa: E402

N, K, SPLIT = 3000, 6, 1100
SETTINGS = dict(n_bins=15, classwise=True, exact=True)


def make_data():
    rng = np.random.default_rng(42)
    z = (rng.normal(size=(N, K)) * 2.5).astype(np.float32)
    cum = calkit.softmax(z.astype(np.float64) / 1.5).cumsum(1)
    y = np.minimum((rng.uniform(size=(N, 1)) > cum).sum(1), K - 1)
    return y, z


def _as_float(out: dict) -> dict:
    return {k: float(v) for k, v in out.items()}


def _worker(rank: int, world: int, init: str, result_path: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        y, z = make_data()
        mine = slice(0, SPLIT) if rank == 0 else slice(SPLIT, N)  # unequal shards
        results = {}
        # 1. the nn.Module on tensors (logits), batches of 256
        metric = CalibrationMetric(from_logits=True, **SETTINGS)
        for start in range(mine.start, mine.stop, 256):
            stop = min(start + 256, mine.stop)
            metric(torch.as_tensor(y[start:stop]), torch.as_tensor(z[start:stop]))
        results["module"] = _as_float(metric.compute())
        results["module_local_n"] = metric.accumulator.n_samples
        # 2. numpy accumulator, one rank empty
        acc = CalibrationAccumulator(**SETTINGS)
        if rank == 1:
            acc.update(y, calkit.softmax(z))
        results["one_empty"] = _as_float(all_reduce_accumulator(acc).compute())
        # 3. settings that differ between ranks are refused on every rank
        try:
            all_reduce_accumulator(CalibrationAccumulator(n_bins=10 + rank).update(
                y[:10], calkit.softmax(z[:10])))
            results["mismatch"] = "no error"
        except ValueError as exc:
            results["mismatch"] = str(exc)
        if rank == 0:
            with open(result_path, "w") as f:
                json.dump(results, f)
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    init = f"file://{tmp / 'store'}"
    result_path = str(tmp / "rank0.json")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, 2, init, result_path)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():  # pragma: no cover - a hung collective
            p.kill()
            pytest.fail("a DDP worker did not finish within 120 s")
        assert p.exitcode == 0, f"DDP worker exited with {p.exitcode}"
    with open(result_path) as f:
        return json.load(f)


def single_process_reference():
    y, z = make_data()
    return _as_float(CalibrationAccumulator(**SETTINGS).update(y, calkit.softmax(z)).compute())


def test_gloo_module_equals_concatenated(ddp_results):
    y, z = make_data()
    single = CalibrationMetric(from_logits=True, **SETTINGS)   # same path, all data, 1 process
    single.update(torch.as_tensor(y), torch.as_tensor(z))
    ref = _as_float(single.compute())
    out = ddp_results["module"]
    assert ddp_results["module_local_n"] == SPLIT  # rank 0 only saw its shard ...
    assert out["n_samples"] == N                    # ... and compute() reduced both
    assert set(out) == set(ref)
    for key, value in ref.items():
        assert abs(out[key] - value) < 1e-12, key
    p = torch.as_tensor(z).softmax(1)
    assert abs(out["ece"] - float(calkit.ece(torch.as_tensor(y), p))) < 1e-12
    assert abs(out["sweep_ece"] - float(calkit.sweep_ece(torch.as_tensor(y), p))) < 1e-12


def test_gloo_rank_without_samples(ddp_results):
    ref = single_process_reference()
    for key, value in ref.items():
        assert abs(ddp_results["one_empty"][key] - value) < 1e-12, key


def test_gloo_settings_mismatch_is_refused(ddp_results):
    assert "different settings" in ddp_results["mismatch"]


def test_without_process_group_is_local():
    y, z = make_data()
    metric = CalibrationMetric(from_logits=True, n_bins=10)
    metric.update(torch.as_tensor(y), torch.as_tensor(z))
    out = metric.compute()
    assert abs(float(out["ece"]) - calkit.ece(y, calkit.softmax(z), n_bins=10)) < 1e-6
    acc = metric.accumulator
    copy = all_reduce_accumulator(acc)
    assert copy is not acc and copy.n_samples == acc.n_samples == N
    metric.reset()
    assert metric.accumulator.n_samples == 0
    with pytest.raises(TypeError, match="CalibrationAccumulator"):
        all_reduce_accumulator({"count": 1})
