"""Post-hoc fit benchmarks: temperature scaling against scipy (issue 3); issue 18's targets.

Run: ``python benchmarks/bench_posthoc.py [--quick] [--repeat R]``, or
``python benchmarks/bench_posthoc.py --issue18 [--baseline TREE] [--repeat R]``.

``--issue18`` times issue 18's four targets on real outputs (the first 5,000
rows of ``cifar_softmax_netcal``, as logits ``log max(p, 1e-12)``): the
Dirichlet default (cross-validated) fit and a single Dirichlet fit at the
penalty main's default chose before issue 18's solver work (``reg_lambda=1e4,
reg_norm=True``) on CIFAR-100 DenseNet-BC-100, and the default
ConsistencyCalibration fit on that model (5,000 x 100) and on CIFAR-10
WRN-16-4 (5,000 x 10).  Each fit runs in a fresh process, ``R`` rounds
interleaved with the same fits of the calkit tree ``TREE`` (a baseline
checkout, e.g. the main branch) when given; the table has the minimum over
the rounds of the wall and the CPU (process) seconds, and whether the results
agree (same chosen penalty or noise scale, largest probability difference).

Baselines, measured in the same run on the same logits:

* ``scipy f64``: ``scipy.optimize.minimize_scalar`` (Brent) on the mean NLL over
  ``log T``, each evaluation ``logsumexp(z / T)`` on a float64 copy of the logits
  (made once, outside the timing) minus the precomputed true-class logit.  This
  is the accurate baseline: its T is the reference for the ``rel. diff`` column.
* ``scipy f32``: the same on the float32 logits directly.  It is faster per
  evaluation but its NLL is too noisy for Brent: its T is off by ~1e-4 relative.

calkit's solver: safeguarded Newton on the NLL gradient in ``beta = 1 / T``,
one blocked float32 pass (float64 sums) per iteration.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, median_time, print_table  # noqa: E402

from calkit.posthoc.temperature import TemperatureScaling  # noqa: E402


def make_logits(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident float32 logits: labels drawn from softmax(z / 1.5)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32) * np.float32(4.0)
    y = np.empty(n, dtype=np.int64)
    block = max(1, (1 << 22) // k)
    for s in range(0, n, block):  # inverse-CDF sampling, blockwise to bound memory
        p = np.exp((z[s:s + block] - z[s:s + block].max(1, keepdims=True)) / 1.5)
        p /= p.sum(1, keepdims=True)
        u = rng.random((len(p), 1))
        y[s:s + block] = np.minimum((p.cumsum(1) < u).sum(1), k - 1)
    return z, y


def scipy_fit(z: np.ndarray, zy: np.ndarray) -> tuple[float, int]:
    """Brent over log T on the mean NLL; returns (T, function evaluations)."""
    mean_true = float(zy.mean(dtype=np.float64))

    def nll(u):
        t = np.exp(u)
        return float(np.mean(logsumexp(z / z.dtype.type(t), axis=1), dtype=np.float64)
                     - mean_true / t)

    res = minimize_scalar(nll)
    return float(np.exp(res.x)), int(res.nfev)


def _timed(fn):
    """(result, seconds) of one call: the baselines take tens of seconds, so they run once."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(sizes, repeat: int) -> list[dict]:
    rows = []
    for n, k in sizes:
        z, y = make_logits(n, k)
        z64 = z.astype(np.float64)
        zy = z64[np.arange(n), y]
        label = f"{n:,} x {k:,} f32"
        (t_ref, nfev), base = _timed(lambda: scipy_fit(z64, zy))
        (t32, nfev32), base32 = _timed(lambda: scipy_fit(z, zy))
        ts = TemperatureScaling().fit(z, y)
        ours = median_time(lambda: TemperatureScaling().fit(z, y), repeat, warmup=0)
        rows.append(dict(case=label, method="calkit newton", seconds=ours, passes=ts.n_iter_,
                         T=f"{ts.temperature_:.7f}",
                         rel_diff=f"{abs(ts.temperature_ / t_ref - 1):.1e}",
                         speedup_vs_f64=base / ours, speedup_vs_f32=base32 / ours))
        rows.append(dict(case=label, method="scipy f64", seconds=base, passes=nfev,
                         T=f"{t_ref:.7f}", rel_diff="(ref)", speedup_vs_f64=1.0,
                         speedup_vs_f32=base32 / base))
        rows.append(dict(case=label, method="scipy f32", seconds=base32, passes=nfev32,
                         T=f"{t32:.7f}", rel_diff=f"{abs(t32 / t_ref - 1):.1e}",
                         speedup_vs_f64=base / base32, speedup_vs_f32=1.0))
    return rows


ISSUE18_FIT = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from calkit.posthoc import ConsistencyCalibration, DirichletCalibration
case, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
model = "wideresnet-16-4-cifar-10" if case == "consistency 5000x10" else "densenet-bc-100-cifar-100"
with np.load(f"{data}/cifar_softmax_netcal/{model}.npz") as d:
    z = np.log(np.clip(d["predictions"].astype(np.float64), 1e-12, None))[:5000]
    y = d["ground_truth"].astype(np.int64)[:5000]
if case == "dirichlet single":  # the penalty main's default fit chose (issue 18's timing)
    make = lambda: DirichletCalibration(reg_lambda=1e4, reg_norm=True)
else:
    make = ConsistencyCalibration if case.startswith("consistency") else DirichletCalibration
wall, cpu = time.perf_counter(), time.process_time()
cal = make().fit(z, y)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
np.save(out, cal.predict_proba(z))
pick = (f"{cal.noise_} {cal.noise_scale_:.4f}" if case.startswith("consistency") else
        f"lambda' {cal.reg_lambda_:.3g} mu' {cal.reg_mu_:.3g}")
print(json.dumps(dict(wall=wall, cpu=cpu, pick=pick)))
"""
ISSUE18_CASES = ("dirichlet single", "dirichlet CV default", "consistency 5000x100",
                 "consistency 5000x10")


def issue18(data: Path, baseline: Path | None, repeat: int) -> list[dict]:
    """Issue 18's fits, each in a fresh process, rounds interleaved with the baseline's."""
    import json
    import os
    import subprocess
    import tempfile

    trees = {"calkit": Path(__file__).resolve().parents[1]}
    if baseline is not None:
        trees["baseline"] = baseline.resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in ISSUE18_CASES:
            runs: dict[str, list] = {name: [] for name in trees}
            for _ in range(repeat):
                for name, tree in trees.items():
                    out = Path(tmp) / f"{name}.npy"
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    done = subprocess.run([sys.executable, "-c", ISSUE18_FIT, case, str(data),
                                           str(out)], env=env, capture_output=True, text=True,
                                          check=True, cwd=tmp)  # (not the tree of "")
                    runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            proba = {name: np.load(Path(tmp) / f"{name}.npy") for name in trees}
            for name in trees:
                wall = min(r["wall"] for r in runs[name])
                cpu = min(r["cpu"] for r in runs[name])
                row = dict(case=case, tree=name, wall_s=wall, cpu_s=cpu, pick=runs[name][0]["pick"])
                if name == "baseline":
                    base = rows[-1]
                    row.update(speedup_wall=wall / base["wall_s"], speedup_cpu=cpu / base["cpu_s"],
                               max_dp=f"{np.abs(proba['baseline'] - proba['calkit']).max():.1e}")
                rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--issue18", action="store_true",
                        help="issue 18's Dirichlet and consistency fits on real outputs")
    parser.add_argument("--baseline", type=Path, help="--issue18: a calkit tree to compare")
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args(argv)
    if args.issue18:
        print(f"# issue 18 fits, {machine()}; min of {args.repeat} interleaved runs; "
              "speedup = baseline / calkit")
        print_table(issue18(args.data, args.baseline, args.repeat),
                    ["case", "tree", "wall_s", "cpu_s", "speedup_wall", "speedup_cpu",
                     "max_dp", "pick"])
        return
    sizes = [(5_000, 100), (100_000, 10)] if args.quick else [(50_000, 1_000), (1_000_000, 10)]
    print(f"# temperature-scaling fit, {machine()}; calkit: median of {args.repeat} runs, "
          "scipy baselines: one run each")
    print("# shared CPU: absolute times are noisy, compare the speedup columns")
    print_table(run(sizes, args.repeat), ["case", "method", "seconds", "passes", "T",
                                          "rel_diff", "speedup_vs_f64", "speedup_vs_f32"])


if __name__ == "__main__":
    main()
