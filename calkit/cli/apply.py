"""``calkit apply``: apply a saved calibrator to a file of scores."""

from __future__ import annotations

__all__: list[str] = []  # the command is used through calkit.cli.main

import argparse
from pathlib import Path

import numpy as np

from calkit.cli._common import (
    EXIT_MISSING,
    EXIT_OK,
    CliError,
    Outputs,
    add_force_option,
    add_input_options,
    calibrated_output,
    calibrator_input,
    describe,
    load,
    say,
)

EXAMPLES = """\
examples:
  calkit calibrate --val val.npz --test test.npz --method ts --save ts.json
  calkit apply ts.json new.npz --out new_calibrated.npz
  calkit apply ts.json scores.npy --probs --out calibrated.npz
  calkit evaluate new_calibrated.npz            (probs and labels, when FILE had labels)
"""

#: output suffixes: .npz (probs and, when known, labels) or .npy (probs only)
OUT_SUFFIXES = (".npz", ".npy")


def add_parser(sub) -> argparse.ArgumentParser:
    ap = sub.add_parser("apply", help="apply a saved calibrator (calkit calibrate --save)",
                        description="Apply a calibrator saved by 'calkit calibrate --save' to "
                        "the scores of FILE and write the calibrated probabilities.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("calibrator", type=Path, metavar="CALIBRATOR",
                    help="JSON file written by 'calkit calibrate --save'")
    ap.add_argument("file", type=Path, metavar="FILE",
                    help=".npz, .npy, .pt, .csv or .parquet with the scores (labels optional)")
    ap.add_argument("--out", type=Path, required=True, metavar="OUT",
                    help="where to write the calibrated probabilities: .npz (probs, plus "
                    "labels when FILE has them) or .npy")
    ap.add_argument("--labels", type=Path, metavar="FILE", help="separate labels file")
    g = add_input_options(ap)
    g.add_argument("--confidence", metavar="COL",
                   help="confidence column of a (confidence, correct) table")
    g.add_argument("--correct", metavar="COL",
                   help="correctness column of such a table (default: 'correct')")
    add_force_option(ap.add_argument_group("output"))
    ap.set_defaults(run=run)
    return ap


def _load_calibrator(path: Path):
    from calkit.io import check_input_file

    check_input_file(path)
    try:
        from calkit.posthoc import load_calibrator
    except ImportError as exc:
        raise CliError(f"apply needs calkit.posthoc ({exc})", EXIT_MISSING) from exc
    try:
        return load_calibrator(path)
    except (ValueError, TypeError, KeyError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"{path.name}: not a usable calibrator file ({message})") from exc
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def run(args) -> int:
    if args.out.suffix.lower() not in OUT_SUFFIXES:
        raise CliError(f"--out {args.out}: write an .npz or .npy file, got "
                       f"{args.out.suffix or 'no suffix'!r}")
    outputs = Outputs([args.calibrator, args.file, args.labels], args.force)
    outputs.check_file(args.out, "--out")
    calibrator = _load_calibrator(args.calibrator)
    pred = load(args, args.file, args.labels, prefer="test", require_labels=False,
                confidence_col=args.confidence, labels_key=args.correct)
    describe(pred)
    x = calibrator_input(pred, calibrator)
    try:
        probs = calibrated_output(pred, calibrator.predict_proba(x))
    except ValueError as exc:
        raise CliError(f"{args.calibrator.name} cannot be applied to {args.file.name}: "
                       f"{exc}") from exc
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[0] != pred.n_samples or not np.isfinite(probs).all():
        raise CliError(f"{type(calibrator).__name__} returned {probs.shape} values with "
                       "non-finite entries or the wrong length")
    arrays = {"probs": probs}
    if pred.y_true is not None:
        arrays["labels"] = np.asarray(pred.y_true)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            if args.out.suffix.lower() == ".npy":
                np.save(fh, probs, allow_pickle=False)
            else:
                np.savez(fh, **arrays)

    outputs.write_file(args.out, write, "--out")
    shape = "x".join(str(d) for d in probs.shape)
    kept = " and labels" if "labels" in arrays and args.out.suffix.lower() == ".npz" else ""
    say(f"applied {type(calibrator).__name__} from {args.calibrator.name}: wrote {shape} "
        f"calibrated probabilities{kept} to {args.out}")
    return EXIT_OK
