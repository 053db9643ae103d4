"""The ``calkit`` command line: evaluate, calibrate and apply, on saved classifier outputs.

Commands (one module each): ``calkit evaluate`` (:mod:`calkit.cli.evaluate`),
``calkit calibrate`` (:mod:`calkit.cli.calibrate`) and ``calkit apply``
(:mod:`calkit.cli.apply`); options and safe writing shared by all are in
``calkit.cli._common``.

Every command prints what it inferred from the files (score and label columns,
left-out index columns, logits or probabilities) on stderr, never overwrites an
input, and replaces an existing output only with ``--force`` (alias
``--overwrite``); outputs are written to temporary files and renamed into
place, so an error leaves nothing partial behind.

Exit codes: 0 success; 2 any bad input file, bad value, bad usage or output
problem (a single ``calkit: error: ...`` line on stderr, never a traceback);
3 a feature that needs something not installed or not available in this
version.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from calkit.cli import _common
from calkit.cli._common import EXIT_DATA as EXIT_DATA  # exit codes, importable from here
from calkit.cli._common import EXIT_ERROR, EXIT_MISSING, CliError, Parser
from calkit.cli._common import EXIT_OK as EXIT_OK
from calkit.cli._common import EXIT_USAGE as EXIT_USAGE
from calkit.cli._common import PROB_FLOOR as PROB_FLOOR

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> Parser:
    """The argument parser of the ``calkit`` command (abbreviations of options disabled).

    Examples
    --------
    >>> from calkit.cli import build_parser
    >>> args = build_parser().parse_args(["evaluate", "model.npz", "--probs", "--n-bins", "10"])
    >>> args.command, [str(f) for f in args.files], args.kind, args.n_bins, args.strategy
    ('evaluate', ['model.npz'], 'probs', 10, 'uniform')
    >>> args = build_parser().parse_args(["calibrate", "--val", "v.npz", "--test", "t.npz"])
    >>> args.command, str(args.val), args.method, args.kind, args.force
    ('calibrate', 'v.npz', None, 'auto', False)
    >>> args = build_parser().parse_args(["apply", "ts.json", "new.npz", "--out", "cal.npz"])
    >>> args.command, str(args.calibrator), str(args.out)
    ('apply', 'ts.json', 'cal.npz')
    """
    from calkit import __version__
    from calkit.cli import apply, calibrate, evaluate

    parser = Parser(
        prog="calkit", description="Measure and fix the calibration of classifiers.",
        epilog="Run 'calkit evaluate --help', 'calkit calibrate --help' or 'calkit apply "
        "--help' for examples.  Exit codes: 0 success, 2 bad input, output or usage, "
        "3 feature not installed.")
    parser.add_argument("--version", action="version", version=f"calkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    evaluate.add_parser(sub)
    calibrate.add_parser(sub)
    apply.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calkit`` console script; returns the exit code.

    ``argv`` defaults to ``sys.argv[1:]``.  The metrics table goes to stdout,
    what was loaded and inferred, progress and error messages to stderr.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.cli import main
    >>> with tempfile.TemporaryDirectory() as out:
    ...     code = main(["evaluate", "--example", "--no-plots", "--format", "md", "--out", out])
    ...     written = sorted(p.name for p in Path(out).iterdir())
    metric                                 value
    -------------------------------------  ------
    accuracy                               0.9545
    ECE (L1), 15 equal-width bins          0.0400
    ECE (L1), 15 equal-mass bins           0.0393
    debiased ECE (L2), 15 equal-mass bins  0.0789
    sweep ECE (L1), equal-mass             0.0392
    smooth ECE (L1, kernel)                0.0530
    MCE (max), 15 equal-width bins         0.5147
    Brier score                            0.0847
    NLL (log loss)                         0.3962
    signed ECE (L1, sign kept)             0.0392
    ECE (L1), over-confident bins          0.0396
    ECE (L1), under-confident bins         0.0004
    <BLANKLINE>
    over-confident: mean confidence above accuracy by 0.0392; ECE 0.0400 = 0.0396 over-confident +
      0.0004 under-confident bins; largest gap in bin (0.933, 1]: confidence 0.999, accuracy 0.966
    consistency test of the ECE (L1), 15 equal-width bins: p = 0.00498 (at its floor 1/201: no
      calibrated resample reached 0.0400; their 95th percentile is 0.0053)
    >>> code, written
    (0, ['report.json', 'report.md'])
    """
    _common.reset()
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = args.run(args)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except ValueError as exc:  # LoadError and validation errors: bad data or values
        return _fail(str(exc), EXIT_ERROR)
    except ImportError as exc:
        return _fail(f"{exc} (a feature this installation lacks)", EXIT_MISSING)
    except BrokenPipeError:
        _common._silence_stdout()
        return _fail("stdout was closed before the output was written (broken pipe)",
                     EXIT_ERROR)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
    except MemoryError:
        return _fail("out of memory; try a smaller file or fewer --n-boot resamples",
                     EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # last resort: one line, never a traceback
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _fail(f"unexpected {type(exc).__name__}: {message} (please report this)",
                     EXIT_ERROR)
    if _common.broken_pipe():
        return _fail("stdout was closed before the table was fully written (broken pipe)",
                     EXIT_ERROR)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``calkit: warning: ...`` line, without source lines."""
    _common.say(f"warning: {' '.join(str(message).split())} ({category.__name__})")


def _fail(message: str, code: int) -> int:
    message = " ".join(str(message).split())  # always one line
    try:
        print(f"calkit: error: {message}", file=sys.stderr)
    except (OSError, ValueError):
        pass
    return code
