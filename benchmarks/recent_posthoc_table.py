"""Post-hoc comparison table for the recent methods (issue 9): method x real data set.

Run: ``python benchmarks/recent_posthoc_table.py [--quick] [--json out.json]``.

Every calibrator is fitted on the data set's validation split and scored on its test
split: top-label ECE (15 equal-width bins), NLL, Brier score and accuracy, plus the fit
time and its ratio to temperature scaling's fit time measured in the same run (the CPU
is shared while this runs, so only the ratios are meaningful, and even they are noisy).

Methods: uncalibrated; temperature scaling (the baseline, if
``calkit.posthoc.temperature`` is present); ConsistencyCalibration (noise family and
scale searched on validation by ECE, 200 perturbations); FeatureClipping (threshold by
validation NLL; only where penultimate features exist); DirichletCalibration with ODIR,
``reg_lambda = reg_mu`` chosen by 5-fold cross-validated NLL on the validation split
from {1e-4, 1e-3, 1e-2, 1e-1}.

Data (``../shared/data``): CIFAR-10 ResNet-50 trained with cross-entropy and with focal
loss (5,000 val / 10,000 test), CIFAR-10-LT ResNet (4,064 long-tailed val / 10,000
balanced test, with 64-d features) and an MNIST CNN (10,000 / 10,000).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: avoid BLAS oversubscription
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from calkit import brier_score, ece, nll, softmax  # noqa: E402
from calkit.metrics.grouped import format_table  # noqa: E402
from calkit.posthoc.consistency import ConsistencyCalibration  # noqa: E402
from calkit.posthoc.dirichlet import DirichletCalibration  # noqa: E402
from calkit.posthoc.feature_clipping import FeatureClipping  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1)


def load_datasets() -> dict:
    sets = {}
    d = DATA / "cifar10_resnet50_ce_vs_focal"
    for loss, name in (("cross_entropy", "cifar10-resnet50-ce"),
                       ("focal_loss", "cifar10-resnet50-focal")):
        val = np.load(d / f"resnet50_cifar10_{loss}_val_0.1_vanilla.npz", allow_pickle=False)
        test = np.load(d / f"resnet50_cifar10_{loss}_test_0.9_vanilla.npz", allow_pickle=False)
        sets[name] = dict(val=(val["logits"], val["labels"]), test=(test["logits"],
                                                                   test["labels"]))
    d = DATA / "cifar10_longtail"

    def lt(split, what):
        return np.load(d / f"cifar10_{split}_{what}.npy", allow_pickle=False)[0]

    sets["cifar10-LT-resnet"] = dict(
        val=(lt("val", "z"), lt("val", "label")), test=(lt("test", "z"), lt("test", "label")),
        val_features=lt("val", "feature"), test_features=lt("test", "feature"))
    m = np.load(DATA / "ood_mnist_fashion" / "cnn_mnist_id_fashion_ood.npz", allow_pickle=False)
    sets["mnist-cnn"] = dict(val=(m["val_logits"], m["val_labels"]),
                             test=(m["test_logits"], m["test_labels"]))
    return sets


def methods(data: dict, quick: bool) -> dict:
    m = 50 if quick else 200
    out = {}
    try:
        from calkit.posthoc.temperature import TemperatureScaling

        out["temperature"] = lambda z, y: TemperatureScaling().fit(z, y)
    except ImportError:
        pass
    out["consistency"] = lambda z, y: ConsistencyCalibration(n_perturbations=m).fit(z, y)
    if "val_features" in data:
        out["feature_clipping"] = lambda z, y: FeatureClipping().fit(
            data["val_features"], y, logits=z)
    out["dirichlet_odir"] = lambda z, y: DirichletCalibration(reg_lambda=list(LAMBDAS)).fit(z, y)
    return out


def scores(y, p) -> dict:
    return dict(ece=float(ece(y, p)), nll=float(nll(y, p)), brier=float(brier_score(y, p)),
                accuracy=float(np.mean(np.argmax(p, 1) == y)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 perturbations for CC")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"needs the shared data at {DATA}")
    print(f"machine: {machine()} (shared CPU: timings are noisy, read the ratios)\n")
    rows = []
    for name, data in load_datasets().items():
        (zv, yv), (zt, yt) = data["val"], data["test"]
        zv, zt = zv.astype(np.float64), zt.astype(np.float64)
        rows.append(dict(dataset=name, method="uncalibrated", setting="",
                         **scores(yt, softmax(zt)), fit_s=0.0, fit_vs_ts=float("nan")))
        base = None
        for method, fit in methods(data, args.quick).items():
            start = time.perf_counter()
            cal = fit(zv, yv)
            seconds = time.perf_counter() - start
            x_test = data["test_features"] if method == "feature_clipping" else zt
            p = np.asarray(cal.predict_proba(x_test), dtype=np.float64)
            if method == "temperature":
                base = seconds
            setting = {"temperature": lambda c: f"T={getattr(c, 'temperature_', np.nan):.3f}",
                       "consistency": lambda c: f"{c.noise_} eps={c.noise_scale_:.3f}",
                       "feature_clipping": lambda c: f"c={c.threshold_:g}",
                       "dirichlet_odir": lambda c: f"lambda={c.reg_lambda_:g}"}[method](cal)
            rows.append(dict(dataset=name, method=method, setting=setting, **scores(yt, p),
                             fit_s=seconds,
                             fit_vs_ts=seconds / base if base else float("nan")))
            print(f"  {name:24s} {method:18s} done in {seconds:.2f} s", file=sys.stderr)
    print(format_table(rows, digits=4))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
