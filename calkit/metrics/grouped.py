"""Grouped calibration of (confidence, correct) tables, e.g. LLM answers.

Many users hold no logits, only one confidence per answer and whether the
answer was right: an LLM's stated (verbal) confidence, its token probability,
a vote share.  :func:`grouped_calibration` evaluates one or several such
confidence columns against a 0/1 correctness column, separately for every
group of ``group_by`` columns (model, data set, ...), and returns one tidy row
per (group, confidence source).

Every number comes from calkit's own metrics on ``view="confidence"``
(confidence of the answer against whether it was right, :mod:`calkit.metrics._views`):
:func:`calkit.ece`
(equal-width and equal-mass bins), :func:`calkit.debiased_ece`,
:func:`calkit.metrics.smooth.smooth_ece`, :func:`calkit.sweep_ece`,
:func:`calkit.brier_score`, the AUROC of :func:`calkit.metrics.ood.ood_metrics`
(right answers as "in", wrong ones as "out") and the AURC / E-AURC of
:func:`calkit.metrics.selective.risk_coverage`.

Ties
----
Verbal confidences are coarse (0.8, 0.9, 0.95, 1.0), so most answers share
their value with many others.  Every metric here is a function of the multiset
of (confidence, correct) pairs, never of the row order:

* equal-mass bins (``ece_quantile``, ``debiased_ece``) are defined by value and
  never split a run of tied confidences; the bins that ties leave empty are
  dropped, so ``quantile_bins`` (the bins actually used) can be far below
  ``n_bins``;
* sweep ECE (equal-mass by *rank*) may cut a run of ties between two bins; the
  tied answers are then ordered wrong-before-right (:func:`calkit.binning.sorted_pairs`),
  which is deterministic.  ``sweep_bins`` is the number of bins it chose;
* AUROC counts tied (right, wrong) pairs as one half; AURC averages over all
  orders of tied answers;
* each group's answers are put in one canonical order (by confidence, wrong
  before right) before anything is summed, so every number, to the last bit,
  is the same for any order of the table's rows.

``n_distinct``, ``largest_tie_share``, ``max_confidence`` and ``share_at_max``
describe the ties of each source, so a table says how coarse each source was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from numbers import Real

import numpy as np

from calkit._columns import float_column, true_false_words
from calkit._validation import check_n_bins, check_option
from calkit.binning import STRATEGIES, sorted_pairs
from calkit.metrics.binned import calibration_error, debiased_ece, ece
from calkit.metrics.bootstrap import bootstrap
from calkit.metrics.ood import ood_metrics
from calkit.metrics.scores import brier_score
from calkit.metrics.selective import risk_coverage
from calkit.metrics.smooth import smooth_ece
from calkit.metrics.sweep import sweep_ece

#: metrics that get ``<name>_low`` / ``<name>_high`` columns when ``ci`` is given
CI_METRICS = ("ece_uniform", "ece_quantile", "debiased_ece", "brier", "auroc", "aurc")

# ---------------------------------------------------------------------- columns
def _names(value, name: str) -> tuple[str, ...]:
    """One column name or a sequence of them (a "a,b" string is split at commas)."""
    if isinstance(value, str):
        names = tuple(v.strip() for v in value.split(",") if v.strip())
    elif isinstance(value, Sequence):
        names = tuple(value)
    else:
        raise ValueError(f"{name} must be a column name or a sequence of names, got {value!r}")
    if not all(isinstance(v, str) and v for v in names):
        raise ValueError(f"{name} must hold non-empty column names, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} names a column twice: {list(names)}")
    return names


def _column(table, name: str, n: int | None) -> np.ndarray:
    try:
        col = table[name]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"column {name!r} not found (columns: {list(table.keys())})") from None
    if hasattr(col, "detach"):  # a torch tensor
        col = col.detach().cpu().numpy()
    arr = np.asarray(col)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"column {name!r} has {arr.shape[0]} rows, expected {n}")
    return arr


def _confidence_values(col: np.ndarray, name: str) -> np.ndarray:
    """float64 confidences in [0, 1]; NaN marks a missing value."""
    try:
        out = float_column(col)
    except ValueError:
        raise ValueError(f"confidence column {name!r} is not numeric") from None
    finite = out[~np.isnan(out)]
    if np.isinf(finite).any():
        raise ValueError(f"confidence column {name!r} contains infinite values")
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"confidence column {name!r} must lie in [0, 1], got values in "
                         f"[{finite.min():.4g}, {finite.max():.4g}] (percentages? divide by 100)")
    return out


def _correct_values(col: np.ndarray, name: str) -> np.ndarray:
    """Boolean correctness from bool, 0/1 numbers or true/false words."""
    if col.dtype.kind == "b":
        return col.astype(bool)
    if col.dtype.kind in "fiu":
        ok = (col == 0) | (col == 1)
        if not ok.all():
            bad = np.unique(col[~ok])[:3].tolist()
            raise ValueError(f"correct column {name!r} must hold 0/1 or booleans, found {bad}")
        return col.astype(bool)
    true, bad = true_false_words(col)
    if bad:
        raise ValueError(f"correct column {name!r} must hold 0/1 or true/false, found {bad}")
    return true


def _group_key(value) -> tuple:
    """Sort key that orders numbers numerically and everything else as text."""
    if isinstance(value, (bool, np.bool_)):
        return (1, str(value))
    if isinstance(value, Real):
        return (0, float(value))
    return (1, str(value))


def _key_value(value):
    """A group value usable as a dict key: every NaN is the one group ``None``."""
    return None if isinstance(value, float) and value != value else value


def _python(value):
    return value.item() if isinstance(value, np.generic) else value


def iter_groups(table, *, confidence, correct: str, group_by=(),
                paired: bool = False) -> Iterator[tuple[dict, str, np.ndarray, np.ndarray]]:
    """Yield ``(group, source, confidence, correct)`` for every group and confidence column.

    Parameters
    ----------
    table : mapping of column name -> 1-D array, or a pandas DataFrame
    confidence : str or sequence of str
        Confidence column(s), values in [0, 1]; missing values (NaN, empty
        strings) are left out per source.  ``"a,b"`` is split at commas.
    correct : str
        Correctness column: booleans, 0/1 or true/false words.
    group_by : str or sequence of str, default=()
        Columns whose distinct value combinations form the groups (sorted:
        numbers numerically, other values as text; NaN values form one group,
        ``None``); ``()`` is one group.
    paired : bool, default=False
        Keep only the rows where *every* confidence column is present, so all
        sources of a group are scored on the same answers.

    Yields
    ------
    group : dict
        ``{column: value}`` of the group (empty without ``group_by``).
    source : str
        The confidence column.
    confidence : ndarray of float64
    correct : ndarray of bool

    Examples
    --------
    >>> from calkit.metrics.grouped import iter_groups
    >>> t = {"m": ["a", "b", "a"], "conf": [0.9, 0.8, 0.7], "ok": [1, 0, 1]}
    >>> [(g["m"], s, c.tolist()) for g, s, c, _ in iter_groups(
    ...     t, confidence="conf", correct="ok", group_by="m")]
    [('a', 'conf', [0.9, 0.7]), ('b', 'conf', [0.8])]
    """
    for group, source, conf, right, _ in _iter_groups(table, confidence, correct, group_by,
                                                      paired):
        yield group, source, conf, right


def _iter_groups(table, confidence, correct, group_by, paired):
    """:func:`iter_groups`, also yielding the number of rows of the group."""
    sources = _names(confidence, "confidence")
    if not sources:
        raise ValueError("confidence must name at least one column")
    groups = _names(group_by, "group_by") if group_by else ()
    if not isinstance(correct, str):
        raise ValueError(f"correct must be one column name, got {correct!r}")
    overlap = set(groups) & ({correct} | set(sources))
    if correct in sources or overlap:
        raise ValueError("confidence, correct and group_by columns must be different, got "
                         f"confidence={list(sources)}, correct={correct!r}, "
                         f"group_by={list(groups)}")
    right_raw = _column(table, correct, None)
    n = right_raw.shape[0]
    if n == 0:
        raise ValueError("the table has no rows")
    right = _correct_values(right_raw, correct)
    conf = {s: _confidence_values(_column(table, s, n), s) for s in sources}
    present = {s: ~np.isnan(c) for s, c in conf.items()}
    if paired:
        both = np.logical_and.reduce(list(present.values()))
        present = dict.fromkeys(sources, both)
    if groups:
        keys = [_column(table, g, n) for g in groups]
        combos = {}
        for i, combo in enumerate(zip(*(map(_key_value, k.tolist()) for k in keys),
                                      strict=True)):
            combos.setdefault(combo, []).append(i)
        ordered = sorted(combos, key=lambda c: tuple(_group_key(v) for v in c))
        members = [(dict(zip(groups, (_python(v) for v in c), strict=True)),
                    np.asarray(combos[c], dtype=np.int64)) for c in ordered]
    else:
        members = [({}, np.arange(n))]
    for group, rows in members:
        for s in sources:
            keep = rows[present[s][rows]]
            yield dict(group), s, conf[s][keep], right[keep], len(rows)


# ---------------------------------------------------------------------- metrics
def _auroc(y_true, y_prob) -> float:
    """AUROC of the confidence ``y_prob`` for right (1) against wrong (0) answers."""
    right = np.asarray(y_true) == 1
    if right.all() or not right.any():
        return float("nan")
    return ood_metrics(y_prob[right], y_prob[~right]).auroc


def _risk_coverage(y_true, y_prob):
    return risk_coverage(y_true, y_prob, view="confidence")


def _aurc(y_true, y_prob) -> float:
    """AURC of the confidence ``y_prob`` as a selective-answering score."""
    return _risk_coverage(y_true, y_prob).aurc


def _tie_summary(conf: np.ndarray) -> dict:
    values, counts = np.unique(conf, return_counts=True)
    n = conf.shape[0]
    return dict(max_confidence=float(values[-1]), share_at_max=float(counts[-1] / n),
                n_distinct=int(values.shape[0]), largest_tie_share=float(counts.max() / n))


def _row(conf, right, n_bins, strategies, ci, n_resamples, random_state) -> dict:
    # canonical order (confidence, then wrong before right): every number, sums included,
    # is then bit-for-bit a function of the multiset of answers, not of the row order
    conf, right = sorted_pairs(conf, right)
    y = right.astype(np.int64)
    n = int(conf.shape[0])
    nan = float("nan")
    row = dict(n=n, accuracy=float(right.mean()) if n else nan,
               mean_confidence=float(conf.mean()) if n else nan)
    names = [f"ece_{s}" for s in strategies] + ["debiased_ece", "smooth_ece", "sweep_ece",
                                               "brier", "auroc", "aurc", "eaurc"]
    row.update(dict.fromkeys(names, nan))
    row.update(max_confidence=nan, share_at_max=nan, n_distinct=0, largest_tie_share=nan,
               quantile_bins=0, sweep_bins=0)
    if n == 0:
        return row
    row.update(_tie_summary(conf))
    row["brier"] = float(brier_score(y, conf))
    row["auroc"] = _auroc(y, conf)
    rc = _risk_coverage(y, conf)
    row["aurc"], row["eaurc"] = rc.aurc, rc.eaurc
    row["smooth_ece"] = float(smooth_ece(y, conf, view="confidence"))
    sweep = sweep_ece(y, conf, view="confidence")
    row["sweep_ece"], row["sweep_bins"] = float(sweep), sweep.settings["n_bins"]
    if n >= n_bins:  # fewer answers than bins: the binned errors are undefined (NaN)
        for s in strategies:
            result = calibration_error(y, conf, n_bins=n_bins, strategy=s, view="confidence")
            row[f"ece_{s}"] = float(result)
            if s == "quantile":
                row["quantile_bins"] = result.table.n_bins
        row["debiased_ece"] = float(debiased_ece(y, conf, n_bins=n_bins, view="confidence"))
    if ci is not None:
        row.update(_intervals(y, conf, n_bins, strategies, ci, n_resamples, random_state))
    return row


def _intervals(y, conf, n_bins, strategies, ci, n_resamples, random_state) -> dict:
    metrics = {f"ece_{s}": (ece, dict(n_bins=n_bins, strategy=s, view="confidence"))
               for s in strategies}
    metrics.update(debiased_ece=(debiased_ece, dict(n_bins=n_bins, view="confidence")),
                   brier=(brier_score, {}), auroc=(_auroc, {}), aurc=(_aurc, {}))
    out = {}
    for name in CI_METRICS:
        if name not in metrics:
            continue
        metric, kwargs = metrics[name]
        low = high = float("nan")
        binned = name.startswith("ece_") or name == "debiased_ece"
        if not binned or len(y) >= n_bins:
            try:
                r = bootstrap(metric, y, conf, n_resamples=n_resamples, confidence=ci,
                              random_state=random_state, **kwargs)
                low, high = r.low, r.high
            except ValueError:  # undefined on some resamples (e.g. all answers right)
                pass
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    return out


def grouped_calibration(table, *, confidence, correct: str, group_by=(), n_bins: int = 15,
                        strategy=("uniform", "quantile"), ci: float | None = None,
                        random_state=None, n_resamples: int = 1000,
                        paired: bool = False) -> list[dict]:
    """Calibration and error-ranking metrics per (group, confidence source).

    Parameters
    ----------
    table : mapping of column name -> 1-D array, or a pandas DataFrame
        One row per answer (pandas is optional: a dict of arrays or lists
        works, and string columns, e.g. read with :mod:`csv`, are converted).
    confidence : str or sequence of str
        Confidence column(s) in [0, 1], e.g. ``("stated_confidence",
        "chosen_token_confidence")`` or ``"a,b"``.  Missing values (NaN, empty
        or ``"NA"`` strings) are left out per source and counted in
        ``n_missing``.
    correct : str
        Whether each answer was right: booleans, 0/1 or true/false words.
    group_by : str or sequence of str, default=()
        Columns whose value combinations form the groups (e.g. ``"llm"`` or
        ``("llm", "qset")``); ``()`` evaluates the whole table as one group.
    n_bins : int, default=15
        Bins of the binned errors.  A group with fewer answers than bins gets
        NaN for them (and 0 ``quantile_bins``).
    strategy : str or sequence of {"uniform", "quantile"}, default=("uniform", "quantile")
        One ``ece_<strategy>`` column (L1 ECE, right-closed bins) per strategy.
    ci : float, optional
        Confidence level (e.g. 0.95) of percentile-bootstrap intervals, added
        as ``<metric>_low`` / ``<metric>_high`` for the metrics in
        :data:`CI_METRICS` (all resampled with the same indices).  NaN where a
        metric is undefined on some resample (e.g. AUROC when every answer of
        a resample is right).
    random_state : int, numpy Generator or None
        Seed of the bootstrap.
    n_resamples : int, default=1000
        Bootstrap resamples (only with ``ci``).
    paired : bool, default=False
        Score every source of a group on the same rows (those where all the
        confidence columns are present), for a like-for-like comparison.

    Returns
    -------
    list of dict
        One row per group (sorted) and source (in the given order): the
        ``group_by`` columns, ``confidence`` (the source), ``n``, ``n_missing``,
        ``accuracy``, ``mean_confidence``, ``ece_uniform``, ``ece_quantile``,
        ``debiased_ece`` (Kumar et al., equal-mass), ``smooth_ece``,
        ``sweep_ece``, ``brier``, ``auroc`` (confidence separating right from
        wrong answers; NaN when all are right or all wrong), ``aurc``,
        ``eaurc``, tie information ``max_confidence``, ``share_at_max``,
        ``n_distinct``, ``largest_tie_share``, ``quantile_bins``,
        ``sweep_bins`` (see the module docstring), and the CI columns.
        ``pandas.DataFrame(rows)`` makes a data frame; :func:`format_table`
        a Markdown table.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics.grouped import grouped_calibration
    >>> rng = np.random.default_rng(0)
    >>> stated = rng.choice([0.7, 0.8, 0.9, 1.0], 400)
    >>> table = {"model": np.repeat(["a", "b"], 200), "stated": stated,
    ...          "correct": rng.uniform(size=400) < stated - 0.1}
    >>> rows = grouped_calibration(table, confidence="stated", correct="correct",
    ...                            group_by="model", n_bins=10)
    >>> [(r["model"], r["n"], r["n_distinct"], r["quantile_bins"]) for r in rows]
    [('a', 200, 4, 4), ('b', 200, 4, 4)]
    >>> all(0.0 < r["ece_uniform"] < 0.25 for r in rows)
    True
    """
    n_bins = check_n_bins(n_bins)
    if isinstance(strategy, str):
        strategies = (strategy,)
    elif isinstance(strategy, (list, tuple)):
        strategies = tuple(strategy)
    else:
        raise ValueError(f"strategy must be a name or a sequence of names from "
                         f"{list(STRATEGIES)}, got {strategy!r}")
    if not strategies:
        raise ValueError("strategy must name at least one binning strategy")
    for s in strategies:
        check_option(s, "strategy", STRATEGIES)
    if ci is not None and (isinstance(ci, bool) or not isinstance(ci, Real) or not 0 < ci < 1):
        raise ValueError(f"ci must be a confidence level strictly between 0 and 1, got {ci!r}")
    out = []
    for group, source, conf, right, size in _iter_groups(table, confidence, correct, group_by,
                                                         paired):
        row = {**group, "confidence": source}
        metrics = _row(conf, right, n_bins, strategies, ci, n_resamples, random_state)
        row["n"] = metrics.pop("n")
        row["n_missing"] = size - row["n"]
        row.update(metrics)
        out.append(row)
    return out


# ---------------------------------------------------------------------- formatting
def format_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None,
                 digits: int = 4) -> str:
    """A Markdown table of ``rows`` (e.g. from :func:`grouped_calibration`).

    Parameters
    ----------
    rows : sequence of dict
    columns : sequence of str, optional
        Columns to show, in order; default: every key of the first row.
    digits : int, default=4
        Decimal places of floats (NaN is shown as ``nan``).

    Returns
    -------
    str

    Examples
    --------
    >>> from calkit.metrics.grouped import format_table
    >>> print(format_table([{"model": "a", "ece": 0.12345}, {"model": "b", "ece": 0.5}]))
    | model | ece    |
    |-------|--------|
    | a     | 0.1235 |
    | b     | 0.5000 |
    """
    if not rows:
        raise ValueError("rows is empty: nothing to format")
    columns = list(rows[0]) if columns is None else list(columns)
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(f"columns {missing} are not in the rows (have: {list(rows[0])})")

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "nan" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    body = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) + " |"
              for b in body]
    return "\n".join(lines)
