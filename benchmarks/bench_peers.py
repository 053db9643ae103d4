"""Peer benchmark suite (issue 7): calkit next to the installed peer libraries, one command.

Run: ``python benchmarks/bench_peers.py [--quick] [--memmap-rows N]``.

For every data size (10,000 x 10, 50,000 x 1,000 and 1,000,000 x 10 float32; the
data are generated once per size) it times, on the same arrays:

* a floor: one ``np.max(p, axis=1)`` pass;
* top-label ECE with 15 equal-width and 15 equal-mass bins, debiased ECE
  (Kumar et al.), sweep ECE, smooth ECE and a temperature-scaling fit,
  each by calkit and by every installed peer that has it (netcal,
  torchmetrics, uncertainty-calibration, relplot, scikit-learn, probmetrics;
  absent peers give "skipped" rows).

It prints the median wall time, the peer / calkit time ratio (calkit's
speed-up), the value each library returns (so that disagreements show), the
peak memory of one call (``tracemalloc``: numpy and Python allocations; torch's
own CPU allocator is invisible to it, so torch-based rows show a lower bound)
and the issue's target.  Then two scale sections: streaming state size
(calkit's accumulator against torchmetrics' list state) and chunked evaluation
of a memory-mapped ``.npy`` of logits (time and peak memory against loading the
whole array).

Method: every implementation is first called once on a 2,000-row slice (so
lazy imports and compilation are not timed), then the calls of one metric are
interleaved round by round (calkit and its peers see the same machine load);
the median is taken over 3 rounds (9 for calls under 0.1 s; calls over 5 s
run once).  Timings on a shared machine are noisy: compare the ratios, which
are measured in the same run on the same data.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import machine  # noqa: E402

import calkit  # noqa: E402
from calkit.chunked import evaluate_chunked  # noqa: E402
from calkit.metrics.smooth import smooth_ece  # noqa: E402
from calkit.stream import CalibrationAccumulator  # noqa: E402

PEERS = ("netcal", "torchmetrics", "calibration", "relplot", "sklearn", "probmetrics", "torch")
PEER_NAMES = {"calibration": "uncertainty-calibration", "sklearn": "scikit-learn"}
#: (metric, peer) -> required calkit speed-up in the issue, and at which size
TARGETS = {("uniform ECE", "netcal"): (5, "50,000 x 1,000"),
           ("uniform ECE", "torchmetrics"): (5, "50,000 x 1,000"),
           ("debiased ECE", "uncertainty-calibration"): (10, None),
           ("smooth ECE", "relplot"): (2, "1,000,000 x 10"),
           ("temperature fit", "scikit-learn"): (4, None),
           ("temperature fit", "probmetrics"): (4, None)}
#: what each peer is timed on (an absent peer gives "skipped" rows for these)
PEER_METRICS = {"netcal": ("uniform ECE", "quantile ECE", "temperature fit"),
                "torchmetrics": ("uniform ECE",),
                "calibration": ("uniform ECE", "quantile ECE", "debiased ECE"),
                "relplot": ("smooth ECE",), "sklearn": ("temperature fit",),
                "probmetrics": ("temperature fit",)}
SLOW_CALL_S = 5.0  # a first call slower than this is not repeated
FAST_CALL_S = 0.1  # a first call faster than this is repeated 3 * repeat times


def load_peers() -> dict:
    found = {}
    for name in PEERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any import failure means "not installed"
            pass
    return found


def make_data(n: int, k: int, seed: int = 0):
    """float32 logits, their softmax and labels drawn at temperature 2 (so T* = 2)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32) * 3
    y = np.empty(n, dtype=np.int64)
    block = max(1, (8 << 20) // (4 * k))
    for start in range(0, n, block):  # Gumbel-max sampling from softmax(z / 2), in blocks
        zb = z[start:start + block]
        y[start:start + block] = (zb / 2 + rng.gumbel(size=zb.shape).astype(np.float32)).argmax(1)
    return z, calkit.softmax(z), y


def timed(fn, repeat: int):
    """(median seconds, runs, value): the first call gives the value; slow calls run once."""
    start = time.perf_counter()
    value = fn()
    first = time.perf_counter() - start
    if first > SLOW_CALL_S:
        return first, 1, value
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), repeat, value


def peak_mib(fn) -> float:
    """Peak traced memory of one call of ``fn`` (MiB)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def implementations(peers: dict, z, p, y):
    """(metric, library, callable returning a float) on the same data."""
    n, k = p.shape
    impls = [("floor: np.max(p, axis=1)", "numpy", lambda: float(np.max(p, axis=1)[0]))]
    impls += [("uniform ECE", "calkit", lambda: calkit.ece(y, p))]
    if "netcal" in peers:
        from netcal.metrics import ECE

        impls.append(("uniform ECE", "netcal", lambda: float(ECE(bins=15).measure(p, y))))
    if "torchmetrics" in peers:
        torch = peers["torch"]
        from torchmetrics.functional.classification import multiclass_calibration_error

        tp, ty = torch.from_numpy(p), torch.from_numpy(y)
        impls.append(("uniform ECE", "torchmetrics", lambda: float(
            multiclass_calibration_error(tp, ty, k, n_bins=15, norm="l1"))))
    if "calibration" in peers:
        cal = peers["calibration"]
        impls.append(("uniform ECE", "uncertainty-calibration",
                      lambda: float(cal.get_ece(p, y, num_bins=15))))
    impls.append(("quantile ECE", "calkit", lambda: calkit.ece(y, p, strategy="quantile")))
    if "netcal" in peers:
        impls.append(("quantile ECE", "netcal", lambda: float(
            ECE(bins=15, equal_intervals=False).measure(p, y))))
    if "calibration" in peers:
        impls.append(("quantile ECE", "uncertainty-calibration",
                      lambda: float(cal.get_ece_em(p, y, num_bins=15))))
    impls.append(("debiased ECE", "calkit", lambda: float(calkit.debiased_ece(y, p))))
    if "calibration" in peers:
        impls.append(("debiased ECE", "uncertainty-calibration",
                      lambda: float(cal.get_calibration_error(p, y, mode="top-label"))))
    impls.append(("sweep ECE", "calkit", lambda: float(calkit.sweep_ece(y, p))))
    impls.append(("smooth ECE", "calkit", lambda: float(smooth_ece(y, p))))
    if "relplot" in peers:
        relplot = peers["relplot"]
        impls.append(("smooth ECE", "relplot", lambda: float(relplot.smECE(
            p.max(1).astype(np.float64), (p.argmax(1) == y).astype(np.float64)))))
    impls += temperature_implementations(peers, z, p, y)
    for peer, metrics in PEER_METRICS.items():
        if peer not in peers:
            impls += [(metric, PEER_NAMES.get(peer, peer), None) for metric in metrics]
    order: dict[str, int] = {}
    for i, (metric, _, _) in enumerate(impls):
        order.setdefault(metric, i)
    return sorted(impls, key=lambda impl: order[impl[0]])  # stable: groups by metric


def temperature_implementations(peers: dict, z, p, y):
    """Temperature-scaling fits; the value is the fitted T (all should find T = 2)."""
    impls = []
    ts = _calkit_temperature_scaling()
    if ts is not None:
        impls.append(("temperature fit", "calkit", lambda: ts().fit(z, y).temperature_))
    else:
        impls.append(("temperature fit", "calkit", None))
    if "sklearn" in peers:
        try:
            from sklearn.calibration import _TemperatureScaling
        except ImportError:
            _TemperatureScaling = None
        if _TemperatureScaling is not None:
            impls.append(("temperature fit", "scikit-learn",
                          lambda: 1 / float(_TemperatureScaling().fit(z, y).beta_)))
    if "probmetrics" in peers:
        try:
            from probmetrics.calibrators.temperature_scaling import (
                TemperatureScalingCalibrator,
            )
            from probmetrics.distributions import CategoricalLogits
        except ImportError:  # probmetrics needs numba for its calibrators
            impls.append(("temperature fit", "probmetrics", None))
        else:
            torch = peers["torch"]
            tz, ty = torch.from_numpy(z), torch.from_numpy(y)
            impls.append(("temperature fit", "probmetrics", lambda: 1 / float(
                TemperatureScalingCalibrator().fit_torch(CategoricalLogits(tz), ty).invtemp_)))
    if "netcal" in peers:
        from netcal.scaling import TemperatureScaling as NetcalTS

        p64 = p.astype(np.float64)  # netcal's scipy fit stalls at T = 1 on float32 input

        def netcal_fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return 1 / float(np.ravel(NetcalTS().fit(p64, y).weights)[0])

        impls.append(("temperature fit", "netcal (float64 input)", netcal_fit))
    return impls


def _calkit_temperature_scaling():
    for module in ("calkit.posthoc", "calkit.posthoc.temperature"):
        try:
            return importlib.import_module(module).TemperatureScaling
        except (ImportError, AttributeError):
            continue
    return None


def run_case(peers: dict, n: int, k: int, repeat: int, skip_slow_peers: bool) -> list[dict]:
    """Time every implementation; calls of one metric are interleaved, round by round,
    so that calkit and its peers see the same load on a shared machine."""
    z, p, y = make_data(n, k)
    case = f"{n:,} x {k:,}"
    _warm_up(peers, z[:2000], p[:2000], y[:2000])
    groups: dict[str, list] = {}
    for metric, lib, fn in implementations(peers, z, p, y):
        groups.setdefault(metric, []).append((lib, fn))
    rows = []
    for metric, impls in groups.items():
        rows += _time_group(case, metric, impls, repeat,
                            skip=skip_slow_peers and n * k > 10**7)
    floor = rows[0]["ms"]
    for row in rows[1:]:
        if row.get("library") == "calkit" and "ms" in row:
            row["note"] = f"{row['ms'] / floor:.1f}x floor"
    return rows


def _warm_up(peers: dict, z, p, y) -> None:
    """One call of every implementation on a small slice: one-time costs (lazy imports,
    compilation, caches) are then not timed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, _, fn in implementations(peers, z, p, y):
            if fn is not None:
                fn()


def _time_group(case: str, metric: str, impls: list, repeat: int, skip: bool) -> list[dict]:
    rows, times, values = [], {}, {}
    runnable = []
    for lib, fn in impls:
        if fn is None:
            rows.append(dict(case=case, metric=metric, library=lib,
                             note="skipped (not installed or not importable)"))
        elif skip and lib.startswith("netcal") and metric == "temperature fit":
            rows.append(dict(case=case, metric=metric, library=lib, note="skipped (--quick)"))
        else:
            runnable.append((lib, fn))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for round_ in range(1 + 3 * repeat):
            for lib, fn in runnable:
                if round_ and times[lib][0] > SLOW_CALL_S:
                    continue  # slow calls run once (in the first round)
                if round_ > repeat and times[lib][0] > FAST_CALL_S:
                    continue  # fast calls (noisier) get three times the repeats
                start = time.perf_counter()
                value = fn()
                times.setdefault(lib, []).append(time.perf_counter() - start)
                values.setdefault(lib, value)
        for lib, fn in runnable:
            runs = times[lib] if len(times[lib]) == 1 else times[lib][1:]  # first = warm-up
            seconds = float(np.median(runs))
            memory = peak_mib(fn) if seconds < 20 else float("nan")
            rows.append(dict(case=case, metric=metric, library=lib, ms=seconds * 1e3,
                             runs=len(runs), value=float(values[lib]), peak_mib=memory))
    calkit_ms = next((r["ms"] for r in rows if r["library"] == "calkit" and "ms" in r), None)
    for row in rows:
        if row["library"] in ("calkit", "numpy") or "ms" not in row or calkit_ms is None:
            continue
        row["speedup"] = row["ms"] / calkit_ms
        target = TARGETS.get((metric, row["library"].split(" ")[0]))
        if target is not None and (target[1] is None or target[1] == case):
            row["target"] = f">= {target[0]}x"
            row["met"] = "yes" if row["speedup"] >= target[0] else "NO"
    order = {lib: i for i, (lib, _) in enumerate(impls)}
    return sorted(rows, key=lambda r: order[r["library"]])


def streaming_section(peers: dict, n: int, k: int, chunks: int) -> list[dict]:
    """State bytes and time of streaming ``chunks`` batches: calkit against torchmetrics."""
    z, p, y = make_data(n, k, seed=1)
    batches = np.array_split(np.arange(n), chunks)
    rows = []

    def calkit_stream(exact):
        acc = CalibrationAccumulator(exact=exact)
        for b in batches:
            acc.update(y[b], p[b])
        return acc

    for exact in (False, True):
        seconds, runs, acc = timed(lambda: calkit_stream(exact), 3)
        state = acc.state_dict()
        nbytes = sum(np.asarray(a).nbytes for a in state["arrays"].values())
        nbytes += sum(s.nbytes + t.nbytes for s, t in state["pairs"])
        rows.append(dict(what=f"calkit accumulator (exact={exact})", ms=seconds * 1e3,
                         state_bytes=nbytes, ece=float(acc.compute()["ece"])))
    if "torchmetrics" in peers:
        torch = peers["torch"]
        from torchmetrics.classification import MulticlassCalibrationError

        tp, ty = torch.from_numpy(p), torch.from_numpy(y)

        def tm_stream():
            metric = MulticlassCalibrationError(num_classes=k, n_bins=15)
            for b in batches:
                metric.update(tp[b], ty[b])
            return metric

        seconds, runs, metric = timed(tm_stream, 3)
        nbytes = sum(t.element_size() * t.nelement()
                     for name in ("confidences", "accuracies") for t in getattr(metric, name))
        rows.append(dict(what="torchmetrics MulticlassCalibrationError", ms=seconds * 1e3,
                         state_bytes=nbytes, ece=float(metric.compute())))
    rows.append(dict(what=f"batch calkit.ece ({n:,} x {k})",
                     ms=timed(lambda: calkit.ece(y, p), 3)[0] * 1e3, state_bytes=p.nbytes,
                     ece=calkit.ece(y, p)))
    return rows


def chunked_section(rows_total: int, k: int = 10) -> list[dict]:
    """evaluate_chunked on a memory-mapped .npy of logits against loading it whole."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        logits_path, labels_path = Path(tmp) / "logits.npy", Path(tmp) / "labels.npy"
        mm = np.lib.format.open_memmap(logits_path, mode="w+", dtype=np.float32,
                                       shape=(rows_total, k))
        labels = np.lib.format.open_memmap(labels_path, mode="w+", dtype=np.int64,
                                           shape=(rows_total,))
        block = 1_000_000
        for start in range(0, rows_total, block):
            stop = min(start + block, rows_total)
            z, _, y = make_data(stop - start, k, seed=start)
            mm[start:stop], labels[start:stop] = z, y
        mm.flush()
        labels.flush()
        del mm, labels

        def chunked():
            return evaluate_chunked(labels_path, logits_path, from_logits=True)

        def whole():
            z = np.load(logits_path)
            return {"ece": calkit.ece(np.load(labels_path), calkit.softmax(z))}

        for what, fn in ((f"evaluate_chunked (memmap, {16} MiB blocks)", chunked),
                         ("np.load + softmax + calkit.ece", whole)):
            start = time.perf_counter()
            value = fn()["ece"]
            seconds = time.perf_counter() - start
            out.append(dict(what=what, rows=f"{rows_total:,} x {k}", s=seconds,
                            peak_mib=peak_mib(fn), ece=float(value),
                            file_mib=rows_total * k * 4 / 2**20))
    return out


def _fmt(column: str, v) -> str:
    if not isinstance(v, float):
        return f"{v:,}" if isinstance(v, int) and column != "runs" else str(v)
    if v != v:
        return "n/a"
    if column in ("value", "ece"):
        return f"{v:.6f}"
    if column == "speedup":
        return f"{v:.1f}x"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def versions(peers: dict) -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in peers:
        dist = PEER_NAMES.get(name, name)
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} ?")
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--memmap-rows", type=int, default=None,
                        help="rows of the memory-mapped logits file (default 10^7; quick 10^6)")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, repeat, memmap_rows = [(10_000, 10), (20_000, 100)], 3, 1_000_000
    else:
        sizes, repeat, memmap_rows = [(10_000, 10), (50_000, 1_000), (1_000_000, 10)], 3, 10**7
    memmap_rows = args.memmap_rows or memmap_rows
    peers = load_peers()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?") if os.path.exists("/proc/cpuinfo") else "?"
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}, {cpu}")
    print(f"versions: {versions(peers)}")
    missing = [PEER_NAMES.get(p, p) for p in PEERS if p not in peers]
    print(f"peers not installed (rows skipped): {', '.join(missing) or 'none'}\n")
    rows = []
    for n, k in sizes:
        rows += run_case(peers, n, k, repeat, skip_slow_peers=args.quick)
    print(markdown(rows, ["case", "metric", "library", "ms", "runs", "speedup", "target", "met",
                          "value", "peak_mib", "note"]))
    print("\nspeedup = peer time / calkit time on the same data in this run; peak_mib = "
          "tracemalloc peak of one call (torch allocations not seen).\n")
    n, k = sizes[-1]
    print(markdown(streaming_section(peers, n, k, chunks=10),
                   ["what", "ms", "state_bytes", "ece"]))
    print()
    print(markdown(chunked_section(memmap_rows), ["what", "rows", "s", "peak_mib", "file_mib",
                                                  "ece"]))


if __name__ == "__main__":
    main()
