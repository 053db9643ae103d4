"""GPU check (issue 17): CUDA correctness of calkit's torch paths, and timings with targets.

Run on a machine with a CUDA GPU (about 1-3 minutes)::

    python benchmarks/gpu_check.py                 # full sizes on cuda
    python benchmarks/gpu_check.py --small         # small sizes (quick smoke run)
    python benchmarks/gpu_check.py --device cpu    # the CPU-checkable parts, small sizes

Without CUDA (and without ``--device cpu``) it prints that there is nothing to check
and exits with status 0.  Checks print PASS/FAIL lines and the script exits with
status 1 if any check fails; timings are a table with the issue's targets:

1. agreement with the CPU: every metric (calibration_error l1/l2/max, quantile,
   class-wise, debiased, sweep, smooth ECE, Brier, NLL, accuracy), the streaming
   accumulator, the torchmetrics-compatible metrics, and every loss (value and
   gradient) plus AdaFocal's update, computed on the device against the same data
   on the CPU;
2. float64-exact sums at 10M samples (the binning engine against ``math.fsum`` of the
   same data), next to torchmetrics' float32 value;
3. no host synchronisation in the AdaFocal forward (and backward):
   ``torch.cuda.set_sync_debug_mode("error")`` turns any sync into an error;
4. timings (median of CUDA-synchronised runs): uniform ECE on 1M x 1,000 float32
   within 1.5x of one ``p.max(1)`` pass; AdaFocal forward+backward within 1.5x of
   cross-entropy at 8,192 x 1,000; ``AdaFocalLoss.update`` on 10,000 validation
   samples (x 1,000 classes) under 5 ms; torchmetrics next to each.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

FULL = dict(metric_n=1_000_000, metric_k=1000, agree_n=200_000, agree_k=100, loss_n=8192,
            loss_k=1000, val_n=10_000, val_k=1000, sum_n=10_000_000)
SMALL = dict(metric_n=20_000, metric_k=100, agree_n=20_000, agree_k=20, loss_n=1024,
             loss_k=100, val_n=10_000, val_k=100, sum_n=1_000_000)

RESULTS: list[tuple[str, bool, str]] = []


def report(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}", flush=True)


def guarded(name):
    """Run a check; an exception is a FAIL with its message, and the script goes on."""
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - report every failure, keep going
                report(name, False, f"{type(exc).__name__}: {exc}")
                traceback.print_exc(limit=3)
        return run
    return wrap


def rel_diff(a, b) -> float:
    a, b = float(a), float(b)
    return abs(a - b) / max(abs(b), 1e-300) if b != 0 else abs(a)


def data(torch, n, k, seed=0, scale=3.0, dtype=None):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * scale
    y = torch.multinomial(torch.softmax(z / 2, 1), 1, generator=g).squeeze(1)
    return (z if dtype is None else z.to(dtype)), y


# ---------------------------------------------------------------------------- 1. agreement
@guarded("metrics agree with the CPU")
def check_metrics(torch, device, sizes):
    import calkit

    z, y = data(torch, sizes["agree_n"], sizes["agree_k"])
    p = torch.softmax(z, 1)
    pd_, yd = p.to(device), y.to(device)
    pn, yn = p.numpy(), y.numpy()
    cases = {
        "ece l1": lambda a, b: calkit.ece(a, b),
        "ece l2": lambda a, b: calkit.ece(a, b, norm="l2"),
        "mce": lambda a, b: calkit.ece(a, b, norm="max"),
        "ece quantile": lambda a, b: calkit.ece(a, b, strategy="quantile"),
        "classwise ece": lambda a, b: calkit.calibration_error(a, b, view="classwise").value,
        "debiased ece": lambda a, b: calkit.debiased_ece(a, b),
        "sweep ece": lambda a, b: calkit.sweep_ece(a, b).value,
        "smooth ece": lambda a, b: calkit.smooth_ece(a, b).value,
        "brier": lambda a, b: calkit.brier_score(a, b),
        "nll": lambda a, b: calkit.nll(a, b),
        "accuracy": lambda a, b: calkit.accuracy(a, b),
    }
    worst = 0.0
    for name, fn in cases.items():
        on_device, on_host = fn(yd, pd_), fn(yn, pn)
        if hasattr(on_device, "device") and on_device.device.type != device.type:
            raise AssertionError(f"{name}: result on {on_device.device}, not {device}")
        d = rel_diff(on_device, on_host)
        worst = max(worst, d)
        if d > 1e-6:
            report(f"metric {name}", False, f"device {float(on_device)!r} cpu {float(on_host)!r}")
    report("metrics agree with the CPU", worst <= 1e-6, f"{len(cases)} metrics, worst rel "
           f"diff {worst:.1e}")


@guarded("accumulator and torchmetrics-compatible metrics agree with the CPU")
def check_streaming(torch, device, sizes):
    from calkit.integrations.torchmetrics import (
        BrierScore,
        CalibrationError,
        DebiasedCalibrationError,
        NegativeLogLikelihood,
    )
    from calkit.stream import CalibrationAccumulator

    z, y = data(torch, sizes["agree_n"], sizes["agree_k"], seed=1)
    p = torch.softmax(z, 1)
    k = p.shape[1]
    worst = 0.0
    accs = [CalibrationAccumulator(classwise=True, exact=True) for _ in range(2)]
    metrics = [[CalibrationError(num_classes=k), CalibrationError(num_classes=k, norm="max"),
                CalibrationError(num_classes=k, convention="torchmetrics"),
                DebiasedCalibrationError(num_classes=k), BrierScore(num_classes=k),
                NegativeLogLikelihood(num_classes=k)] for _ in range(2)]
    for m in metrics[0]:
        m.to(device)
    for part in torch.split(torch.arange(len(y)), 50_000):
        accs[0].update(y[part].to(device), p[part].to(device))
        accs[1].update(y[part].numpy(), p[part].numpy())
        for m in metrics[0]:
            m.update(p[part].to(device), y[part].to(device))
        for m in metrics[1]:
            m.update(p[part], y[part])
    on_device, on_host = accs[0].compute(), accs[1].compute()
    for key, value in on_host.items():
        worst = max(worst, rel_diff(on_device[key], value))
    for a, b in zip(metrics[0], metrics[1], strict=True):
        worst = max(worst, rel_diff(a.compute(), b.compute()))
    report("accumulator and torchmetrics-compatible metrics agree with the CPU", worst <= 1e-6,
           f"worst rel diff {worst:.1e}")


@guarded("losses and AdaFocal update agree with the CPU")
def check_losses(torch, device, sizes):
    from calkit.training import (
        FLSD53,
        AdaFocalLoss,
        CalFocalLoss,
        DualFocalLoss,
        FocalLoss,
        InverseFocalLoss,
    )

    z, y = data(torch, sizes["loss_n"], sizes["loss_k"], seed=2, dtype=torch.float64)
    zv, yv = data(torch, sizes["val_n"], sizes["loss_k"], seed=3, dtype=torch.float64)
    worst = 0.0
    for make in (lambda: FocalLoss(3.0), lambda: InverseFocalLoss(2.0), FLSD53,
                 lambda: DualFocalLoss(5.0), AdaFocalLoss, CalFocalLoss):
        results = []
        for dev in (torch.device("cpu"), device):
            loss = make().to(dev)
            if hasattr(loss, "update"):
                loss.update(zv.to(dev), yv.to(dev))
            logits = z.to(dev).requires_grad_(True)
            value = loss(logits, y.to(dev))
            value.backward()
            results.append((value.detach().cpu(), logits.grad.cpu(),
                            getattr(loss, "gammas", torch.zeros(1)).cpu()))
        (v0, g0, gam0), (v1, g1, gam1) = results
        d = max(rel_diff(v1, v0), float((g1 - g0).abs().max() / g0.abs().max()),
                float((gam1 - gam0).abs().max()))
        worst = max(worst, d)
        if d > 1e-9:
            report(f"loss {type(make()).__name__}", False, f"rel diff {d:.1e}")
    report("losses and AdaFocal update agree with the CPU", worst <= 1e-9,
           f"6 losses (float64 value, gradient, gammas), worst diff {worst:.1e}")


# ---------------------------------------------------------------------------- 2. exact sums
@guarded("float64-exact sums at large N")
def check_exact_sums(torch, device, sizes):
    import calkit
    from calkit.binning import bin_table

    n = sizes["sum_n"]
    g = torch.Generator().manual_seed(4)
    conf = torch.rand(n, generator=g).mul(0.5).add(0.5)  # float32 confidences in [0.5, 1)
    correct = torch.rand(n, generator=g) < conf
    table = bin_table(conf.to(device), correct.to(device), n_bins=15)
    ece_device = float((table.sum_score - table.sum_target).abs().sum() / n)
    # exact reference: fsum per bin of the same float32 values, on the host
    idx = calkit.assign_bins(conf.numpy(), calkit.uniform_edges(15))
    c64, t64 = conf.numpy().astype(np.float64), correct.numpy().astype(np.float64)
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(16))
    gaps = [math.fsum(c64[order[a:b]]) - math.fsum(t64[order[a:b]])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    exact = math.fsum(abs(x) for x in gaps) / n
    d_calkit = rel_diff(ece_device, exact)
    detail = f"N={n:,}, ECE {exact:.3e}: calkit rel err {d_calkit:.1e}"
    try:
        from torchmetrics.classification import BinaryCalibrationError

        from calkit.integrations.torchmetrics import CalibrationError

        tm_metric = BinaryCalibrationError(n_bins=15).to(device)
        tm_value = float(tm_metric(conf.to(device), correct.to(device).long()))
        # torchmetrics' own bins ([a, b), float32 linspace edges) summed in float64 on the host
        same_bins = CalibrationError(task="binary", convention="torchmetrics")
        same_bins.update(conf, correct.long())
        tm_exact = float(same_bins.compute())
        detail += (f"; torchmetrics (float32 sums) rel err {rel_diff(tm_value, tm_exact):.1e} "
                   f"against its own bins summed in float64")
    except ImportError:
        detail += ", torchmetrics not installed"
    report("float64-exact sums at large N", d_calkit < 1e-9, detail)


# ---------------------------------------------------------------------------- 3. no sync
@guarded("no host sync in the AdaFocal forward+backward")
def check_no_sync(torch, device, sizes):
    from calkit.training import AdaFocalLoss

    if device.type != "cuda":
        print("SKIP  no host sync check: needs CUDA (torch.cuda.set_sync_debug_mode)")
        return
    z, y = data(torch, sizes["loss_n"], sizes["loss_k"], seed=5)
    loss = AdaFocalLoss().to(device)
    loss.update(z.to(device), y.to(device))
    logits = z.to(device).requires_grad_(True)
    target = y.to(device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = loss(logits, target)
        value.backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    report("no host sync in the AdaFocal forward+backward", True, "set_sync_debug_mode('error')")


# ---------------------------------------------------------------------------- 4. timings
def timer(torch, device):
    def median_ms(fn, repeat=9, warmup=2):
        for _ in range(warmup):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))
    return median_ms


def timings(torch, device, sizes) -> list[dict]:
    import torch.nn.functional as F

    import calkit
    from calkit.training import AdaFocalLoss

    median_ms = timer(torch, device)
    rows = []

    def row(case, what, ms, base_ms=None, target=None, limit=None):
        ratio = None if base_ms is None else ms / base_ms
        value = ratio if limit is None or base_ms is not None else ms
        met = "" if target is None else ("yes" if value <= limit else "NO")
        rows.append(dict(case=case, what=what, ms=ms, ratio=ratio, target=target or "", met=met))

    try:
        n, k = sizes["metric_n"], sizes["metric_k"]
        g = torch.Generator(device=device).manual_seed(0)
        p = torch.softmax(torch.randn(n, k, device=device, generator=g) * 3, 1)
        y = torch.randint(0, k, (n,), device=device, generator=g)
        floor = median_ms(lambda: p.max(1))
        case = f"{n:,} x {k:,} float32"
        row(case, "floor: p.max(1)", floor)
        row(case, "calkit uniform ECE", median_ms(lambda: calkit.ece(y, p)), floor,
            "<= 1.5x floor", 1.5)
        try:
            from torchmetrics.functional.classification import multiclass_calibration_error

            row(case, "torchmetrics MulticlassCalibrationError", median_ms(
                lambda: multiclass_calibration_error(p, y, num_classes=k, n_bins=15)), floor)
        except ImportError:
            pass
        p = y = None  # free the 4 GB before the next case
    except Exception as exc:  # noqa: BLE001
        report("timing: uniform ECE", False, f"{type(exc).__name__}: {exc}")

    try:
        n, k = sizes["loss_n"], sizes["loss_k"]
        z, y = data(torch, n, k, seed=6)
        z, y = z.to(device), y.to(device)
        loss = AdaFocalLoss().to(device)
        loss.update(*[t.to(device) for t in data(torch, sizes["val_n"], k, seed=7)])
        logits = z.clone().requires_grad_(True)

        def ce():
            F.cross_entropy(logits, y).backward()

        def ada():
            loss(logits, y).backward()

        base = median_ms(ce)
        case = f"{n:,} x {k:,} fwd+bwd"
        row(case, "F.cross_entropy", base)
        row(case, "calkit AdaFocalLoss", median_ms(ada), base, "<= 1.5x CE", 1.5)
    except Exception as exc:  # noqa: BLE001
        report("timing: AdaFocal forward+backward", False, f"{type(exc).__name__}: {exc}")

    try:
        n, k = sizes["val_n"], sizes["val_k"]
        zv, yv = [t.to(device) for t in data(torch, n, k, seed=8)]
        loss = AdaFocalLoss().to(device)
        case = f"update, {n:,} x {k:,} validation"
        row(case, "calkit AdaFocalLoss.update", median_ms(lambda: loss.update(zv, yv)),
            None, "< 5 ms", 5.0)
        from calkit.integrations.torchmetrics import CalibrationError

        metric = CalibrationError(num_classes=k, from_logits=True).to(device)
        row(case, "calkit torchmetrics CalibrationError.update",
            median_ms(lambda: metric.update(zv, yv)))
        try:
            from torchmetrics.classification import MulticlassCalibrationError

            tm_metric = MulticlassCalibrationError(num_classes=k).to(device)

            def tm_update():
                tm_metric.update(zv, yv)
                tm_metric.reset()

            row(case, "torchmetrics MulticlassCalibrationError.update", median_ms(tm_update))
        except ImportError:
            pass
    except Exception as exc:  # noqa: BLE001
        report("timing: update", False, f"{type(exc).__name__}: {exc}")
    return rows


def print_rows(rows) -> None:
    cols = ["case", "what", "ms", "ratio", "target", "met"]
    cells = [[(f"{r[c]:.4g}" if isinstance(r[c], float) else ("" if r[c] is None else str(r[c])))
              for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c)
              for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for x in cells:
        print("  ".join(v.ljust(w) for v, w in zip(x, widths, strict=True)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--small", action="store_true", help="small sizes (default on cpu)")
    parser.add_argument("--no-timings", action="store_true", help="checks only")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed; nothing to check")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device available (torch.cuda.is_available() is False); "
              "nothing to check. Run it on a GPU machine, or with --device cpu for the "
              "CPU-checkable parts.")
        return 0
    sizes = SMALL if (args.small or device.type == "cpu") else FULL
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"gpu_check on {device} ({name}); torch {torch.__version__}, python "
          f"{platform.python_version()}; sizes {'small' if sizes is SMALL else 'full'}")
    if device.type == "cpu":
        print("(the timing targets are GPU targets: on the CPU the table is informative only)")
    start = time.perf_counter()
    check_metrics(torch, device, sizes)
    check_streaming(torch, device, sizes)
    check_losses(torch, device, sizes)
    check_exact_sums(torch, device, sizes)
    check_no_sync(torch, device, sizes)
    if not args.no_timings:
        print()
        print_rows(timings(torch, device, sizes))
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} checks passed, {len(failed)} failed "
          f"({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
