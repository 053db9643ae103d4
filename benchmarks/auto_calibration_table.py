"""AutoCalibration against temperature scaling on real CIFAR models.

Run: ``python benchmarks/auto_calibration_table.py [--data ../shared/data]``; prints Markdown.
``--scaling-binning`` instead compares ScalingBinning's ``split="none"`` and ``"paper"``
with histogram binning by test ECE on the same 14 fits.

Models: the five netcal CIFAR-10/100 networks (``cifar_softmax_netcal``, test-set
probabilities, turned into logits as ``log(max(p, 1e-12))`` like the CLI) and the
two CIFAR-10 ResNet-50s of ``cifar10_resnet50_ce_vs_focal`` (test-set logits).
The 10,000 test rows of each model are split by a fixed permutation into two
halves of 5,000; every calibrator is fitted on one half and evaluated on the
other, both ways round (14 fits).  For each fit: temperature scaling (NLL),
``AutoCalibration(criterion="nll")`` and ``AutoCalibration(criterion="ece")``
with their default candidates, evaluated by NLL and top-label ECE (15
equal-width bins, ``calkit.ece``) and accuracy.  Targets: by NLL, never worse
than TS by more than 1 %; by ECE, better than TS on most fits.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from calkit import accuracy, ece, nll
from calkit.posthoc import AutoCalibration, HistogramBinning, ScalingBinning, TemperatureScaling

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PROB_FLOOR = 1e-12  # calkit.cli.PROB_FLOOR: how the CLI turns probabilities into logits

NETCAL = {
    "lenet-5-cifar-10": "CIFAR-10 LeNet-5",
    "wideresnet-16-4-cifar-10": "CIFAR-10 WRN-16-4",
    "lenet-5-cifar-100": "CIFAR-100 LeNet-5",
    "wideresnet-16-4-cifar-100": "CIFAR-100 WRN-16-4",
    "densenet-bc-100-cifar-100": "CIFAR-100 DenseNet-BC-100",
}
RESNET = {"cross_entropy": "CIFAR-10 ResNet-50 (CE)", "focal_loss": "CIFAR-10 ResNet-50 (focal)"}


def models(root: Path):
    """Yield (name, logits (10000, K) float64, labels) for every CIFAR model in ``root``."""
    for stem, name in NETCAL.items():
        with np.load(root / "cifar_softmax_netcal" / f"{stem}.npz", allow_pickle=False) as d:
            p, y = d["predictions"], d["ground_truth"]
        yield name, np.log(np.clip(p.astype(np.float64), PROB_FLOOR, None)), y
    for loss, name in RESNET.items():
        path = (root / "cifar10_resnet50_ce_vs_focal"
                / f"resnet50_cifar10_{loss}_test_0.9_vanilla.npz")
        with np.load(path, allow_pickle=False) as d:
            yield name, d["logits"].astype(np.float64), d["labels"]


def halves(n: int, seed: int = 0):
    """The two (fit rows, eval rows) folds of a fixed random split into halves."""
    order = np.random.default_rng(seed).permutation(n)
    a, b = np.sort(order[: n // 2]), np.sort(order[n // 2:])
    return (a, b), (b, a)


def evaluate(cal, z, y) -> dict:
    p = cal.predict_proba(z)
    return {"nll": float(nll(y, p)), "ece": float(ece(y, p)), "acc": float(accuracy(y, p))}


def run(root: Path) -> list[dict]:
    rows = []
    for name, z, y in models(root):
        for fold, (fit, held) in enumerate(halves(len(y))):
            row = {"model": name, "fold": fold}
            ts = TemperatureScaling().fit(z[fit], y[fit])
            row["ts"] = evaluate(ts, z[held], y[held])
            for criterion in ("nll", "ece"):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    auto = AutoCalibration(criterion=criterion).fit(z[fit], y[fit])
                row[criterion] = evaluate(auto, z[held], y[held])
                row[criterion]["choice"] = auto.best_candidate_
                row[criterion]["time"] = time.perf_counter() - start
            rows.append(row)
            print(f"<!-- {name} fold {fold} done -->", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | fold | TS NLL | auto-NLL NLL (choice) | NLL ratio | TS ECE "
             "| auto-ECE ECE (choice) | accuracy change (auto-NLL / auto-ECE) | fit time (s) |",
             "|---|---:|---:|---|---:|---:|---|---|---:|"]
    for r in rows:
        ts, a_nll, a_ece = r["ts"], r["nll"], r["ece"]
        lines.append(
            f"| {r['model']} | {r['fold']} | {ts['nll']:.4f} | {a_nll['nll']:.4f} "
            f"({a_nll['choice']}) | {a_nll['nll'] / ts['nll']:.4f} | {ts['ece']:.4f} | "
            f"{a_ece['ece']:.4f} ({a_ece['choice']}) | "
            f"{100 * (a_nll['acc'] - ts['acc']):+.2f} / {100 * (a_ece['acc'] - ts['acc']):+.2f} "
            f"| {a_nll['time']:.1f} / {a_ece['time']:.1f} |")
    n = len(rows)
    ok_nll = sum(r["nll"]["nll"] <= 1.01 * r["ts"]["nll"] for r in rows)
    better_nll = sum(r["nll"]["nll"] < r["ts"]["nll"] for r in rows)
    worst = max(r["nll"]["nll"] / r["ts"]["nll"] for r in rows)
    better_ece = sum(r["ece"]["ece"] < r["ts"]["ece"] for r in rows)
    med = np.median([r["ece"]["ece"] / r["ts"]["ece"] for r in rows])
    lines += ["",
              f"- AutoCalibration(criterion='nll') within 1 % of TS's test NLL: **{ok_nll} of "
              f"{n}** fits (lower than TS on {better_nll}; worst ratio {worst:.4f}).",
              f"- AutoCalibration(criterion='ece') test ECE below TS's: **{better_ece} of {n}** "
              f"fits (median ratio {med:.3f})."]
    return "\n".join(lines)


def scaling_binning_splits(root: Path) -> str:
    """Test ECE of ScalingBinning with split="none" / "paper" and of HistogramBinning."""
    methods = {"none": ScalingBinning, "paper": lambda: ScalingBinning(split="paper"),
               "histogram": HistogramBinning}
    res = {k: [] for k in methods}
    for _, z, y in models(root):
        for fit, held in halves(len(y)):
            for key, make in methods.items():
                res[key].append(evaluate(make().fit(z[fit], y[fit]), z[held], y[held])["ece"])
    none, paper, hist = (np.array(res[k]) for k in methods)
    return (f"- ScalingBinning split='none' vs 'paper': lower test ECE on "
            f"{int((none < paper).sum())} of {len(none)} fits (median {np.median(none):.4f} "
            f"vs {np.median(paper):.4f}); "
            f"vs HistogramBinning (15 bins): lower on {int((none < hist).sum())} "
            f"(median {np.median(hist):.4f}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--scaling-binning", action="store_true",
                        help="instead: ScalingBinning's split='none' vs 'paper' vs histogram")
    args = parser.parse_args()
    if args.scaling_binning:
        print(scaling_binning_splits(args.data))
        return
    print(table(run(args.data)))


if __name__ == "__main__":
    main()
