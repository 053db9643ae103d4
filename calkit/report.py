"""Calibration reports: the summary table of metrics, and report.json / Markdown / HTML files.

:func:`summarize` computes the standard set of numbers for one model (every
value comes from the functional metrics in :mod:`calkit.metrics`, nothing is
recomputed here); the writers turn one or several summaries (e.g. before and
after calibration) into a console table, ``report.json``, ``report.md`` and a
self-contained ``report.html`` (PNG diagrams embedded as base64).
"""

from __future__ import annotations

import base64
import html
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calkit._export import json_ready as _json_ready
from calkit.binning import resolve_n_bins
from calkit.metrics import (
    accuracy,
    brier_score,
    calibration_error,
    consistency_test,
    debiased_ece,
    nll,
    signed_ece,
    sweep_ece,
)

#: key -> label of every metric a summary may hold, in display order.  Each key means one
#: definition everywhere in calkit (the function of :func:`metric_specs`, the grouped
#: tables, the accumulator); each label names the norm, so an L2 number is never read
#: as an L1 one.
METRIC_LABELS = {
    "accuracy": "accuracy",
    "ece_uniform": "ECE (L1), {n} equal-width bins",
    "ece_quantile": "ECE (L1), {n} equal-mass bins",
    "debiased_ece": "debiased ECE (L2), {n} equal-mass bins",
    "sweep_ece": "sweep ECE (L1), equal-mass",
    "smooth_ece": "smooth ECE (L1, kernel)",
    "mce_uniform": "MCE (max), {n} equal-width bins",
    "brier": "Brier score",
    "nll": "NLL (log loss)",
    "signed_ece": "signed ECE (L1, sign kept)",
    "ece_over": "ECE (L1), over-confident bins",
    "ece_under": "ECE (L1), under-confident bins",
}


@dataclass
class Summary:
    """The standard calibration numbers of one model.

    Attributes
    ----------
    metrics : dict
        Metric key (see :data:`METRIC_LABELS`) -> float.
    intervals : dict
        Metric key -> (low, high) confidence interval, when asked for.
    tables : dict
        ``"uniform"`` / ``"quantile"`` -> the BinTable behind the ECE values.
    settings : dict
        ``n_bins``, ``view``, ``n_samples``, ``confidence_level``...
    tests : dict
        Test name -> ``{"statistic", "pvalue", ...}``: ``"consistency"``, the
        consistency-resampling test of ``ece_uniform``
        (:func:`calkit.metrics.consistency_test`; see :func:`summarize`).

    Examples
    --------
    >>> from calkit import ece, softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.report import summarize
    >>> logits, labels = load_example()
    >>> s = summarize(labels, softmax(logits), n_bins=10)
    >>> s.settings["n_samples"], list(s.tables), s.tables["uniform"].n_bins
    (2000, ['uniform', 'quantile'], 10)
    >>> bool(s.metrics["ece_uniform"] == ece(labels, softmax(logits), n_bins=10))
    True
    >>> s.label("ece_uniform"), round(s.metrics["accuracy"], 4)
    ('ECE (L1), 10 equal-width bins', 0.9545)
    >>> sorted(s.to_dict())
    ['bins', 'intervals', 'metrics', 'settings', 'tests']
    >>> s.findings()[0].split(";")[0]
    'over-confident: mean confidence above accuracy by 0.0392'
    >>> s.tests["consistency"]["pvalue"] == 1 / 201    # no calibrated resample as bad
    True
    """

    metrics: dict
    intervals: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)

    def label(self, key: str) -> str:
        return METRIC_LABELS.get(key, key).format(n=self.settings.get("n_bins", "?"))

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes null)."""
        return _json_ready({
            "settings": self.settings,
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "bins": {k: t.to_dict() for k, t in self.tables.items()},
            "tests": self.tests,
        })

    def findings(self) -> list[str]:
        """The report's sentences: the direction of miscalibration, and the test.

        Empty when the summary holds neither ``signed_ece`` nor a test.
        """
        lines = []
        if "signed_ece" in self.metrics:
            lines.append(_direction(self))
        test = self.tests.get("consistency")
        if test is not None:
            lines.append(_consistency_sentence(test, self.label("ece_uniform")))
        return lines


def metric_specs(n_bins: int = 15, view: str | None = None,
                 confidence_form: bool = False) -> dict[str, tuple[Callable, dict]]:
    """Metric key -> ``(function, keyword arguments)``: ``function(y_true, y_prob, **kw)``.

    The same specs give the values (:func:`summarize`) and the bootstrap
    intervals (:func:`bootstrap_intervals`), so both always describe the same
    numbers.  ``smooth_ece`` is included when :mod:`calkit.metrics.smooth` exists.
    ``confidence_form=True`` means ``view="confidence"``.  ``brier`` is
    :func:`calkit.brier_score`'s one rule (binary tasks: the positive-class form
    in both layouts).  ``signed_ece``, ``ece_over`` and ``ece_under`` are
    :func:`calkit.metrics.signed_ece`'s value and parts on the equal-width bins
    of ``ece_uniform`` (``ece_over + ece_under == ece_uniform``).

    Examples
    --------
    >>> from calkit import ece, softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.report import metric_specs
    >>> specs = metric_specs(n_bins=10)
    >>> list(specs)
    ['accuracy', 'ece_uniform', 'ece_quantile', 'debiased_ece', 'sweep_ece', 'smooth_ece',
     'mce_uniform', 'brier', 'nll', 'signed_ece', 'ece_over', 'ece_under']
    >>> func, kwargs = specs["ece_quantile"]
    >>> func.__name__, kwargs
    ('calibration_error', {'n_bins': 10, 'view': None, 'strategy': 'quantile'})
    >>> logits, labels = load_example()
    >>> probs = softmax(logits)
    >>> bool(float(func(labels, probs, **kwargs)) == ece(labels, probs, n_bins=10,
    ...                                                   strategy="quantile"))
    True
    """
    if confidence_form:
        view = "confidence"
    binned = dict(n_bins=n_bins, view=view)
    specs = {
        "accuracy": (accuracy, dict(view=view)),
        "ece_uniform": (calibration_error, dict(binned, strategy="uniform")),
        "ece_quantile": (calibration_error, dict(binned, strategy="quantile")),
        "debiased_ece": (debiased_ece, binned),
        "sweep_ece": (sweep_ece, dict(view=view)),
    }
    smooth = _optional_smooth_ece()
    if smooth is not None:
        specs["smooth_ece"] = (smooth, dict(view=view))
    specs.update({
        "mce_uniform": (calibration_error, dict(binned, strategy="uniform", norm="max")),
        "brier": (brier_score, {}),
        "nll": (nll, {}),
        "signed_ece": (signed_ece, dict(binned, strategy="uniform")),
        "ece_over": (_signed_part("over"), dict(binned, strategy="uniform")),
        "ece_under": (_signed_part("under"), dict(binned, strategy="uniform")),
    })
    return specs


def _signed_part(part: str) -> Callable:
    """``signed_ece(...).over`` or ``.under`` as a metric function (for the bootstrap too)."""
    def metric(y_true, y_prob, **kwargs) -> float:
        return getattr(signed_ece(y_true, y_prob, **kwargs), part)

    metric.__name__ = metric.__qualname__ = f"signed_ece_{part}"
    return metric


def _optional_smooth_ece():
    """``calkit.metrics.smooth.smooth_ece`` when that module is present, else None."""
    try:
        from calkit.metrics.smooth import smooth_ece
    except ImportError:
        return None
    return smooth_ece


def summarize(y_true, y_prob, *, n_bins: int | str = 15, view: str | None = None,
              confidence_form: bool = False, sum_tol: float | None = None,
              progress: Callable | None = None, test_resamples: int = 200,
              random_state=0) -> Summary:
    """The standard calibration numbers of one model.

    Parameters
    ----------
    y_true : array of shape (N,)
        Labels; with ``confidence_form=True``, 1 where the answer was correct.
    y_prob : array of shape (N, K) or (N,)
        Probabilities; with ``confidence_form=True`` the confidence of each answer.
    n_bins : int or str, default=15
        Bins of the binned metrics, or a bin-count rule of the number of rows
        (``"sqrt"``, ``"cube_root"``, ``"rice"``, ``"sturges"``:
        :func:`calkit.binning.resolve_n_bins`), resolved once: ``settings``
        hold the number (``n_bins``) and the rule (``n_bins_rule``).
    view : {"top_label", "positive", "confidence"}, optional
        Which scores are checked (:mod:`calkit.metrics._views`): default
        ``"top_label"`` for an ``(N, K)`` ``y_prob``; a 1-D ``y_prob`` needs
        ``"confidence"`` or ``"positive"`` (or ``confidence_form=True``).
    confidence_form : bool, default=False
        The data are (confidence, correct) pairs, e.g. LLM answers: the view is
        ``"confidence"`` (accuracy is the share of correct answers).
    progress : callable, optional
        Wraps the iterable of metric keys (e.g. ``tqdm``).
    test_resamples : int, default=200
        Calibrated resamples of the consistency test of ``ece_uniform``
        (:func:`calkit.metrics.consistency_test`, stored in ``Summary.tests``);
        0 skips the test.  It costs about ``test_resamples`` Bernoulli draws per
        sample (about 5 s at a million samples), and its p-value cannot go below
        ``1 / (test_resamples + 1)``.
    random_state : None, int or numpy.random.Generator, default=0
        Seed of the test's resamples.

    Returns
    -------
    Summary

    Examples
    --------
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.report import summarize
    >>> logits, labels = load_example()
    >>> s = summarize(labels, softmax(logits))
    >>> round(s.metrics["accuracy"], 4), round(s.metrics["ece_uniform"], 4)
    (0.9545, 0.04)
    """
    if isinstance(test_resamples, bool) or not isinstance(test_resamples, int | np.integer) \
            or test_resamples < 0:
        raise ValueError(f"test_resamples must be a non-negative integer (0: no test), got "
                         f"{test_resamples!r}")
    if confidence_form:
        view = "confidence"
    rule = None
    if isinstance(n_bins, str):  # a rule, resolved once for every metric (numbers: as given)
        rows = np.shape(y_true)[:1]  # bad y_true is named by the metrics' validation below
        n_bins, rule = resolve_n_bins(n_bins, max(int(rows[0]) if rows else 1, 1))
    specs = metric_specs(n_bins, view, confidence_form)
    keys = progress(list(specs)) if progress is not None else list(specs)
    metrics, tables, classes = {}, {}, None
    for key in keys:
        func, kwargs = specs[key]
        result = func(y_true, y_prob, sum_tol=sum_tol, **kwargs)
        metrics[key] = float(result)
        if key in ("ece_uniform", "ece_quantile"):
            tables[key[4:]] = result.table
            view = result.settings["view"]  # the view the metrics resolved
            classes = result.settings.get("classes")
    n = int(np.shape(y_true)[0])
    settings = {"n_bins": n_bins, "view": view, "n_samples": n,
                "confidence_form": bool(confidence_form)}
    if rule is not None:
        settings["n_bins_rule"] = rule
    if classes is not None:
        settings["classes"] = classes
    tests = {}
    if test_resamples:
        tests["consistency"] = _consistency(y_true, y_prob, view, n_bins, sum_tol,
                                            test_resamples, random_state)
    return Summary(metrics, {}, tables, settings, tests)


def _consistency(y_true, y_prob, view, n_bins, sum_tol, n_resamples, random_state) -> dict:
    """The report's test: consistency resampling of ``ece_uniform`` (see :func:`summarize`)."""
    r = consistency_test(y_true, y_prob, metric="ece", view=view, n_bins=n_bins,
                         strategy="uniform", n_resamples=n_resamples,
                         random_state=random_state, sum_tol=sum_tol)
    return {"statistic": r.statistic, "pvalue": r.pvalue, "metric": "ece_uniform",
            "n_resamples": n_resamples, "random_state": random_state,
            "null_quantiles": dict(zip(("q50", "q95"), np.quantile(
                r.null_distribution, [0.5, 0.95]).tolist(), strict=True))}


def _direction(s: Summary) -> str:
    """Over- or under-confident, by how much, and the bin that contributes most."""
    value = s.metrics["signed_ece"]
    positive = s.settings.get("view") == "positive"
    score, outcome = (("mean P(y = 1)", "the observed rate") if positive
                      else ("mean confidence", "accuracy"))
    if abs(value) < 5e-5:
        text = f"no net direction: {score} equals {outcome} (to 4 decimals)"
    elif value > 0:
        word = "over-predicts the positive class" if positive else "over-confident"
        text = f"{word}: {score} above {outcome} by {value:.4f}"
    else:
        word = "under-predicts the positive class" if positive else "under-confident"
        text = f"{word}: {score} below {outcome} by {-value:.4f}"
    if "ece_over" in s.metrics and "ece_under" in s.metrics:
        over, under = s.metrics["ece_over"], s.metrics["ece_under"]
        text += (f"; ECE {over + under:.4f} = {over:.4f} over-confident + {under:.4f} "
                 "under-confident bins")
        table = s.tables.get("uniform")
        if table is not None and table.n_samples:
            text += _largest_bin(table, positive)
    return text


def _largest_bin(table, positive: bool) -> str:
    table = table.to_numpy()
    count = np.asarray(table.count, dtype=np.float64)
    share = np.abs(table.sum_score - table.sum_target)
    b = int(np.argmax(share))
    if count[b] == 0:
        return ""
    edges = np.asarray(table.edges)
    low, high = (f"{e:.3g}" for e in (edges[b], edges[b + 1]))
    interval = f"({low}, {high}]" if table.closed == "right" else f"[{low}, {high})"
    score = "mean P(y = 1)" if positive else "confidence"
    outcome = "rate" if positive else "accuracy"
    return (f"; largest gap in bin {interval}: {score} "
            f"{table.sum_score[b] / count[b]:.3g}, {outcome} {table.sum_target[b] / count[b]:.3g}")


def _consistency_sentence(test: dict, label: str) -> str:
    q95 = test["null_quantiles"]["q95"]
    resamples = test["n_resamples"]
    if test["pvalue"] <= 1.0 / (resamples + 1):
        how = f"at its floor 1/{resamples + 1}: no calibrated resample reached"
    else:
        how = f"share of {resamples} calibrated resamples at least as large as"
    return (f"consistency test of the {label}: p = {test['pvalue']:.3g} ({how} "
            f"{test['statistic']:.4f}; their 95th percentile is {q95:.4f})")


def bootstrap_intervals(summary: Summary, y_true, y_prob, *, confidence: float = 0.95,
                        n_resamples: int = 1000, random_state=0,
                        progress: bool = False) -> Summary:
    """Add seeded bootstrap intervals of every metric of ``summary`` (in place).

    Uses :func:`calkit.metrics.bootstrap.bootstrap` (percentile intervals) on the
    same metric specs as :func:`summarize`; fixed-edge binned metrics take its
    fast binned route.  ``progress=True`` shows one progress bar per metric on
    stderr (tqdm when installed, else a plain counter).

    Examples
    --------
    >>> from calkit import softmax
    >>> from calkit.datasets import load_example
    >>> from calkit.report import bootstrap_intervals, summarize
    >>> logits, labels = load_example()
    >>> s = summarize(labels, softmax(logits))
    >>> s = bootstrap_intervals(s, labels, softmax(logits), n_resamples=50)
    >>> lo, hi = s.intervals["ece_uniform"]
    >>> bool(lo < s.metrics["ece_uniform"] < hi)
    True
    """
    from calkit.metrics.bootstrap import bootstrap

    st = summary.settings
    specs = metric_specs(st["n_bins"], st["view"], st.get("confidence_form", False))
    keys = [k for k in specs if k in summary.metrics]
    for key in keys:
        func, kwargs = specs[key]
        r = bootstrap(func, y_true, y_prob, n_resamples=n_resamples, confidence=confidence,
                      random_state=random_state, progress=progress, **kwargs)
        summary.intervals[key] = (float(r.low), float(r.high))
    summary.settings.update(confidence_level=float(confidence), n_resamples=int(n_resamples))
    return summary


# ----------------------------------------------------------------------------- formatting

def _rows(summaries: Mapping[str, Summary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (one value column per summary)."""
    first = next(iter(summaries.values()))
    keys = [k for k in METRIC_LABELS if any(k in s.metrics for s in summaries.values())]
    header = ["metric", *summaries] if len(summaries) > 1 else ["metric", "value"]
    rows = []
    for key in keys:
        row = [first.label(key)]
        for s in summaries.values():
            row.append(_cell(s, key))
        rows.append(row)
    return header, rows


def _cell(s: Summary, key: str) -> str:
    if key not in s.metrics:
        return "-"
    text = f"{s.metrics[key]:.4f}"
    if key in s.intervals:
        lo, hi = s.intervals[key]
        text += f" [{lo:.4f}, {hi:.4f}]"
    return text


def format_table(summaries: Summary | Mapping[str, Summary]) -> str:
    """Plain-text table for the console.

    Examples
    --------
    >>> from calkit.report import Summary, format_table
    >>> print(format_table(Summary({"accuracy": 0.9, "nll": 0.31}, settings={"n_bins": 15})))
    metric          value
    --------------  ------
    accuracy        0.9000
    NLL (log loss)  0.3100
    """
    summaries = _as_mapping(summaries)
    header, rows = _rows(summaries)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, ["-" * w for w in widths], *rows]]
    findings = [textwrap.fill(line, 96, subsequent_indent="  ")
                for line in _finding_lines(summaries)]
    return "\n".join(lines + ([""] + findings if findings else []))


def _finding_lines(summaries: Mapping[str, Summary]) -> list[str]:
    """Every summary's findings, prefixed by its name when several are compared."""
    several = len(summaries) > 1
    return [f"{name}: {line}" if several else line
            for name, s in summaries.items() for line in s.findings()]


def _as_mapping(summaries) -> dict:
    return {"model": summaries} if isinstance(summaries, Summary) else dict(summaries)


def to_markdown(summaries: Summary | Mapping[str, Summary], *, title: str = "Calibration report",
                source: str = "", images: Sequence[str | Path] = ()) -> str:
    """Markdown report: the metrics table and links to the PNG diagrams (same folder).

    Examples
    --------
    >>> from calkit.report import Summary, to_markdown
    >>> s = Summary({"accuracy": 0.9, "ece_uniform": 0.04},
    ...             settings={"n_bins": 15, "n_samples": 1000, "view": "top_label"})
    >>> print(to_markdown(s, source="model.npz", images=["out/reliability_uniform.png"]),
    ...       end="")
    # Calibration report
    <BLANKLINE>
    Data: `model.npz`
    <BLANKLINE>
    1000 samples, view `top_label`.
    <BLANKLINE>
    | metric | value |
    |:---|---:|
    | accuracy | 0.9000 |
    | ECE (L1), 15 equal-width bins | 0.0400 |
    <BLANKLINE>
    ![reliability_uniform](reliability_uniform.png)
    """
    summaries = _as_mapping(summaries)
    header, rows = _rows(summaries)
    lines = [f"# {title}", ""]
    if source:
        lines += [f"Data: `{source}`", ""]
    lines += [_settings_line(summaries), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    findings = _finding_lines(summaries)
    if findings:
        lines += ["", *[f"- {line}" for line in findings]]
    for image in images:
        name = Path(image).name
        lines += ["", f"![{Path(name).stem}]({name})"]
    return "\n".join(lines) + "\n"


def _settings_line(summaries: Mapping[str, Summary]) -> str:
    s = next(iter(summaries.values())).settings
    text = f"{s.get('n_samples', '?')} samples, view `{s.get('view', '?')}`"
    if s.get("n_bins_rule"):
        text += f", {s['n_bins']} bins by the `{s['n_bins_rule']}` rule"
    if "confidence_level" in s:
        text += f", {100 * s['confidence_level']:g}% bootstrap intervals in brackets"
    return text + "."


def to_html(summaries: Summary | Mapping[str, Summary], *, title: str = "Calibration report",
            source: str = "", images: Sequence[str | Path] = ()) -> str:
    """Self-contained HTML report: the table and the PNG diagrams embedded as base64.

    Examples
    --------
    >>> from calkit.report import Summary, to_html
    >>> settings = {"n_bins": 15, "n_samples": 1000, "view": "top_label"}
    >>> page = to_html({"before": Summary({"ece_uniform": 0.04}, settings=settings),
    ...                 "after": Summary({"ece_uniform": 0.01}, settings=settings)})
    >>> page.startswith("<!DOCTYPE html>"), "<h1>Calibration report</h1>" in page
    (True, True)
    >>> "<tr><th>metric</th><th>before</th><th>after</th></tr>" in page
    True
    >>> "<td>ECE (L1), 15 equal-width bins</td><td>0.0400</td><td>0.0100</td>" in page
    True
    """
    summaries = _as_mapping(summaries)
    header, rows = _rows(summaries)
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    findings = _finding_lines(summaries)
    notes = ("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in findings) + "</ul>"
             if findings else "")
    figures = []
    for image in images:
        data = base64.b64encode(Path(image).read_bytes()).decode("ascii")
        figures.append(f'<figure><img alt="{esc(Path(image).stem)}" '
                       f'src="data:image/png;base64,{data}"></figure>')
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .7em}"
             "td+td{text-align:right;font-family:monospace}img{max-width:100%}")
    src = f"<p>Data: <code>{esc(source)}</code></p>" if source else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{style}</style></head><body><h1>{esc(title)}</h1>{src}"
            f"<p>{esc(_settings_line(summaries))}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}{''.join(figures)}</body></html>\n")


def write_report(out_dir: str | Path, summaries: Summary | Mapping[str, Summary], *,
                 source: dict | None = None, images: Sequence[str | Path] = (),
                 formats: Sequence[str] = ("md", "html"), title: str = "Calibration report",
                 extra: dict | None = None) -> list[Path]:
    """Write ``report.json`` and the Markdown/HTML reports into ``out_dir``.

    Returns the paths written.

    Examples
    --------
    >>> import json, tempfile
    >>> from calkit.report import Summary, write_report
    >>> out = tempfile.mkdtemp()
    >>> paths = write_report(out, Summary({"accuracy": 0.9}), formats=("md",))
    >>> [p.name for p in paths]
    ['report.json', 'report.md']
    >>> json.loads(paths[0].read_text())["models"]["model"]["metrics"]
    {'accuracy': 0.9}
    """
    from calkit import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = _as_mapping(summaries)
    source = dict(source or {})
    payload = {"calkit_version": __version__, "source": source,
               "models": {k: s.to_dict() for k, s in summaries.items()},
               "images": [Path(i).name for i in images], **(extra or {})}
    written = [out / "report.json"]
    written[0].write_text(json.dumps(_json_ready(payload), indent=2) + "\n")
    src = str(source.get("file", ""))
    if "md" in formats:
        written.append(out / "report.md")
        written[-1].write_text(to_markdown(summaries, title=title, source=src, images=images))
    if "html" in formats:
        written.append(out / "report.html")
        written[-1].write_text(to_html(summaries, title=title, source=src, images=images))
    return written


# ----------------------------------------------------------------------------- grouped tables

def write_grouped_report(out_dir: str | Path, rows: Sequence[Mapping], *,
                         columns: Sequence[str], source: dict | None = None,
                         images: Sequence[str | Path] = (),
                         title: str = "Grouped calibration report") -> list[Path]:
    """Write a tidy table of grouped metrics: ``grouped.csv``, ``report.json``, ``report.md``.

    ``rows`` are row dicts such as those of
    :func:`calkit.metrics.grouped.grouped_calibration` (one per group and
    confidence source).  ``grouped.csv`` and ``report.json`` hold every column
    (NaN is an empty CSV cell and a JSON null); ``report.md`` shows ``columns``
    and links the images.  Returns the paths written.

    Examples
    --------
    >>> import tempfile
    >>> from calkit.report import write_grouped_report
    >>> rows = [{"llm": "a", "confidence": "stated", "ece_uniform": 0.1},
    ...         {"llm": "b", "confidence": "stated", "ece_uniform": float("nan")}]
    >>> paths = write_grouped_report(tempfile.mkdtemp(), rows, columns=["llm", "ece_uniform"])
    >>> [p.name for p in paths]
    ['grouped.csv', 'report.json', 'report.md']
    >>> paths[0].read_text().splitlines()
    ['llm,confidence,ece_uniform', 'a,stated,0.1', 'b,stated,']
    """
    import csv

    from calkit import __version__
    from calkit.metrics.grouped import format_table as grouped_markdown

    if not rows:
        raise ValueError("rows is empty: nothing to write")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(rows[0])
    written = [out / "grouped.csv", out / "report.json", out / "report.md"]
    with open(written[0], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if v is None else v for v in
                             (_json_ready(row.get(k)) for k in names)])
    payload = {"calkit_version": __version__, "source": dict(source or {}),
               "rows": [dict(r) for r in rows], "images": [Path(i).name for i in images]}
    written[1].write_text(json.dumps(_json_ready(payload), indent=2) + "\n")
    lines = [f"# {title}", ""]
    if source and source.get("file"):
        lines += [f"Data: `{source['file']}`", ""]
    lines += [grouped_markdown(rows, columns=columns), ""]
    lines += [f"![{Path(i).stem}]({Path(i).name})" for i in images]
    written[2].write_text("\n".join(lines).rstrip() + "\n")
    return written
