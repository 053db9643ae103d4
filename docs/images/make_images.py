"""Regenerate the two diagrams in docs/images from ../shared/data (run from the repo root)."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

from calkit import calibration_error, softmax  # noqa: E402
from calkit.io import load_predictions  # noqa: E402
from calkit.plotting import ReliabilityDisplay  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUT = Path(__file__).resolve().parent


def ce_vs_focal() -> None:
    folder = DATA / "cifar10_resnet50_ce_vs_focal"
    probs = {}
    for name, stem in [("cross-entropy", "cross_entropy"), ("focal loss", "focal_loss")]:
        with np.load(folder / f"resnet50_cifar10_{stem}_test_0.9_vanilla.npz",
                     allow_pickle=False) as d:
            probs[name], labels = softmax(d["logits"]), d["labels"]
    disp = ReliabilityDisplay.from_predictions(labels, probs, layout="side_by_side", smooth=True,
                                               interval="wilson",
                                               title="CIFAR-10 ResNet-50, 10,000 test images")
    disp.figure_.savefig(OUT / "reliability_ce_vs_focal.png", dpi=100)


def llm_confidence() -> None:
    path = DATA / "llm_confidence" / "llm-confidence-correct.csv"
    where = {"llm": "Meta-Llama-3.1-70B-Instruct"}
    results = {}
    for name, column in [("stated (verbal)", "stated_confidence"),
                         ("token probability", "chosen_token_confidence")]:
        pred = load_predictions(path, where=where, confidence_col=column, dropna=True)
        results[name] = calibration_error(pred.y_true, pred.y_prob, view="positive", n_bins=10)
    disp = ReliabilityDisplay.from_result(results, layout="side_by_side", interval="wilson",
                                          axis_labels=("Confidence",
                                                       "Fraction of answers correct"),
                                          count_labels=("correct", "wrong"),
                                          title="Llama-3.1-70B-Instruct on 5 QA sets: stated vs "
                                                "token-probability confidence")
    disp.figure_.savefig(OUT / "reliability_llm_confidence.png", dpi=100)


if __name__ == "__main__":
    ce_vs_focal()
    llm_confidence()
