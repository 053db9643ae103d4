"""Training-loss benchmark (issue 4): focal family and AdaFocal against cross-entropy.

Run: ``python benchmarks/bench_training.py [--quick]``.

Rows (each ratio is against ``F.cross_entropy`` timed in the same run, same device):
* loss forward+backward on random logits (N x K), for FocalLoss(3), FLSD-53, DualFocal(5)
  and AdaFocal (after one update, so its bins are equal-mass and its gammas differ);
  target: AdaFocal <= 1.5x cross-entropy.
* a whole training step (forward, loss, backward, SGD step) of a small MNIST-sized CNN
  on a batch of 128; target: AdaFocal within 5% of cross-entropy.
* ``AdaFocalLoss.update`` on 10,000 validation samples; target: < 5 ms on GPU.

CPU and, when available, CUDA.  Timings on a shared CPU are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians, machine, print_table  # noqa: E402
from adafocal_mnist import small_cnn  # noqa: E402

from calkit.training import FLSD53, AdaFocalLoss, DualFocalLoss, FocalLoss  # noqa: E402


def _synchronised(fn, device):
    def run():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def adafocal_ready(device, k, seed=0):
    """An AdaFocalLoss after one update on 10,000 validation logits (equal-mass bins)."""
    g = torch.Generator().manual_seed(seed)
    loss = AdaFocalLoss().to(device)
    z = (torch.randn(10_000, k, generator=g) * 3).to(device)
    y = torch.randint(0, k, (10_000,), generator=g).to(device)
    loss.update(z, y)
    return loss, z, y


def loss_rows(device, sizes, repeat):
    rows = []
    for n, k in sizes:
        g = torch.Generator().manual_seed(1)
        logits = (torch.randn(n, k, generator=g) * 3).to(device).requires_grad_()
        target = torch.randint(0, k, (n,), generator=g).to(device)
        losses = {"cross-entropy": F.cross_entropy, "FocalLoss(3)": FocalLoss(3.0),
                  "FLSD-53": FLSD53(), "DualFocal(5)": DualFocalLoss(5.0),
                  "AdaFocal": adafocal_ready(device, k)[0]}

        def step(fn):
            return _synchronised(lambda: fn(logits, target).backward(), device)
        # small calls are repeated more: their medians need more samples to settle
        rounds = max(repeat, min(2000, int(2e6 // (n * k)) * repeat // 15))
        t = interleaved_medians({name: step(fn) for name, fn in losses.items()},
                                repeat=rounds, warmup=5)
        base = t.pop("cross-entropy")
        for name, seconds in t.items():
            rows.append(dict(device=device.type, case=f"loss fwd+bwd {n} x {k}", what=name,
                             ms=seconds * 1e3, ce_ms=base * 1e3, ratio=seconds / base,
                             target="<= 1.5" if name == "AdaFocal" else "-"))
    return rows


def step_rows(device, repeat):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(128, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (128,), generator=g).to(device)
    torch.manual_seed(0)
    model = small_cnn().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ada = adafocal_ready(device, 10)[0]

    def step(fn):
        def run():
            opt.zero_grad(set_to_none=True)
            fn(model(x), y).backward()
            opt.step()
        return _synchronised(run, device)
    t = interleaved_medians({"ce": step(F.cross_entropy), "ada": step(ada)},
                            repeat=4 * repeat, warmup=3)
    return [dict(device=device.type, case="CNN train step, batch 128", what="AdaFocal",
                 ms=t["ada"] * 1e3, ce_ms=t["ce"] * 1e3, ratio=t["ada"] / t["ce"],
                 target="<= 1.05")]


def update_rows(device, repeat):
    loss, z, y = adafocal_ready(device, 10)
    times = interleaved_medians({"update": _synchronised(lambda: loss.update(z, y), device),
                                 "ce": _synchronised(lambda: F.cross_entropy(z, y), device)},
                                repeat=repeat, warmup=3)
    t, forward = times["update"], times["ce"]
    return [dict(device=device.type, case="update, 10,000 x 10 validation", what="AdaFocal",
                 ms=t * 1e3, ce_ms=forward * 1e3, ratio=t / forward,
                 target="< 5 ms (GPU)" if device.type == "cuda" else "-")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeat = 5 if args.quick else 15
    sizes = [(128, 10), (4096, 100)] if args.quick else [(128, 10), (1024, 100),
                                                          (8192, 1000)]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"machine: {machine()}, torch {torch.__version__}, threads {args.threads}, "
          f"devices {[d.type for d in devices]}")
    rows = []
    for device in devices:
        rows += loss_rows(device, sizes, repeat) + step_rows(device, repeat)
        rows += update_rows(device, repeat)
    print_table(rows, ["device", "case", "what", "ms", "ce_ms", "ratio", "target"])
    print("ce_ms: F.cross_entropy forward+backward (update row: its forward only), same run.")


if __name__ == "__main__":
    main()
