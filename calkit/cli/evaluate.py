"""``calkit evaluate``: calibration metrics, report and diagrams of saved predictions."""

from __future__ import annotations

__all__: list[str] = []  # the command is used through calkit.cli.main

import argparse
from pathlib import Path

import numpy as np

from calkit.cli._common import (
    EXIT_OK,
    MAX_BOOT,
    CliError,
    Outputs,
    _int_in,
    _level,
    add_input_options,
    add_output_options,
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
    where,
    write_report,
)

EXAMPLES = """\
examples:
  calkit evaluate --example --out report/          the bundled CIFAR-10 ResNet-50 logits
  calkit evaluate outputs.npz                      keys found automatically (logits/probs, labels)
  calkit evaluate ce.npz focal.npz --out cmp/      compare several models
  calkit evaluate probs.npy --labels labels.npy --probs --n-bins 10 --strategy quantile
  calkit evaluate model.npz --scores-key val_logits --labels-key val_labels
  calkit evaluate preds.csv --scores 'p*' --labels-key label
  calkit evaluate answers.csv --confidence-col stated_confidence --where llm=gpt-4o
  calkit evaluate answers.csv --confidence stated_confidence,chosen_token_confidence \\
      --correct correct --group-by llm --out llm/     one row per (llm, source), diagram grid
"""

#: columns of the console table of ``evaluate --group-by`` (all columns go to grouped.csv)
GROUPED_COLUMNS = ("confidence", "n", "accuracy", "mean_confidence", "ece_uniform",
                   "ece_quantile", "smooth_ece", "brier", "auroc", "n_distinct")
MAX_GRID_PANELS = 48
SINGLE_FIGURES = ("reliability_uniform.png", "reliability_quantile.png",
                  "confidence_histogram.png", "risk_coverage.png")


def add_parser(sub) -> argparse.ArgumentParser:
    ev = sub.add_parser("evaluate", help="calibration metrics, report and diagrams of one file",
                        description="Print calibration metrics of saved predictions and "
                        "write a report.", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("files", nargs="*", type=Path, metavar="FILE",
                    help=".npz, .npy, .pt, .csv or .parquet with scores (and labels); "
                    "several files are compared side by side")
    ev.add_argument("--example", action="store_true",
                    help="use the bundled CIFAR-10 ResNet-50 example (2,000 test logits)")
    ev.add_argument("--labels", type=Path, metavar="FILE", help="separate labels file")
    add_input_options(ev)
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
    add_output_options(ev)
    add_diagram_options(ev)
    ev.set_defaults(run=run)
    return ev


def add_diagram_options(p: argparse.ArgumentParser) -> None:
    """How the reliability diagrams show their uncertainty and zoom (calkit.plotting)."""
    g = p.add_argument_group("reliability diagrams")
    g.add_argument("--interval", choices=("none", "wilson", "clopper-pearson"), default="none",
                   help="per-bin interval on the accuracy (default: none)")
    g.add_argument("--consistency-band", action="store_true",
                   help="consistency bands: where a calibrated model's bin accuracy would fall "
                   "(Broecker and Smith 2007), bins outside marked")
    g.add_argument("--confidence-level", type=_level, default=0.95, metavar="LEVEL",
                   help="level of the intervals and bands (default: 0.95)")
    g.add_argument("--n-resamples", type=_int_in(10, MAX_BOOT), default=1000, metavar="R",
                   help="resamples of the consistency bands (default: 1000; seeded by --seed)")
    g.add_argument("--confidence-scale", choices=("auto", "linear", "logit", "error-rate",
                                                  "-log(1-p)"), default="auto",
                   help="confidence axis: auto (the error-rate scale when most scores are "
                   "above 0.99, said in the title), linear, logit or error-rate (-log(1-p))")
    g.add_argument("--count-scale", choices=("auto", "log", "linear"), default="auto",
                   help="scale of the per-bin count panel (default: auto)")
    g.add_argument("--counts", action="store_true", help="print the per-bin counts")


def run(args) -> int:
    if args.example == bool(args.files):
        raise CliError("give either FILE(s) or --example (see 'calkit evaluate --help')")
    if any(getattr(args, k, None) for k in ("confidence", "correct", "group_by")):
        return _run_grouped(args)
    if args.example:
        from calkit.datasets import example_path

        paths = [example_path()]
    else:
        paths = list(args.files)
    outputs = Outputs([*paths, args.labels], args.force)
    if args.out is not None:
        figures = SINGLE_FIGURES if len(paths) == 1 else SINGLE_FIGURES[:2]
        outputs.check_dir(args.out, report_names(args, figures))
    preds = {}
    for path in paths:
        pred = load(args, path, args.labels, prefer="test")
        describe(pred)
        preds[_unique(Path(pred.source.get("file", "model")).stem, preds)] = pred
    views = {name: check_view(args, pred) for name, pred in preds.items()}
    summaries = {name: summarize(args, pred, views[name]) for name, pred in preds.items()}
    from calkit.report import format_table

    table_input = summaries if len(summaries) > 1 else next(iter(summaries.values()))
    echo(format_table(table_input))
    if args.out is not None:
        source = (next(iter(preds.values())).source if len(preds) == 1 else
                  {"files": {name: p.source for name, p in preds.items()}})
        write_report(args, outputs, table_input, source,
                     lambda stage: _diagrams(args, preds, summaries, views, stage))
    return EXIT_OK


def _unique(name: str, taken) -> str:
    """``name``, or ``name (2)``, ``name (3)``... when already taken."""
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name} ({k})"
    return candidate


def _strategies(args) -> tuple[str, str]:
    """The requested strategy first, then the other one."""
    return (args.strategy, "quantile" if args.strategy == "uniform" else "uniform")


def _diagrams(args, preds: dict, summaries: dict, views: dict, out: Path) -> list[Path]:
    """The figures of one file, or reliability diagrams of several side by side."""
    plt = pyplot_or_none()
    if plt is None:
        return []
    from calkit.plotting import evaluation_figures
    from calkit.report import _optional_smooth_ece

    if len(set(views.values())) > 1:
        raise CliError(f"the files need the same calibration view to be compared, got "
                       f"{sorted(set(views.values()))}; pass --view")
    first = next(iter(preds.values()))
    view = next(iter(views.values()))
    figures = evaluation_figures(
        {n: p.y_true for n, p in preds.items()}, {n: p.y_prob for n, p in preds.items()},
        n_bins=args.n_bins, strategies=_strategies(args),
        view=view,
        smooth=_optional_smooth_ece() is not None,
        interval=None if args.interval == "none" else args.interval,
        consistency_band=args.consistency_band, confidence=args.confidence_level,
        n_resamples=args.n_resamples, random_state=args.seed,
        confidence_scale=args.confidence_scale, count_scale=args.count_scale,
        counts=args.counts, axis_labels=confidence_axis_labels(first),
        count_labels=("correct", "wrong") if first.kind == "confidence" else None,
        curves=first.kind != "confidence")
    return save_figures(plt, figures, out)


# ----------------------------------------------------------------------------- grouped tables

def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _run_grouped(args) -> int:
    """``evaluate --confidence/--correct/--group-by``: calkit.metrics.grouped on a table."""
    from calkit.io import read_table
    from calkit.metrics.grouped import format_table as grouped_table
    from calkit.metrics.grouped import grouped_calibration

    if args.example or len(args.files) != 1:
        raise CliError("--confidence/--correct/--group-by need exactly one .csv or .parquet "
                       "FILE")
    path = args.files[0]
    outputs = Outputs([path], args.force)
    if args.out is not None:
        names = ["grouped.csv", "report.json", "report.md"]
        outputs.check_dir(args.out, names + ([] if args.no_plots else ["reliability_grid.png"]))
    table = read_table(path, where=where(args))
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
    if isinstance(args.n_bins, str):
        raise CliError(f"--n-bins {args.n_bins}: bin-count rules are not taken with "
                       "--confidence/--correct/--group-by (every group would get its own "
                       "number of bins); give a number")
    rows = grouped_calibration(table, confidence=sources, correct=correct, group_by=groups,
                               n_bins=args.n_bins, ci=args.ci, random_state=args.seed,
                               n_resamples=args.n_boot)
    columns = [*groups, *GROUPED_COLUMNS]
    say(f"{path.name}: {len(rows)} (group, confidence) rows, confidence {list(sources)}, "
        f"correctness {correct!r}, groups by {list(groups) or 'none'}")
    echo(grouped_table(rows, columns=columns))
    if args.out is not None:
        from calkit.report import write_grouped_report

        source = {"file": path.name, "confidence": list(sources), "correct": correct,
                  "group_by": list(groups), "where": where(args), "n_bins": args.n_bins}

        def build(stage: Path) -> list[Path]:
            images = [] if args.no_plots else _grouped_diagrams(args, table, sources, correct,
                                                                groups, stage)
            written = write_grouped_report(stage, rows, columns=columns, source=source,
                                           images=images)
            return [*written, *images]

        for p in outputs.report_dir(args.out, build):
            say(f"wrote {p}")
    return EXIT_OK


def _grouped_diagrams(args, table, sources, correct, groups, out: Path) -> list[Path]:
    """A grid of reliability diagrams, one per (group, confidence source) with answers."""
    plt = pyplot_or_none()
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
        say(f"no diagram for {len(skipped)} (group, confidence) pairs with fewer answers than "
            f"--n-bins: {'; '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    if len(panels) > MAX_GRID_PANELS:
        say(f"the diagram grid shows the first {MAX_GRID_PANELS} of {len(panels)} panels; "
            "select groups with --where")
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
    return save_figures(plt, {"reliability_grid.png": fig}, out)
