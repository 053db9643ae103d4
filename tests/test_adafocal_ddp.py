"""AdaFocal under torch.distributed: every rank gets the bins and gammas of the global
validation set (gloo backend, 2 CPU processes)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
mp = pytest.importorskip("torch.multiprocessing")

WORLD = 2


def validation_data():
    """Three validation sets (over-, under-confident, tied), 301 samples: unequal rank shards."""
    g = torch.Generator().manual_seed(0)
    sets = []
    for temperature in (2.0, 0.4, 1.0):
        z = torch.randn(301, 5, generator=g) * 2
        y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
        sets.append((z * temperature, y))
    sets[2][0][:120, 0] += 100.0  # saturated confidences: collapsed edges
    return sets


def shard(rank: int, n: int) -> slice:
    cut = 140  # rank 0: 140 samples, rank 1: 161
    return slice(0, cut) if rank == 0 else slice(cut, n)


def _worker(rank: int, store: str, out: str) -> None:
    from calkit.training.adafocal import AdaFocalLoss

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                            world_size=WORLD)
    try:
        loss = AdaFocalLoss(n_bins=15, lam=2.0)
        for z, y in validation_data():
            s = shard(rank, z.shape[0])
            loss.update(z[s], y[s])
        torch.save({"state": loss.state_dict(), "history": loss.history}, f"{out}{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ranks_agree_with_the_global_validation_set(tmp_path):
    from calkit.training.adafocal import AdaFocalLoss

    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path / "rank")), nprocs=WORLD,
             join=True)
    single = AdaFocalLoss(n_bins=15, lam=2.0)
    for z, y in validation_data():
        single.update(z, y)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for res in results:
        assert torch.equal(res["state"]["gammas"], single.gammas)
        assert torch.equal(res["state"]["edges"], single.edges)
        assert _same_records(res["history"], single.history)
    assert any(math.isnan(g) for g in single.history[-1]["E_b"])  # collapsed bins were met
    # the shards alone would have given other bins: the gather is what makes them agree
    local = AdaFocalLoss(n_bins=15, lam=2.0)
    for z, y in validation_data():
        local.update(z[shard(0, 301)], y[shard(0, 301)])
    assert not torch.equal(local.gammas, single.gammas)


def _same_records(a, b):
    """Equal history records, NaN (empty bins) equal to NaN."""
    def norm(v):
        return ["nan" if isinstance(x, float) and math.isnan(x) else x for x in v]
    return all(norm(ra[k]) == norm(rb[k]) if isinstance(ra[k], list) else ra[k] == rb[k]
               for ra, rb in zip(a, b, strict=True) for k in ra)
