"""Venn-Abers on real model outputs (issue 16): the table of docs/user_guide/posthoc.md.

Run: ``python benchmarks/venn_abers_table.py [--data ../shared/data]``.

For the CIFAR-10 ResNet-50 models trained with cross-entropy and with focal loss
(``cifar10_resnet50_ce_vs_focal``: 5,000 validation rows to fit, the 10,000 test
rows to evaluate), every calibrator below is fitted on the validation logits and
scored on the test set: NLL, 15-bin top-label ECE, accuracy and the fit +
predict time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import calkit
from calkit.posthoc import IsotonicCalibration, TemperatureScaling, VennAbersCalibration

CALIBRATORS = {
    "temperature scaling": lambda: TemperatureScaling(),
    "isotonic, one-vs-rest": lambda: IsotonicCalibration(multiclass="one_vs_rest"),
    "Venn-Abers, one-vs-rest": lambda: VennAbersCalibration(),
    "Venn-Abers, one-vs-rest, Brier merge": lambda: VennAbersCalibration(merge="brier"),
    "Venn-Abers, one-vs-one": lambda: VennAbersCalibration(multiclass="one_vs_one"),
    "cross Venn-Abers (5 folds), one-vs-rest": lambda: VennAbersCalibration(n_folds=5),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    args = parser.parse_args(argv)
    folder = args.data / "cifar10_resnet50_ce_vs_focal"
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found (pass --data)")
    for loss in ("cross_entropy", "focal_loss"):
        val = np.load(folder / f"resnet50_cifar10_{loss}_val_0.1_vanilla.npz")
        test = np.load(folder / f"resnet50_cifar10_{loss}_test_0.9_vanilla.npz")
        print(f"# ResNet-50, {loss}: fit on {len(val['labels'])}, evaluate on "
              f"{len(test['labels'])}")
        for name, make in CALIBRATORS.items():
            start = time.perf_counter()
            p = make().fit(val["logits"], val["labels"]).predict_proba(test["logits"])
            seconds = time.perf_counter() - start
            y = test["labels"]
            print(f"{name:42s} NLL {calkit.nll(y, p):.4f}  ECE {calkit.ece(y, p):.4f}  "
                  f"accuracy {np.mean(p.argmax(1) == y):.4f}  {seconds:.1f} s")


if __name__ == "__main__":
    main()
