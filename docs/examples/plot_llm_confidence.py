"""
LLM answers: stated confidence against token probability
========================================================

Llama-3.1-70B-Instruct answered questions from five QA sets and, for each answer, *said*
how confident it was (verbal, "stated" confidence); the probability of the answer's tokens
gives a second confidence.  Each is checked against whether the answer was right, as a
binary reliability diagram (``view="positive"``: confidence against correctness), with 95%
Wilson intervals per bin.

**What to read.** Both confidences are over-confident where most answers are: the upper
bins lie below the diagonal.  Token probabilities are the worse of the two here: most answers
get a token probability above 0.9 (the tall count bars on the right) while only about 80% of
them are right, so the binned ECE is larger than that of the stated confidence.  Stated
confidences below 0.5 are rare (wide Wilson intervals) and there the model is, if anything,
under-confident.

Data: ``../shared/data/llm_confidence`` (Michael et al., MIT licence), 72,185 answers of 11
models; this example needs that folder and draws nothing without it.
"""

import csv
import os
from pathlib import Path

import numpy as np

from calkit import ece
from calkit.plotting import ReliabilityDisplay

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
path = DATA / "llm_confidence" / "llm-confidence-correct.csv"
MODEL = "Meta-Llama-3.1-70B-Instruct"

if not path.exists():
    print(f"{path} is absent: this example needs the LLM answers and draws nothing")
else:
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["llm"] == MODEL]
    columns = {"stated (verbal)": "stated_confidence",
               "token probability": "chosen_token_confidence"}
    probs, correct = {}, None
    keep = [r for r in rows if all(r[c] not in ("", "NA", "nan") for c in columns.values())]
    correct = np.array([r["correct"].strip().upper() == "TRUE" for r in keep], dtype=int)
    for name, column in columns.items():
        probs[name] = np.clip(np.array([float(r[column]) for r in keep]), 0, 1)
    print(f"{MODEL}: {len(keep)} answers with both confidences, accuracy {correct.mean():.3f}")
    for name, p in probs.items():
        print(f"  {name:18s} mean confidence {p.mean():.3f}  ECE "
              f"{ece(correct, p, view='positive', n_bins=10):.3f}")
    ReliabilityDisplay.from_predictions(
        correct, probs, view="positive", n_bins=10, layout="side_by_side", interval="wilson",
        confidence_scale="linear", axis_labels=("Confidence", "Fraction of answers correct"),
        count_labels=("correct", "wrong"),
        title=f"{MODEL} on 5 QA sets")
