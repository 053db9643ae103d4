"""Evidence for the LLM-confidence guide (issue 9): stated vs token confidence, and ties.

Run: ``python benchmarks/llm_evidence.py [--resamples 1000]``.

Data: ``../shared/data/llm_confidence/llm-confidence-correct.csv`` (11 LLMs x 5 QA
sets, 72,185 answers).  Token-probability confidences exist for the two Llama models
only, so the stated-vs-token comparison is made on those models' answers that have
both (``paired=True``: the same answers for both sources).

Tables printed (Markdown):

1. per model and source: accuracy, mean confidence, ECE (equal-width / equal-mass),
   smooth ECE, Brier, AUROC (right vs wrong) and AURC, with 95 % bootstrap intervals
   for ECE and AUROC;
2. per model: which source is better calibrated (lower equal-width ECE) and which
   better ranks errors (higher AUROC), and whether the two verdicts agree;
3. ties: for the stated confidence of every model, the distinct values, the share of
   the largest tie, the equal-mass bins left of 15, and what splitting ties *by rank*
   (as a naive ``np.array_split`` of the sorted answers does) would do: the range of
   that ECE over 50 random orders of the tied answers, against calkit's value-based
   equal-mass ECE, and sweep ECE with calkit's wrong-before-right tie order against
   random tie orders.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: avoid BLAS oversubscription

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from calkit.binning import table_from_ranks  # noqa: E402
from calkit.metrics.binned import error_from_table  # noqa: E402
from calkit.metrics.grouped import format_table, grouped_calibration  # noqa: E402
from calkit.metrics.sweep import sweep_table  # noqa: E402

CSV = (Path(__file__).resolve().parents[2] / "shared" / "data" / "llm_confidence"
       / "llm-confidence-correct.csv")
SOURCES = ("stated_confidence", "chosen_token_confidence")
N_ORDERS = 50


def load() -> dict:
    with open(CSV, newline="") as fh:
        rows = list(csv.reader(fh))
    columns = zip(*rows[1:], strict=True)
    return {name: np.array(col) for name, col in zip(rows[0], columns, strict=True)}


def rank_split_ece(conf, ok, order_key, n_bins=15) -> float:
    """ECE of equal-mass bins cut by rank (array_split), ties ordered by ``order_key``."""
    order = np.lexsort((order_key, conf))
    s, t = conf[order], ok[order].astype(np.float64)
    sizes = [len(a) for a in np.array_split(np.arange(len(s)), n_bins)]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return float(error_from_table(table_from_ranks(s, t, bounds)))


def sweep_with_order(conf, ok, order_key) -> tuple[float, int]:
    """Sweep ECE when tied answers are ranked by ``order_key`` (a 1e-9 nudge inside ties)."""
    ranks = np.argsort(np.argsort(order_key, kind="stable"), kind="stable")
    nudged = (conf + 1e-9 * ranks / len(conf)) / (1 + 1e-9)  # values differ by >= 0.001
    table = sweep_table(nudged, ok)
    return float(error_from_table(table)), table.n_bins


def tie_rows(table: dict) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for llm in sorted(set(table["llm"].tolist())):
        keep = table["llm"] == llm
        conf = table["stated_confidence"][keep].astype(np.float64)
        ok = table["correct"][keep] == "TRUE"
        (row,) = grouped_calibration({"c": conf, "ok": ok}, confidence="c", correct="ok")
        split = [rank_split_ece(conf, ok, rng.permutation(len(conf))) for _ in range(N_ORDERS)]
        sweeps = [sweep_with_order(conf, ok, rng.permutation(len(conf)))[0]
                  for _ in range(N_ORDERS)]
        out.append(dict(
            llm=llm, n=row["n"], n_distinct=row["n_distinct"],
            largest_tie=row["largest_tie_share"], share_at_max=row["share_at_max"],
            quantile_bins=row["quantile_bins"], ece_quantile=row["ece_quantile"],
            rank_split_min=min(split), rank_split_max=max(split),
            sweep_ece=row["sweep_ece"], sweep_bins=row["sweep_bins"],
            sweep_random_min=min(sweeps), sweep_random_max=max(sweeps)))
    return out


def verdicts(rows: list[dict]) -> list[dict]:
    out = []
    for llm in sorted({r["llm"] for r in rows}):
        by = {r["confidence"]: r for r in rows if r["llm"] == llm}
        if any(s not in by or by[s]["n"] == 0 for s in SOURCES):
            continue
        stated, token = by[SOURCES[0]], by[SOURCES[1]]
        calib = "stated" if stated["ece_uniform"] < token["ece_uniform"] else "token"
        ranks = "stated" if stated["auroc"] > token["auroc"] else "token"
        out.append(dict(llm=llm, n=stated["n"], ece_stated=stated["ece_uniform"],
                        ece_token=token["ece_uniform"], better_calibrated=calib,
                        auroc_stated=stated["auroc"], auroc_token=token["auroc"],
                        aurc_stated=stated["aurc"], aurc_token=token["aurc"],
                        better_ranking=ranks, agree=calib == ranks))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    if not CSV.exists():
        sys.exit(f"needs {CSV}")
    table = load()
    llama = np.char.startswith(table["llm"], "Meta-Llama")
    sub = {k: v[llama] for k, v in table.items()}
    rows = grouped_calibration(sub, confidence=SOURCES, correct="correct", group_by="llm",
                               paired=True, ci=0.95, n_resamples=args.resamples,
                               random_state=0)
    rows += grouped_calibration({k: v[~llama] for k, v in table.items()},
                                confidence=SOURCES[0], correct="correct", group_by="llm",
                                ci=0.95, n_resamples=args.resamples, random_state=0)
    cols = ["llm", "confidence", "n", "accuracy", "mean_confidence", "ece_uniform",
            "ece_uniform_low", "ece_uniform_high", "ece_quantile", "smooth_ece", "brier",
            "auroc", "auroc_low", "auroc_high", "aurc"]
    print("## 1. Per model and confidence source (Llama: paired rows with both sources)\n")
    print(format_table(rows, cols, digits=3))
    print("\n## 2. Better calibrated vs better at ranking errors\n")
    print(format_table(verdicts(rows), digits=3))
    by_set = grouped_calibration(sub, confidence=SOURCES, correct="correct",
                                 group_by=("llm", "qset"), paired=True)
    print("\n## 2b. Llama models per QA set (paired rows)\n")
    print(format_table(by_set, ["llm", "qset", "confidence", "n", "accuracy",
                                "mean_confidence", "ece_uniform", "auroc", "aurc"], digits=3))
    print(f"\n## 3. Ties in the stated confidence ({N_ORDERS} random tie orders)\n")
    print(format_table(tie_rows(table), digits=4))


if __name__ == "__main__":
    main()
