"""What every ``calkit`` command shares: exit codes, options, loading, output and safe writes.

Output files are never written in place: they go to a temporary file (or a
staging folder inside ``--out``) and are renamed into place once complete, so
an error leaves nothing partial behind.  No existing output is replaced
without ``--force``, and no input is ever overwritten.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

#: exit codes: success, any bad input / output / usage (one line on stderr), feature missing
EXIT_OK, EXIT_ERROR, EXIT_MISSING = 0, 2, 3
#: older names of :data:`EXIT_ERROR` (bad data and bad usage both exit 2)
EXIT_DATA = EXIT_USAGE = EXIT_ERROR

#: probabilities are floored here before taking logs for a calibrator
PROB_FLOOR = 1e-12
MAX_BINS = 100_000
MAX_BOOT = 1_000_000


class CliError(Exception):
    """An error the command line reports in one line and exits with ``code``.

    Examples
    --------
    >>> import contextlib, io
    >>> from calkit.cli import EXIT_ERROR, CliError, main
    >>> err = CliError("--n-bins must be a positive integer, got 0")
    >>> err.code == EXIT_ERROR, str(err)
    (True, '--n-bins must be a positive integer, got 0')
    >>> with contextlib.redirect_stderr(io.StringIO()) as stderr:   # main catches it
    ...     code = main(["evaluate", "--example", "--n-bins", "0"])
    >>> code
    2
    >>> print(stderr.getvalue().strip())
    calkit: error: argument --n-bins: must be a positive integer, got '0' (see 'calkit
    evaluate --help')
    """

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """``argparse`` without abbreviations whose errors are one-line :class:`CliError`."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise CliError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- stdout, stderr

class _State:
    broken_pipe = False


def reset() -> None:
    """Forget a broken pipe of an earlier call of ``main`` (in-process use)."""
    _State.broken_pipe = False


def broken_pipe() -> bool:
    return _State.broken_pipe


def echo(text: str) -> None:
    """Print to stdout; a closed pipe (``calkit evaluate f | head``) is remembered, not raised."""
    if _State.broken_pipe:
        return
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _State.broken_pipe = True
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def say(text: str) -> None:
    """A ``calkit: ...`` line on stderr (what was loaded, inferred or written)."""
    try:
        print(f"calkit: {text}", file=sys.stderr)
    except (BrokenPipeError, OSError, ValueError):
        pass


def describe(pred, prefix: str = "") -> None:
    """What was loaded and everything inferred on the way, on stderr."""
    say(f"{prefix}{pred.describe()}")
    for note in pred.notes:
        say(f"{prefix}  {note}")


# ----------------------------------------------------------------------------- options

def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo:
            what = "a positive integer" if lo == 1 else f"an integer >= {lo}"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if value > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi:,}, got {text!r}")
        return value
    return parse


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return value


def add_input_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("input")
    kind = g.add_mutually_exclusive_group()
    kind.add_argument("--logits", dest="kind", action="store_const", const="logits",
                      help="the scores are logits (a softmax is applied)")
    kind.add_argument("--probs", dest="kind", action="store_const", const="probs",
                      help="the scores are probabilities (rows sum to 1, or to 100)")
    p.set_defaults(kind="auto")
    g.add_argument("--scores", metavar="COLS",
                   help="score columns of a .csv/.parquet table: p0,p1,p2, a glob 'p*' or a "
                   "prefix (default: every numeric column but the label and row ids)")
    g.add_argument("--scores-key", metavar="NAME",
                   help="array (.npz/.pt) or column (.csv) holding the scores")
    g.add_argument("--labels-key", metavar="NAME", help="array or column holding the labels")
    g.add_argument("--confidence-col", metavar="COL",
                   help="confidence column of a (confidence, correct) CSV")
    g.add_argument("--where", metavar="COL=VALUE", action="append", default=[],
                   help="keep only CSV rows with COL equal to VALUE (repeatable)")
    g.add_argument("--dropna", action="store_true",
                   help="drop CSV rows whose confidence is missing")
    return g


def _n_bins_arg(text: str) -> int | str:
    """``--n-bins``: a positive integer, or a bin-count rule name resolved from the samples."""
    from calkit._bin_rules import BIN_RULES

    if text in BIN_RULES:
        return text
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or a bin-count rule ({', '.join(BIN_RULES)}), "
            f"got {text!r}") from None
    return _int_in(1, MAX_BINS)(text)


def add_output_options(p: argparse.ArgumentParser, *, view: bool = True) -> None:
    g = p.add_argument_group("metrics and output")
    g.add_argument("--n-bins", type=_n_bins_arg, default=15, metavar="B",
                   help="bins of the binned metrics (default: 15), or a rule of the number "
                   "of samples: sqrt, cube_root, rice, sturges (the number it gives is "
                   "printed and recorded)")
    g.add_argument("--strategy", choices=("uniform", "quantile"), default="uniform",
                   help="binning of the main reliability diagram (default: uniform)")
    if view:
        g.add_argument("--view", choices=("top_label", "positive"), default=None,
                       help="top_label (default) or positive: P(y=1) of a binary task")
    g.add_argument("--out", metavar="DIR", type=Path,
                   help="write report.json, report.md/.html and PNG diagrams here")
    g.add_argument("--format", choices=("md", "html", "both"), default="both",
                   help="report format besides report.json (default: both)")
    g.add_argument("--no-plots", action="store_true", help="do not draw diagrams")
    g.add_argument("--ci", type=_level, metavar="LEVEL",
                   help="add bootstrap confidence intervals at this level, e.g. 0.95")
    g.add_argument("--n-boot", type=_int_in(10, MAX_BOOT), default=1000, metavar="R",
                   help="bootstrap resamples for --ci (default: 1000)")
    g.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=0,
                   help="bootstrap seed (default: 0)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr for the bootstrap")
    add_force_option(g)


def add_force_option(g) -> None:
    g.add_argument("--force", "--overwrite", dest="force", action="store_true",
                   help="replace existing output files (inputs are never overwritten)")


def where(args) -> dict:
    out = {}
    for item in args.where:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise CliError(f"--where expects COL=VALUE, got {item!r}")
        out[col] = value
    return out


def load(args, path: Path, labels: Path | None, prefer: str, *, require_labels: bool = True,
         confidence_col: str | None = None, labels_key: str | None = None):
    from calkit.io import load_predictions

    return load_predictions(path, labels=labels, kind=args.kind, scores=args.scores,
                            scores_key=args.scores_key,
                            labels_key=labels_key or args.labels_key, prefer=prefer,
                            confidence_col=confidence_col or args.confidence_col,
                            where=where(args), dropna=args.dropna,
                            require_labels=require_labels)


def check_view(args, pred) -> str:
    """The metrics view: ``--view`` (positive only for binary scores) or the file's own."""
    view = getattr(args, "view", None)
    if view is None or pred.kind == "confidence":
        return pred.view
    if view == "positive" and pred.y_prob.ndim == 2 and pred.y_prob.shape[1] != 2:
        raise CliError(f"--view positive needs a binary task, but the scores have "
                       f"{pred.y_prob.shape[1]} classes")
    return view


def progress(args) -> bool:
    """Bootstrap progress bars only on a terminal: no carriage returns in logs."""
    if args.no_progress:
        return False
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty and args.ci is not None:
        say(f"bootstrap: {args.n_boot} resamples per metric (no progress bar: stderr is not "
            "a terminal)")
    return tty


def summarize(args, pred, view: str, y_prob=None):
    from calkit.report import bootstrap_intervals, summarize

    y_prob = pred.y_prob if y_prob is None else y_prob
    summary = summarize(pred.y_true, y_prob, n_bins=args.n_bins, view=view,
                        confidence_form=pred.kind == "confidence",
                        random_state=getattr(args, "seed", 0))
    if summary.settings.get("n_bins_rule"):
        say(f"--n-bins {summary.settings['n_bins_rule']}: {summary.settings['n_bins']} bins "
            f"({summary.settings['n_samples']:,} samples)")
    if args.ci is not None:
        try:
            import calkit.metrics.bootstrap  # noqa: F401
        except ImportError as exc:
            raise CliError("--ci needs calkit.metrics.bootstrap, which this installation "
                           "lacks", EXIT_MISSING) from exc
        bootstrap_intervals(summary, pred.y_true, y_prob, confidence=args.ci,
                            n_resamples=args.n_boot, random_state=args.seed,
                            progress=progress(args))
    return summary


def pyplot_or_none():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is not installed; diagrams skipped (pip install matplotlib)")
        return None
    return plt


def save_figures(plt, figures: dict, out: Path) -> list[Path]:
    paths = []
    for filename, fig in figures.items():
        path = out / filename
        try:
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
        paths.append(path)
    return paths


def confidence_axis_labels(pred):
    """Axis labels of a (confidence, correct) diagram; None keeps the view's defaults."""
    if pred.kind != "confidence":
        return None
    return f"Confidence ({pred.source.get('confidence', '')})", "Fraction correct"


# ----------------------------------------------------------------------------- safe writes

def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class Outputs:
    """The files a command will write, checked before any work is done.

    An output that is one of the ``inputs`` is always refused; an existing
    output only with ``force``.  :meth:`write_file` and :meth:`report_dir` write
    through temporary files renamed into place.
    """

    def __init__(self, inputs: Iterable[Path | None], force: bool):
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.force = force

    def _check_not_input(self, path: Path, flag: str) -> None:
        for src in self.inputs:
            if _same(path, src):
                raise CliError(f"{flag} {path} is an input file; refusing to overwrite an input "
                               "(write somewhere else)")

    def check_file(self, path: Path, flag: str) -> Path:
        path = Path(path)
        self._check_not_input(path, flag)
        parent = path.parent
        if not parent.exists():
            raise CliError(f"{flag} {path}: the directory {parent} does not exist")
        if not parent.is_dir():
            raise CliError(f"{flag} {path}: {parent} is not a directory")
        if path.is_dir():
            raise CliError(f"{flag} {path} is a directory, expected a file name")
        if path.exists() and not path.is_file():
            raise CliError(f"{flag} {path} exists and is not a regular file; refusing to "
                           "replace it")
        if path.exists() and not self.force:
            raise CliError(f"{flag} {path} already exists; pass --force to overwrite it")
        if not os.access(parent, os.W_OK):
            raise CliError(f"{flag} {path}: cannot write to {parent} (permission denied)")
        return path

    def check_dir(self, out: Path, names: Iterable[str], flag: str = "--out") -> Path:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise CliError(f"{flag} {out} exists and is not a directory")
        for name in names:
            self._check_not_input(out / name, flag)
        if out.is_dir():
            odd = sorted(n for n in names if (out / n).exists() and not (out / n).is_file())
            if odd:
                raise CliError(f"{flag} {out}: {', '.join(odd)} exists and is not a regular "
                               "file; refusing to replace it")
            taken = sorted(n for n in names if (out / n).exists())
            if taken and not self.force:
                raise CliError(f"{flag} {out} already holds {', '.join(taken)}; pass --force to "
                               "overwrite, or choose another directory")
            if not os.access(out, os.W_OK):
                raise CliError(f"{flag} {out}: cannot write there (permission denied)")
        else:
            base = next((p for p in out.parents if p.exists()), None)
            if base is not None and (not base.is_dir() or not os.access(base, os.W_OK)):
                raise CliError(f"{flag} {out}: cannot create it in {base} (not a writable "
                               "directory)")
        return out

    def write_file(self, path: Path, writer: Callable[[Path], None], flag: str) -> None:
        """``writer(tmp)`` fills a temporary file beside ``path``, then it is renamed."""
        path = self.check_file(path, flag)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                        suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            writer(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise CliError(f"cannot write {path}: {_strerror(exc)}") from exc
        finally:
            if tmp.exists():
                tmp.unlink()

    def report_dir(self, out: Path, build: Callable[[Path], list[Path]],
                   flag: str = "--out") -> list[Path]:
        """``build(stage)`` writes the report into a staging folder inside ``out``; the files
        are then moved into ``out``.  On error nothing is left behind."""
        out = Path(out)
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=".calkit-", dir=out))
        except OSError as exc:
            raise CliError(f"{flag} {out}: cannot create it ({_strerror(exc)})") from exc
        try:
            files = [Path(p) for p in build(stage)]
            names = [p.name for p in files]
            self.check_dir(out, names, flag)
            final = []
            for p in files:
                os.replace(p, out / p.name)
                final.append(out / p.name)
            return final
        except OSError as exc:
            raise CliError(f"cannot write the report to {out}: {_strerror(exc)}") from exc
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            if created:
                try:
                    out.rmdir()  # only succeeds when nothing was written
                except OSError:
                    pass


def report_names(args, figures: Iterable[str]) -> list[str]:
    """The files ``--out`` receives: report.json, the report formats, the diagrams."""
    formats = ("md", "html") if args.format == "both" else (args.format,)
    names = ["report.json", *(f"report.{f}" for f in formats)]
    return names + ([] if args.no_plots else list(figures))


def write_report(args, outputs: Outputs, summaries, source: dict, draw, extra=None) -> None:
    """report.json, report.md/.html and the diagrams ``draw(stage)`` saves, into ``--out``."""
    from calkit.report import write_report as _write_report

    formats = ("md", "html") if args.format == "both" else (args.format,)

    def build(stage: Path) -> list[Path]:
        images = [] if args.no_plots else draw(stage)
        written = _write_report(stage, summaries, source=source, images=images,
                                formats=formats, extra=extra)
        return [*written, *images]

    for path in outputs.report_dir(args.out, build):
        say(f"wrote {path}")


def model_input(pred) -> np.ndarray:
    """What a calibrator is fitted on and applied to: the logits, or log-probabilities.

    Probabilities are floored at 1e-12 first: a class given exactly 0 would otherwise
    become a logit near -708 that dominates any NLL-based fit (20 Newsgroups has such
    rows).  A 1-D binary score or confidence ``c`` becomes the two columns
    ``(log(1 - c), log c)``, so every calibrator sees ``(N, K)`` logits; binary ones
    (Platt, beta) then work on ``logit(c)`` and ``c`` themselves.
    """
    if pred.logits is not None:
        return pred.logits
    p = np.asarray(pred.y_prob, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    return np.log(np.clip(p, PROB_FLOOR, None))


def calibrator_input(pred, calibrator) -> np.ndarray:
    """What ``calibrator`` is fitted on and applied to.

    Beta calibration models P(y=1) itself (``a ln p - b ln(1 - p) + c``), so it gets
    the positive-class probability as a 1-D array, unclipped; every other
    calibrator gets :func:`model_input`.
    """
    if type(calibrator).__name__ == "BetaCalibration":
        p = np.asarray(pred.y_prob, dtype=np.float64)
        if p.ndim == 2:
            if p.shape[1] != 2:
                raise CliError(f"--method beta needs a binary task, but the scores have "
                               f"{p.shape[1]} classes")
            return p[:, 1]
        return p
    return model_input(pred)


def calibrated_output(pred, probs) -> np.ndarray:
    """Calibrated probabilities in the shape of the input: 1-D for 1-D scores, (N, 2)
    for two columns."""
    probs = np.asarray(probs, dtype=np.float64)
    if pred.y_prob.ndim == 1 and probs.ndim == 2:
        return probs[:, 1]
    if pred.y_prob.ndim == 2 and probs.ndim == 1:
        return np.column_stack([1 - probs, probs])
    return probs
