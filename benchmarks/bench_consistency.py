"""ConsistencyCalibration fit benchmark (issue 18): the envelope search against per-scale redraws.

Run: ``python benchmarks/bench_consistency.py [--data ../shared/data] [--baseline-scales S]``.

On real 5,000-row fits (CIFAR-10 LeNet-5 and CIFAR-100 DenseNet-BC-100 softmax
outputs from ``cifar_softmax_netcal``, as logits ``log max(p, 1e-12)``) it times

* ``calkit``: ``ConsistencyCalibration().fit`` with its defaults (both noise
  families, the authors' 80-scale coarse-to-fine search, 200 perturbations): one
  :class:`~calkit.posthoc.consistency.VotePath` per family, then every scale is a
  prefix of the sorted crossings;
* ``baseline``: the previous algorithm, which drew and counted ``200 x N x K``
  perturbed logits for every candidate scale (``perturbed_probabilities`` plus the
  ECE), measured in the same run on ``S`` of the scales the search visited
  (default 12 per family) and extrapolated to all of them (``seconds`` is the
  extrapolation; ``measured`` the part actually run).

``max |dECE|`` compares the criterion values of both on the measured scales (the
same noise, so equal up to votes decided by float32 rounding); ``same best``
says whether both pick the same scale among them.  CPU seconds (process time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, print_table  # noqa: E402

from calkit.metrics.binned import ece  # noqa: E402
from calkit.posthoc.consistency import ConsistencyCalibration, perturbed_probabilities  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = (("lenet-5-cifar-10", "5,000 x 10"), ("densenet-bc-100-cifar-100", "5,000 x 100"))


def load(root: Path, model: str):
    with np.load(root / "cifar_softmax_netcal" / f"{model}.npz", allow_pickle=False) as d:
        p, y = d["predictions"].astype(np.float64), d["ground_truth"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))[:5000]
    return np.log(np.clip(p[order], 1e-12, None)), y[order]


def cpu(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def run(root: Path, baseline_scales: int) -> list[dict]:
    rows = []
    for model, label in CASES:
        z, y = load(root, model)
        cc, ours = cpu(lambda z=z, y=y: ConsistencyCalibration().fit(z, y))
        visited = sum(len(v[0]) for v in cc.scores_.values())
        base_time, diffs, same = 0.0, [], True
        for noise, (scales, values) in cc.scores_.items():
            pick = np.linspace(0, len(scales) - 1, min(baseline_scales, len(scales))).astype(int)
            brute = []
            for i in pick:
                p, t = cpu(lambda s=scales[i], noise=noise: perturbed_probabilities(
                    z, float(s), noise, 200, random_state=0))
                value, t2 = cpu(lambda p=p: float(ece(y, p)))
                base_time += t + t2
                brute.append(value)
            diffs.append(np.max(np.abs(np.asarray(brute) - values[pick])))
            same &= bool(np.argmin(brute) == np.argmin(values[pick]))
        measured = sum(min(baseline_scales, len(v[0])) for v in cc.scores_.values())
        extrapolated = base_time * visited / measured
        rows.append(dict(case=label, method="calkit (envelope)", seconds=ours,
                         scales=visited, speedup=extrapolated / ours,
                         best=f"{cc.noise_} {cc.noise_scale_:.4f}"))
        rows.append(dict(case=label, method="baseline (redraw per scale)", seconds=extrapolated,
                         scales=visited, measured=f"{measured} scales, {base_time:.1f} s",
                         speedup=1.0, max_dECE=f"{max(diffs):.1e}", same_best=same))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--baseline-scales", type=int, default=12)
    args = parser.parse_args(argv)
    print(f"# ConsistencyCalibration default fit, {machine()}; CPU seconds (process time)")
    print_table(run(args.data, args.baseline_scales),
                ["case", "method", "seconds", "scales", "speedup", "measured", "max_dECE",
                 "same_best", "best"])


if __name__ == "__main__":
    main()
