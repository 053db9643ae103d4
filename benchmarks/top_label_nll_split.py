"""Where the top-label maps lose log-loss: the NLL split into its top-class and rest parts.

Run: ``python benchmarks/top_label_nll_split.py [--data ../shared/data] [--models NAME ...]``;
prints Markdown.

For a probability row ``p`` with top class ``t``, confidence ``c = p_t`` and
true class ``y``, the log-loss splits exactly into

* the **top part** ``-[y = t] log c - [y != t] log(1 - c)``: the binary
  log-loss of the confidence against whether the prediction is right, what a
  top-label map fits;
* the **rest part** ``-[y != t] log(p_y / (1 - c))``: how well the mass left
  off the top class is shared among the others (top-label maps share it in
  proportion to the input, so this part only moves where the share is capped
  or floored).

The **floor** column is the part of the NLL from test rows whose true class got
less than ``1e-6`` (the map sent the confidence to about 1 and the floor is all
the true class kept), and ``a`` the weight of temperature scaling in the
output (``ts_weight_``; mean of the folds).  Every calibrator is fitted on one
half of each netcal model's 10,000 test rows and evaluated on the other, both
ways round (the folds of ``benchmarks/posthoc_table.py``), as the map alone
(``ts_weight=0``, the published estimators) and with the default
``ts_weight="auto"``; temperature scaling (TS) for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from calkit import softmax
from calkit.posthoc import (
    HistogramBinning,
    IsotonicCalibration,
    SplineCalibration,
    TemperatureScaling,
)
from calkit.posthoc.scaling_binning import ScalingBinning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from posthoc_table import DEFAULT_DATA, MODELS, folds  # noqa: E402

METHODS = {"spline": SplineCalibration, "histogram": HistogramBinning,
           "isotonic": IsotonicCalibration, "scaling-binning": ScalingBinning}


def nll_split(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """Mean (total, top part, rest part, floor part) of the log-loss of rows ``p``."""
    rows = np.arange(len(y))
    top = np.argmax(p, axis=1)
    c = p[rows, top]
    right = top == y
    py = p[rows, y]
    rest_mass = np.where(right, 1.0, 1.0 - c)
    total = -np.log(py)
    top_part = np.where(right, -np.log(c), -np.log(rest_mass))
    rest_part = np.where(right, 0.0, -np.log(py / rest_mass))
    floor_part = np.where(py < 1e-6, total, 0.0)
    return tuple(float(v.mean()) for v in (total, top_part, rest_part, floor_part))


def evaluate(root: Path, models=MODELS) -> str:
    head = ("| method | NLL | top part | rest part | floor part | a |\n"
            "|---|---|---|---|---|---|")
    blocks = []
    for model in models:
        rows = {}
        for zv, yv, zt, yt in folds(root, model):
            rows.setdefault("uncalibrated", []).append((*nll_split(yt, softmax(zt)), 0.0))
            ts = TemperatureScaling().fit(zv, yv)
            rows.setdefault("TS", []).append((*nll_split(yt, ts.predict_proba(zt)), 1.0))
            for name, make in METHODS.items():
                for tag, weight in (("map alone", 0), ("default", "auto")):
                    cal = make(ts_weight=weight).fit(zv, yv)
                    rows.setdefault(f"{name} ({tag})", []).append(
                        (*nll_split(yt, cal.predict_proba(zt)), cal.ts_weight_))
        lines = [f"**{model}** (mean of 2 folds)", "", head]
        for name, values in rows.items():
            m = np.mean(values, axis=0)
            lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in m[:4])
                         + f" | {m[4]:.2f} |")
        blocks.append("\n".join(lines))
        print(f"<!-- {model} done -->", flush=True)
    return "\n\n".join(blocks) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    args = parser.parse_args(argv)
    print(evaluate(args.data, args.models), flush=True)


if __name__ == "__main__":
    main()
