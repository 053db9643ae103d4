"""The ``calkit`` command line: evaluate and calibrate saved classifier outputs.

Exit codes: 0 success, 1 a bad input file or value (one-line message on
stderr), 2 bad command-line usage, 3 a feature that needs something not
installed or not available in this version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3

#: probabilities are floored here before taking logs for a calibrator
PROB_FLOOR = 1e-12

EVALUATE_EXAMPLES = """\
examples:
  calkit evaluate --example --out report/          the bundled CIFAR-10 ResNet-50 logits
  calkit evaluate outputs.npz                      keys found automatically (logits/probs, labels)
  calkit evaluate ce.npz focal.npz --out cmp/      compare several models
  calkit evaluate probs.npy --labels labels.npy --probs --n-bins 10 --strategy quantile
  calkit evaluate model.npz --scores-key val_logits --labels-key val_labels
  calkit evaluate answers.csv --confidence-col stated_confidence --where llm=gpt-4o
  calkit evaluate answers.csv --confidence stated_confidence,chosen_token_confidence \
      --correct correct --group-by llm --out llm/     one row per (llm, source), diagram grid
"""

CALIBRATE_EXAMPLES = """\
examples:
  calkit calibrate --val val.npz --test test.npz --method ts --save ts.json --out calib/
  calkit calibrate --val outputs.npz --test outputs.npz --method ets
      (one file with val_* and test_* arrays: the names are matched to --val / --test)
"""


class CliError(Exception):
    """An error the command line reports in one line and exits with ``code``.

    Examples
    --------
    >>> import contextlib, io
    >>> from calkit.cli import EXIT_USAGE, CliError, main
    >>> err = CliError("--n-bins must be a positive integer, got 0", EXIT_USAGE)
    >>> err.code, str(err)
    (2, '--n-bins must be a positive integer, got 0')
    >>> with contextlib.redirect_stderr(io.StringIO()) as stderr:   # main catches it
    ...     code = main(["evaluate", "--example", "--n-bins", "0"])
    >>> code, stderr.getvalue().strip()
    (2, 'calkit: error: --n-bins must be a positive integer, got 0')
    """

    def __init__(self, message: str, code: int = EXIT_DATA):
        super().__init__(message)
        self.code = code


def _add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    kind = g.add_mutually_exclusive_group()
    kind.add_argument("--logits", dest="kind", action="store_const", const="logits",
                      help="the scores are logits (a softmax is applied)")
    kind.add_argument("--probs", dest="kind", action="store_const", const="probs",
                      help="the scores are probabilities (rows sum to 1)")
    p.set_defaults(kind="auto")
    g.add_argument("--scores-key", metavar="NAME",
                   help="array (.npz/.pt) or column (.csv) holding the scores")
    g.add_argument("--labels-key", metavar="NAME", help="array or column holding the labels")
    g.add_argument("--confidence-col", metavar="COL",
                   help="confidence column of a (confidence, correct) CSV")
    g.add_argument("--where", metavar="COL=VALUE", action="append", default=[],
                   help="keep only CSV rows with COL equal to VALUE (repeatable)")
    g.add_argument("--dropna", action="store_true",
                   help="drop CSV rows whose confidence is missing")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("metrics and output")
    g.add_argument("--n-bins", type=int, default=15, metavar="B",
                   help="bins of the binned metrics (default: 15)")
    g.add_argument("--strategy", choices=("uniform", "quantile"), default="uniform",
                   help="binning of the main reliability diagram (default: uniform)")
    g.add_argument("--out", metavar="DIR", type=Path,
                   help="write report.json, report.md/.html and PNG diagrams here")
    g.add_argument("--format", choices=("md", "html", "both"), default="both",
                   help="report format besides report.json (default: both)")
    g.add_argument("--no-plots", action="store_true", help="do not draw diagrams")
    g.add_argument("--ci", type=float, metavar="LEVEL",
                   help="add bootstrap confidence intervals at this level, e.g. 0.95")
    g.add_argument("--n-boot", type=int, default=1000, metavar="R",
                   help="bootstrap resamples for --ci (default: 1000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr for the bootstrap")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``calkit`` command.

    Examples
    --------
    >>> from calkit.cli import build_parser
    >>> args = build_parser().parse_args(["evaluate", "model.npz", "--probs", "--n-bins", "10"])
    >>> args.command, [str(f) for f in args.files], args.kind, args.n_bins, args.strategy
    ('evaluate', ['model.npz'], 'probs', 10, 'uniform')
    >>> args = build_parser().parse_args(["calibrate", "--val", "v.npz", "--test", "t.npz"])
    >>> args.command, str(args.val), args.method, args.kind
    ('calibrate', 'v.npz', 'ts', 'auto')
    """
    from calkit import __version__

    parser = argparse.ArgumentParser(
        prog="calkit", description="Measure and fix the calibration of classifiers.",
        epilog="Run 'calkit evaluate --help' or 'calkit calibrate --help' for examples.")
    parser.add_argument("--version", action="version", version=f"calkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    ev = sub.add_parser("evaluate", help="calibration metrics, report and diagrams of one file",
                        description="Print calibration metrics of saved predictions and "
                        "write a report.", epilog=EVALUATE_EXAMPLES, formatter_class=fmt)
    ev.add_argument("files", nargs="*", type=Path, metavar="FILE",
                    help=".npz, .npy, .pt, .csv or .parquet with scores (and labels); "
                    "several files are compared side by side")
    ev.add_argument("--example", action="store_true",
                    help="use the bundled CIFAR-10 ResNet-50 example (2,000 test logits)")
    ev.add_argument("--labels", type=Path, metavar="FILE", help="separate labels file")
    _add_input_options(ev)
    gr = ev.add_argument_group(
        "grouped (confidence, correct) tables, e.g. LLM answers (.csv/.parquet)",
        "Any of these options evaluates every confidence column for every group and writes a "
        "tidy table (grouped.csv) and a grid of reliability diagrams.")
    gr.add_argument("--confidence", metavar="COL[,COL]",
                    help="confidence column(s) in [0, 1] (default: the columns named *conf*)")
    gr.add_argument("--correct", metavar="COL",
                    help="0/1 or TRUE/FALSE correctness column (default: 'correct')")
    gr.add_argument("--group-by", metavar="COL[,COL]",
                    help="columns whose values form the groups, e.g. llm or llm,qset")
    _add_output_options(ev)
    ca = sub.add_parser("calibrate", help="fit a calibrator on validation data, compare on test",
                        description="Fit a post-hoc calibrator on --val and report test "
                        "metrics before and after.", epilog=CALIBRATE_EXAMPLES,
                        formatter_class=fmt)
    ca.add_argument("--val", type=Path, required=True, metavar="FILE", help="validation data")
    ca.add_argument("--test", type=Path, required=True, metavar="FILE", help="test data")
    ca.add_argument("--method", default="ts", metavar="NAME",
                    help="a calkit.posthoc.METHODS name: ts (temperature scaling, default), "
                    "ets, vs, ms, spline, histogram, isotonic; platt or beta for binary tasks")
    ca.add_argument("--save", type=Path, metavar="FILE",
                    help="save the fitted calibrator's parameters (JSON)")
    _add_input_options(ca)
    _add_output_options(ca)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calkit`` console script; returns the exit code.

    ``argv`` defaults to ``sys.argv[1:]``.  The metrics table goes to stdout,
    progress and error messages to stderr.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.cli import main
    >>> with tempfile.TemporaryDirectory() as out:
    ...     code = main(["evaluate", "--example", "--no-plots", "--format", "md", "--out", out])
    ...     written = sorted(p.name for p in Path(out).iterdir())
    metric                            value
    --------------------------------  ------
    accuracy                          0.9545
    ECE, 15 equal-width bins          0.0400
    ECE, 15 equal-mass bins           0.0393
    debiased ECE (L2, 15 equal-mass)  0.0789
    sweep ECE (L1, equal-mass)        0.0392
    smooth ECE                        0.0530
    MCE, 15 equal-width bins          0.5147
    Brier score                       0.0847
    NLL (log loss)                    0.3962
    >>> code, written
    (0, ['report.json', 'report.md'])
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        return _calibrate(args)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except ValueError as exc:  # LoadError and validation errors: bad data or values
        return _fail(str(exc), EXIT_DATA)
    except ImportError as exc:
        return _fail(str(exc), EXIT_MISSING)


def _fail(message: str, code: int) -> int:
    print(f"calkit: error: {message}", file=sys.stderr)
    return code


def _load(args, path: Path, labels: Path | None, prefer: str):
    from calkit.io import load_predictions

    where = _where(args)
    return load_predictions(path, labels=labels, kind=args.kind, scores_key=args.scores_key,
                            labels_key=args.labels_key, prefer=prefer,
                            confidence_col=args.confidence_col, where=where,
                            dropna=args.dropna)


def _check_common(args) -> None:
    if args.n_bins < 1:
        raise CliError(f"--n-bins must be a positive integer, got {args.n_bins}", EXIT_USAGE)
    if args.ci is not None and not 0 < args.ci < 1:
        raise CliError(f"--ci must lie strictly between 0 and 1, got {args.ci}", EXIT_USAGE)
    if args.n_boot < 10:
        raise CliError(f"--n-boot must be at least 10, got {args.n_boot}", EXIT_USAGE)


def _evaluate(args) -> int:
    from calkit.report import format_table

    _check_common(args)
    if args.example == bool(args.files):
        raise CliError("give either FILE(s) or --example (see 'calkit evaluate --help')",
                       EXIT_USAGE)
    if _grouped_mode(args):
        return _evaluate_grouped(args)
    if args.example:
        from calkit.datasets import example_path

        paths = [example_path()]
    else:
        paths = args.files
    preds = {}
    for path in paths:
        pred = _load(args, path, args.labels, prefer="test")
        print(f"calkit: {pred.describe()}", file=sys.stderr)
        preds[_unique(Path(pred.source.get("file", "model")).stem, preds)] = pred
    summaries = {name: _summarize(args, pred) for name, pred in preds.items()}
    table_input = summaries if len(summaries) > 1 else next(iter(summaries.values()))
    print(format_table(table_input))
    if args.out is not None:
        images = [] if args.no_plots else _evaluate_diagrams(args, preds, summaries)
        source = (next(iter(preds.values())).source if len(preds) == 1 else
                  {"files": {name: p.source for name, p in preds.items()}})
        _write(args, table_input, source, images)
    return EXIT_OK


def _unique(name: str, taken) -> str:
    """``name``, or ``name (2)``, ``name (3)``... when already taken."""
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name} ({k})"
    return candidate


def _summarize(args, pred, y_prob=None):
    from calkit.report import bootstrap_intervals, summarize

    y_prob = pred.y_prob if y_prob is None else y_prob
    summary = summarize(pred.y_true, y_prob, n_bins=args.n_bins, view=pred.view,
                        confidence_form=pred.kind == "confidence")
    if args.ci is not None:
        try:
            import calkit.metrics.bootstrap  # noqa: F401
        except ImportError as exc:
            raise CliError("--ci needs calkit.metrics.bootstrap, which this installation "
                           "lacks", EXIT_MISSING) from exc
        bootstrap_intervals(summary, pred.y_true, y_prob, confidence=args.ci,
                            n_resamples=args.n_boot, random_state=args.seed,
                            progress=not args.no_progress)
    return summary


def _pyplot_or_none():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("calkit: matplotlib is not installed; diagrams skipped "
              "(pip install 'calkit[plot]')", file=sys.stderr)
        return None
    return plt


def _evaluate_diagrams(args, preds: dict, summaries: dict) -> list[Path]:
    plt = _pyplot_or_none()
    if plt is None:
        return []
    args.out.mkdir(parents=True, exist_ok=True)
    if len(preds) > 1:
        return _save_figures(plt, _comparison_diagrams(args, preds, summaries), args.out)
    from calkit.plotting import ConfidenceHistogramDisplay, ReliabilityDisplay, RiskCoverageDisplay
    from calkit.report import _optional_smooth_ece

    (name, pred), = preds.items()
    figures = {}
    for strategy in _strategies(args):
        disp = ReliabilityDisplay.from_predictions(pred.y_true, pred.y_prob, n_bins=args.n_bins,
                                                   strategy=strategy, view=pred.view, name=name,
                                                   axis_labels=_confidence_axis_labels(pred),
                                                   smooth=_optional_smooth_ece() is not None)
        figures[f"reliability_{strategy}.png"] = disp.figure_
    if pred.kind != "confidence":
        figures["confidence_histogram.png"] = ConfidenceHistogramDisplay.from_predictions(
            pred.y_true, pred.y_prob, name=name).figure_
        figures["risk_coverage.png"] = RiskCoverageDisplay.from_predictions(
            pred.y_true, pred.y_prob, name=name).figure_
    return _save_figures(plt, figures, args.out)


def _strategies(args) -> tuple[str, str]:
    """The requested strategy first, then the other one."""
    return (args.strategy, "quantile" if args.strategy == "uniform" else "uniform")


def _comparison_diagrams(args, preds: dict, summaries: dict) -> dict:
    """Reliability diagrams of several files, drawn from the summaries' own bin tables."""
    from calkit.plotting import ReliabilityDisplay
    from calkit.plotting.reliability import _score_range

    first = next(iter(preds.values()))
    layout = "side_by_side" if len(preds) <= 3 else "overlay"
    ranges = [_score_range(p.y_true, p.y_prob, p.view, None) for p in preds.values()]
    figures = {}
    for strategy in _strategies(args):
        settings = dict(n_bins=args.n_bins, strategy=strategy, view=first.view)
        disp = ReliabilityDisplay([s.tables[strategy] for s in summaries.values()],
                                  list(summaries),
                                  [s.metrics[f"ece_{strategy}"] for s in summaries.values()],
                                  settings, score_ranges=ranges)
        disp.plot(layout=layout, axis_labels=_confidence_axis_labels(first))
        figures[f"reliability_{strategy}.png"] = disp.figure_
    return figures


def _confidence_axis_labels(pred):
    """Axis labels of a (confidence, correct) diagram; None keeps the view's defaults."""
    if pred.kind != "confidence":
        return None
    return f"Confidence ({pred.source.get('confidence', '')})", "Fraction correct"


def _save_figures(plt, figures: dict, out: Path) -> list[Path]:
    paths = []
    for filename, fig in figures.items():
        path = out / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _write(args, summaries, source: dict, images, extra=None) -> None:
    from calkit.report import write_report

    formats = ("md", "html") if args.format == "both" else (args.format,)
    written = write_report(args.out, summaries, source=source, images=images,
                           formats=formats, extra=extra)
    for path in [*written, *images]:
        print(f"calkit: wrote {path}", file=sys.stderr)


# ----------------------------------------------------------------------------- grouped tables

#: columns of the console table of ``evaluate --group-by`` (all columns go to grouped.csv)
GROUPED_COLUMNS = ("confidence", "n", "accuracy", "mean_confidence", "ece_uniform",
                   "ece_quantile", "smooth_ece", "brier", "auroc", "n_distinct")
MAX_GRID_PANELS = 48


def _grouped_mode(args) -> bool:
    return any(getattr(args, k, None) for k in ("confidence", "correct", "group_by"))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _where(args) -> dict:
    where = {}
    for item in args.where:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise CliError(f"--where expects COL=VALUE, got {item!r}", EXIT_USAGE)
        where[col] = value
    return where


def _evaluate_grouped(args) -> int:
    """``evaluate --confidence/--correct/--group-by``: calkit.metrics.grouped on a table."""
    from calkit.io import read_table
    from calkit.metrics.grouped import format_table as grouped_table
    from calkit.metrics.grouped import grouped_calibration

    if args.example or len(args.files) != 1:
        raise CliError("--confidence/--correct/--group-by need exactly one .csv or .parquet "
                       "FILE", EXIT_USAGE)
    path = args.files[0]
    table = read_table(path, where=_where(args))
    correct = args.correct or next((c for c in table if c.lower() in
                                    ("correct", "is_correct", "correctness")), None)
    if correct is None:
        raise CliError(f"{path.name}: no 'correct' column (columns: {list(table)}); name it with "
                       "--correct")
    sources = _split(args.confidence) or tuple(
        c for c in table if "conf" in c.lower() and c != correct)
    if not sources:
        raise CliError(f"{path.name}: no confidence column (columns: {list(table)}); name them "
                       "with --confidence")
    groups = _split(args.group_by)
    rows = grouped_calibration(table, confidence=sources, correct=correct, group_by=groups,
                               n_bins=args.n_bins, ci=args.ci, random_state=args.seed,
                               n_resamples=args.n_boot)
    columns = [*groups, *GROUPED_COLUMNS]
    print(f"calkit: {path.name}: {len(rows)} (group, confidence) rows, groups by "
          f"{list(groups) or 'none'}", file=sys.stderr)
    print(grouped_table(rows, columns=columns))
    if args.out is not None:
        from calkit.report import write_grouped_report

        images = [] if args.no_plots else _grouped_diagrams(args, table, sources, correct,
                                                            groups)
        source = {"file": path.name, "confidence": list(sources), "correct": correct,
                  "group_by": list(groups), "where": _where(args), "n_bins": args.n_bins}
        written = write_grouped_report(args.out, rows, columns=columns, source=source,
                                       images=images)
        for p in [*written, *images]:
            print(f"calkit: wrote {p}", file=sys.stderr)
    return EXIT_OK


def _grouped_diagrams(args, table, sources, correct, groups) -> list[Path]:
    """A grid of reliability diagrams, one per (group, confidence source) with answers."""
    plt = _pyplot_or_none()
    if plt is None:
        return []
    from calkit.metrics.binned import calibration_error
    from calkit.metrics.grouped import iter_groups
    from calkit.plotting import ReliabilityDisplay

    panels, skipped = [], []
    for group, source, conf, right in iter_groups(table, confidence=sources, correct=correct,
                                                  group_by=groups):
        label = ", ".join(str(v) for v in group.values()) or "all rows"
        if conf.size < args.n_bins:
            skipped.append(f"{label} / {source} ({conf.size} answers)")
            continue
        result = calibration_error(right.astype(np.int64), conf, n_bins=args.n_bins,
                                   strategy=args.strategy, view="positive")
        panels.append((label, source, conf.size, result))
    if skipped:
        print(f"calkit: no diagram for {len(skipped)} (group, confidence) pairs with fewer "
              f"answers than --n-bins: {'; '.join(skipped[:5])}"
              f"{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
    if len(panels) > MAX_GRID_PANELS:
        print(f"calkit: the diagram grid shows the first {MAX_GRID_PANELS} of {len(panels)} "
              "panels; select groups with --where", file=sys.stderr)
        panels = panels[:MAX_GRID_PANELS]
    if not panels:
        return []
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(2 * n_rows, n_cols, figsize=(4.6 * n_cols, 5.4 * n_rows),
                             squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [3, 1] * n_rows})
    cells = [(axes[2 * r, c], axes[2 * r + 1, c]) for r in range(n_rows) for c in range(n_cols)]
    for (ax, hist_ax), (label, source, n, result) in zip(cells, panels, strict=False):
        ReliabilityDisplay.from_result({source: result}, ax=ax, hist_ax=hist_ax,
                                       axis_labels=("Confidence", "Fraction correct"))
        ax.set_title(f"{label} (n={n:,})", fontsize="medium")
    for ax, hist_ax in cells[len(panels):]:
        ax.set_axis_off()
        hist_ax.set_axis_off()
    args.out.mkdir(parents=True, exist_ok=True)
    return _save_figures(plt, {"reliability_grid.png": fig}, args.out)


# ----------------------------------------------------------------------------- calibrate

def _calibrator(method: str):
    """A fresh calibrator for ``--method``, looked up in ``calkit.posthoc.METHODS``."""
    try:
        import calkit.posthoc as posthoc
    except ImportError as exc:
        raise CliError("calibrate needs calkit.posthoc, which this installation lacks "
                       f"({exc})", EXIT_MISSING) from exc
    methods = getattr(posthoc, "METHODS", None)
    if methods is None:
        raise CliError("calibrate needs calkit.posthoc.METHODS, which this version of "
                       "calkit.posthoc lacks", EXIT_MISSING)
    name = methods.get(method)
    if name is None:
        raise CliError(f"unknown --method {method!r}; choose from {', '.join(methods)}",
                       EXIT_USAGE)
    cls = getattr(posthoc, name, None)
    if cls is None:
        raise CliError(f"--method {method} ({name}) is not available in this version of "
                       "calkit.posthoc", EXIT_MISSING)
    return cls()


def _model_input(pred) -> np.ndarray:
    """What a calibrator is fitted on: the logits, or the log of the probabilities.

    Probabilities are floored at 1e-12 first: a class given exactly 0 would otherwise
    become a logit near -708 that dominates any NLL-based fit (20 Newsgroups has such rows).
    """
    if pred.kind == "confidence":
        raise CliError("calibrate needs class scores (logits or probabilities), not a "
                       "(confidence, correct) table")
    if pred.logits is not None:
        return pred.logits
    p = np.asarray(pred.y_prob, dtype=np.float64)
    return np.log(np.clip(p, PROB_FLOOR, None))


def _calibrate(args) -> int:
    from calkit.report import format_table

    _check_common(args)
    calibrator = _calibrator(args.method)
    val = _load(args, args.val, None, prefer="val")
    test = _load(args, args.test, None, prefer="test")
    print(f"calkit: val  {val.describe()}\ncalkit: test {test.describe()}", file=sys.stderr)
    calibrator.fit(_model_input(val), val.y_true)
    after = np.asarray(calibrator.predict_proba(_model_input(test)))
    summaries = {"before": _summarize(args, test), f"after ({args.method})":
                 _summarize(args, test, after)}
    print(format_table(summaries))
    if args.save is not None:
        _save_calibrator(calibrator, args.save)
    if args.out is not None:
        images = [] if args.no_plots else _calibrate_diagrams(args, test, after)
        _write(args, summaries, test.source, images,
               extra={"calibration": {"method": args.method, "val": val.source}})
    return EXIT_OK


def _save_calibrator(calibrator, path: Path) -> None:
    save = getattr(calibrator, "save", None)
    if save is None:
        raise CliError(f"{type(calibrator).__name__} cannot save its parameters", EXIT_MISSING)
    save(path)
    print(f"calkit: saved {type(calibrator).__name__} to {path}", file=sys.stderr)


def _calibrate_diagrams(args, test, after) -> list[Path]:
    plt = _pyplot_or_none()
    if plt is None:
        return []
    from calkit.plotting import ReliabilityDisplay

    probs = {"before": test.y_prob, f"after {args.method}": after}
    disp = ReliabilityDisplay.from_predictions(test.y_true, probs, n_bins=args.n_bins,
                                               strategy=args.strategy, view=test.view,
                                               layout="side_by_side",
                                               axis_labels=_confidence_axis_labels(test))
    args.out.mkdir(parents=True, exist_ok=True)
    return _save_figures(plt, {"reliability_before_after.png": disp.figure_}, args.out)
