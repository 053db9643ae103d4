"""``calkit calibrate``: fit a post-hoc calibrator on validation data, compare on test data."""

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
    add_input_options,
    add_output_options,
    calibrated_output,
    calibrator_input,
    check_view,
    confidence_axis_labels,
    describe,
    echo,
    load,
    pyplot_or_none,
    report_names,
    save_figures,
    say,
    summarize,
    write_report,
)

EXAMPLES = """\
examples:
  calkit calibrate --val val.npz --test test.npz --method ts --save ts.json --out calib/
  calkit calibrate --val outputs.npz --test outputs.npz --method ets
      (one file with val_* and test_* arrays: the names are matched to --val / --test)
  calkit calibrate --val val.npy --val-labels val_y.npy --test test.npy \\
      --test-labels test_y.npy --probs --method dirichlet
  calkit calibrate --val answers_val.csv --test answers_test.csv \\
      --confidence stated_confidence --correct correct --method beta --save beta.json
      ((confidence, correct) tables, e.g. LLM answers: a binary calibrator of the confidence)
"""

#: --method names besides calkit.posthoc.METHODS
EXTRA_METHODS = {"dirichlet": "DirichletCalibration", "scaling_binning": "ScalingBinning",
                 "auto": "AutoCalibration"}
FIGURE = "reliability_before_after.png"


def methods() -> dict:
    """``--method`` name -> calkit.posthoc class name."""
    try:
        import calkit.posthoc as posthoc
    except ImportError as exc:
        raise CliError(f"calibrate needs calkit.posthoc ({exc})", EXIT_MISSING) from exc
    table = getattr(posthoc, "METHODS", None)
    if table is None:
        raise CliError("calibrate needs calkit.posthoc.METHODS, which this version of "
                       "calkit.posthoc lacks", EXIT_MISSING)
    return {**table, **{k: v for k, v in EXTRA_METHODS.items() if k not in table}}


def add_parser(sub) -> argparse.ArgumentParser:
    ca = sub.add_parser("calibrate", help="fit a calibrator on validation data, compare on test",
                        description="Fit a post-hoc calibrator on --val and report test "
                        "metrics before and after.", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ca.add_argument("--val", type=Path, required=True, metavar="FILE", help="validation data")
    ca.add_argument("--test", type=Path, required=True, metavar="FILE", help="test data")
    ca.add_argument("--val-labels", type=Path, metavar="FILE",
                    help="labels of --val, when it holds scores only (.npy)")
    ca.add_argument("--test-labels", type=Path, metavar="FILE",
                    help="labels of --test, when it holds scores only (.npy)")
    ca.add_argument("--method", default=None, metavar="NAME",
                    help="ts (temperature scaling, default), ets, vs, ms, dirichlet, spline, "
                    "histogram, isotonic, scaling_binning, venn_abers; platt or beta for binary "
                    "tasks "
                    "(default for --confidence tables: platt); auto: cross-validated choice "
                    "among the fast calibrators by --criterion (the table is printed)")
    ca.add_argument("--criterion", choices=("nll", "ece", "brier"), default="nll",
                    help="what --method auto minimises on held-out folds (default: nll)")
    ca.add_argument("--save", type=Path, metavar="FILE",
                    help="save the fitted calibrator's parameters (JSON; see 'calkit apply')")
    g = add_input_options(ca)
    g.add_argument("--confidence", metavar="COL",
                   help="confidence column of a (confidence, correct) table, e.g. LLM answers")
    g.add_argument("--correct", metavar="COL",
                   help="0/1 or TRUE/FALSE correctness column of such a table "
                   "(default: 'correct')")
    add_output_options(ca)
    ca.set_defaults(run=run)
    return ca


def _calibrator(method: str, criterion: str = "nll"):
    """A fresh calibrator for ``--method`` (``auto`` chooses by ``criterion``)."""
    import calkit.posthoc as posthoc

    table = methods()
    name = table.get(method)
    if name is None:
        raise CliError(f"unknown --method {method!r}; choose from {', '.join(table)}")
    cls = getattr(posthoc, name, None)
    if cls is None:
        raise CliError(f"--method {method} ({name}) is not available in this version of "
                       "calkit.posthoc", EXIT_MISSING)
    return cls(criterion=criterion) if name == "AutoCalibration" else cls()


def run(args) -> int:
    confidence_table = args.confidence is not None or args.correct is not None
    method = args.method or ("platt" if confidence_table else "ts")
    from calkit.io import check_input_file

    for path in (args.val, args.test, args.val_labels, args.test_labels):
        if path is not None:
            check_input_file(path)  # before the (slow) calkit.posthoc import
    calibrator = _calibrator(method, args.criterion)
    outputs = Outputs([args.val, args.test, args.val_labels, args.test_labels], args.force)
    names = report_names(args, [FIGURE])
    if args.save is not None and args.out is not None and any(
            args.save.resolve() == (args.out / n).resolve() for n in names):
        raise CliError(f"--save {args.save} is one of the report files --out writes; save "
                       "the calibrator under another name")
    if args.save is not None:
        outputs.check_file(args.save, "--save")
    if args.out is not None:
        outputs.check_dir(args.out, names)
    for flag, path, labels in (("--val", args.val, args.val_labels),
                               ("--test", args.test, args.test_labels)):
        if path.suffix.lower() == ".npy" and labels is None:
            raise CliError(f"{flag} {path.name} holds scores only; give its labels with "
                           f"{flag}-labels FILE")
    kw = dict(confidence_col=args.confidence, labels_key=args.correct)
    val = load(args, args.val, args.val_labels, prefer="val", **kw)
    test = load(args, args.test, args.test_labels, prefer="test", **kw)
    describe(val, "val  ")
    describe(test, "test ")
    if confidence_table and val.kind != "confidence":
        raise CliError(f"--confidence/--correct: {args.val.name} was not read as a (confidence, "
                       "correct) table")
    _check_compatible(val, test)
    view = check_view(args, test)
    try:
        calibrator.fit(calibrator_input(val, calibrator), val.y_true)
        after = calibrated_output(test, calibrator.predict_proba(
            calibrator_input(test, calibrator)))
    except ValueError as exc:
        raise CliError(f"--method {method}: {exc}") from exc
    say(f"fitted {type(calibrator).__name__} on {val.n_samples} validation samples")
    _say_choices(calibrator)
    summaries = {"before": summarize(args, test, view),
                 f"after ({method})": summarize(args, test, view, after)}
    from calkit.report import format_table

    echo(format_table(summaries))
    if args.save is not None:
        save = getattr(calibrator, "save", None)
        if save is None:
            raise CliError(f"{type(calibrator).__name__} cannot save its parameters",
                           EXIT_MISSING)
        outputs.write_file(args.save, save, "--save")
        say(f"saved {type(calibrator).__name__} to {args.save} (apply it with 'calkit apply "
            f"{args.save} FILE --out calibrated.npz')")
    if args.out is not None:
        write_report(args, outputs, summaries, test.source,
                     lambda stage: _diagrams(args, test, after, method, view, stage),
                     extra={"calibration": {"method": method, "val": val.source}})
    return EXIT_OK


def _say_choices(calibrator) -> None:
    """What the fit chose and changed: the candidates of --method auto, prediction changes."""
    if hasattr(calibrator, "cv_table"):
        echo(calibrator.cv_table())
        say(f"chosen by cross-validation: {calibrator.best_candidate_}")
        calibrator = calibrator.best_calibrator_
    change = getattr(calibrator, "accuracy_change_", None)
    if change is not None:
        say(f"validation accuracy change from {type(calibrator).__name__} (it can change "
            f"predictions): {'+' if change >= 0 else ''}{100 * change:.2f} points")


def _check_compatible(val, test) -> None:
    if val.kind == "confidence" or test.kind == "confidence":
        if val.kind != test.kind:
            raise CliError("--val and --test must both be (confidence, correct) tables, or "
                           "both hold class scores")
        return
    kv = 2 if val.y_prob.ndim == 1 else val.y_prob.shape[1]
    kt = 2 if test.y_prob.ndim == 1 else test.y_prob.shape[1]
    if kv != kt or val.y_prob.ndim != test.y_prob.ndim:
        raise CliError(f"--val has scores of shape {val.y_prob.shape[1:] or '(N,)'} per sample "
                       f"({kv} classes) but --test {test.y_prob.shape[1:] or '(N,)'} ({kt} "
                       "classes)")


def _diagrams(args, test, after, method: str, view: str, out: Path) -> list[Path]:
    plt = pyplot_or_none()
    if plt is None:
        return []
    from calkit.plotting import ReliabilityDisplay

    probs = {"before": test.y_prob, f"after {method}": np.asarray(after)}
    disp = ReliabilityDisplay.from_predictions(test.y_true, probs, n_bins=args.n_bins,
                                               strategy=args.strategy, view=view,
                                               layout="side_by_side",
                                               axis_labels=confidence_axis_labels(test))
    return save_figures(plt, {FIGURE: disp.figure_}, out)
