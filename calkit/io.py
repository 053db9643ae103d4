"""Loading saved classifier outputs from files, safely (no code is ever executed).

Supported files
---------------
``.npz``
    Arrays by name.  The scores are found under ``logits``, ``probs``,
    ``probabilities``, ``predictions``, ``y_prob``, ``scores``, ``outputs`` or
    ``pyx`` (or any name containing one of those), the labels under ``labels``,
    ``y_true``, ``y``, ``targets``, ``ground_truth``...  When several names fit
    (e.g. ``val_logits`` and ``test_logits``) the one containing ``prefer``
    (default ``"test"``) is taken; ``scores_key=``/``labels_key=`` override.
``.npy``
    One array of scores; the labels come from ``labels=`` (another file).
``.pt`` / ``.pth``
    ``torch.load(weights_only=True)``: a dict of tensors (keys as for
    ``.npz``), a ``(scores, labels)`` pair, or a tensor of scores.
``.csv`` (stdlib parser) / ``.parquet`` (needs pandas)
    Either the binary *(confidence, correct)* form used for LLM answers (a
    column ``correct`` with 0/1 or TRUE/FALSE and a confidence column), or one
    label column plus one numeric column per class.

Pickle files (``.pkl``, ``.pickle``, object arrays) are refused: loading them can
run arbitrary code.

Scores: logits or probabilities
-------------------------------
``kind="auto"`` takes a 2-D array whose rows are non-negative and sum to one as
probabilities and anything else as logits (a softmax is applied); values in
[0, 1] whose rows do not sum to one are ambiguous and raise an error asking for
``kind``.  Leading axes of size one are dropped (``(1, N, K)`` files).
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calkit._array import to_numpy
from calkit._columns import float_column, true_false_words
from calkit._validation import check_classification, check_option, default_sum_tol
from calkit.logits import softmax

KINDS = ("auto", "logits", "probs")
_SCORE_NAMES = ("logits", "probs", "probabilities", "proba", "predictions", "y_prob", "scores",
                "outputs", "pyx", "softmax")
_LABEL_NAMES = ("labels", "label", "y_true", "targets", "target", "ground_truth", "y")
_CORRECT_NAMES = ("correct", "is_correct", "correctness")
_TRUE_WORDS = {"1", "true", "t", "yes", "1.0"}
_FALSE_WORDS = {"0", "false", "f", "no", "0.0"}
_MISSING_WORDS = {"", "na", "nan", "none", "null"}
_PICKLE_HINT = ("pickle files can run arbitrary code and are not loaded; re-save the arrays with "
                "numpy.savez(path, logits=..., labels=...)")


class LoadError(ValueError):
    """A file could not be turned into predictions; the message says why, in one line.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.io import LoadError, load_predictions
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "outputs.pkl"
    ...     _ = path.write_bytes(b"")
    ...     try:
    ...         load_predictions(path)
    ...     except LoadError as exc:
    ...         print(str(exc).split(";")[0])
    outputs.pkl: pickle files can run arbitrary code and are not loaded
    >>> issubclass(LoadError, ValueError)
    True
    """


@dataclass(frozen=True)
class Predictions:
    """Validated predictions loaded from a file.

    Attributes
    ----------
    y_true : ndarray of shape (N,)
        int64 labels; for ``kind="confidence"`` whether each answer was correct.
    y_prob : ndarray of shape (N, K) or (N,)
        Probabilities (a softmax of the logits when ``kind="logits"``); for
        ``kind="confidence"`` the stated confidence that the answer is right.
    kind : {"logits", "probs", "confidence"}
        What the file held.
    logits : ndarray or None
        The logits, when the file held logits.
    source : dict
        File name and the keys / columns used.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import softmax
    >>> from calkit.datasets import example_path
    >>> from calkit.io import load_predictions
    >>> pred = load_predictions(example_path())
    >>> pred.kind, pred.n_samples, pred.view, pred.logits.shape
    ('logits', 2000, 'top_label', (2000, 10))
    >>> bool(np.allclose(pred.y_prob, softmax(pred.logits)))
    True
    >>> pred.describe()
    'cifar10_resnet50_ce_test_2000.npz: 2000x10 logits (scores=logits, labels=labels)'
    """

    y_true: np.ndarray
    y_prob: np.ndarray
    kind: str
    logits: np.ndarray | None = None
    source: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.y_true.shape[0])

    @property
    def view(self) -> str:
        """The calibration view that fits: confidences are checked against correctness."""
        return "positive" if self.kind == "confidence" else "top_label"

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.y_prob.shape)
        used = ", ".join(f"{k}={v}" for k, v in self.source.items() if k != "file")
        return f"{self.source.get('file', '?')}: {shape} {self.kind} ({used})"


def load_predictions(path, *, labels=None, kind: str = "auto", scores_key: str | None = None,
                     labels_key: str | None = None, prefer: str = "test",
                     confidence_col: str | None = None, where: dict | None = None,
                     dropna: bool = False) -> Predictions:
    """Load scores and labels from ``path`` (see the module docstring for formats).

    Parameters
    ----------
    path : str or Path
        ``.npz``, ``.npy``, ``.pt``/``.pth``, ``.csv`` or ``.parquet``.
    labels : str or Path, optional
        A separate labels file (``.npy``, ``.npz``, ``.pt`` or one-column ``.csv``).
    kind : {"auto", "logits", "probs"}, default="auto"
        What the scores are; ``"auto"`` decides from the values.
    scores_key, labels_key : str, optional
        Array names (``.npz``, ``.pt`` dicts) or column names (tables).
    prefer : str, default="test"
        When several array names fit, take the one containing this word.
    confidence_col : str, optional
        Confidence column of a (confidence, correct) table.
    where : dict, optional
        Keep only table rows whose column equals the value, e.g. ``{"llm": "gpt-4o"}``.
    dropna : bool, default=False
        Drop table rows with a missing confidence instead of failing.

    Returns
    -------
    Predictions

    Raises
    ------
    LoadError
        A ``ValueError`` with a one-line message for every bad file.

    Examples
    --------
    >>> from calkit.datasets import example_path
    >>> from calkit.io import load_predictions
    >>> pred = load_predictions(example_path())
    >>> pred.kind, pred.y_prob.shape, pred.source["scores"], pred.source["labels"]
    ('logits', (2000, 10), 'logits', 'labels')
    """
    check_option(kind, "kind", KINDS)
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        return _from_table(path, _read_table(path), kind, scores_key, labels_key, confidence_col,
                           where or {}, dropna)
    if where:
        raise LoadError("--where filters apply to .csv/.parquet tables only")
    arrays = _read_arrays(path)
    scores, y, source = _pick_arrays(arrays, path, scores_key, labels_key, prefer,
                                     needs_labels=labels is None)
    if labels is not None:
        y, source["labels"] = _load_labels(Path(labels), labels_key, prefer)
    return _validated(scores, y, kind, {"file": path.name, **source})


def read_table(path, *, where: dict | None = None) -> dict:
    """Columns of a ``.csv`` or ``.parquet`` table by name, optionally filtered by ``where``.

    CSV columns come back as string arrays (stdlib parser, no pandas needed);
    parquet needs pandas.  ``where={"llm": "gpt-4o"}`` keeps the rows whose
    column equals the value (compared as text).  Bad files raise
    :class:`LoadError` with a one-line message.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.io import read_table
    >>> path = Path(tempfile.mkdtemp()) / "answers.csv"
    >>> _ = path.write_text("llm,conf,correct\\na,0.9,TRUE\\nb,0.6,FALSE\\na,0.8,FALSE\\n")
    >>> read_table(path, where={"llm": "a"})["conf"].tolist()
    ['0.9', '0.8']
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise LoadError(f"{path.name}: expected a .csv or .parquet table")
    return _filter_rows(_read_table(path), where or {}, path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if path.is_dir():
        raise LoadError(f"{path}: is a directory, expected a file")
    if path.suffix.lower() in (".pkl", ".pickle", ".joblib"):
        raise LoadError(f"{path.name}: {_PICKLE_HINT}")
    if path.suffix.lower() not in (".npz", ".npy", ".pt", ".pth", ".csv", ".parquet"):
        raise LoadError(f"{path.name}: unsupported file type {path.suffix!r}; use .npz, .npy, "
                        ".pt, .csv or .parquet")


def _read_arrays(path: Path) -> dict:
    """All arrays of an .npz/.npy/.pt file by name (an .npy gives ``{"": array}``)."""
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return _read_torch(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # .npy
            return {"": loaded}
        with loaded as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise LoadError(f"{path.name}: holds Python objects (pickled); "
                            f"{_PICKLE_HINT}") from exc
        raise LoadError(f"{path.name}: not a valid numpy file ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise LoadError(f"{path.name}: could not be read as a numpy file ({exc})") from exc


def _read_torch(path: Path) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise LoadError(f"{path.name}: reading .pt files needs PyTorch "
                        "(pip install 'calkit[torch]')") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything but plain tensors and containers
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{path.name}: torch.load(weights_only=True) refused it ({first}); save "
                        "plain tensors, e.g. torch.save({'logits': z, 'labels': y}, path)") from exc
    if isinstance(obj, torch.Tensor):
        return {"": obj.numpy()}
    if isinstance(obj, dict):
        return {str(k): to_numpy(v) for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if isinstance(obj, list | tuple) and len(obj) == 2:
        return {"scores": to_numpy(obj[0]), "labels": to_numpy(obj[1])}
    raise LoadError(f"{path.name}: expected a tensor, a dict of tensors or a (scores, labels) "
                    f"pair, got {type(obj).__name__}")


def _match(names, wanted: tuple, prefer: str) -> str | None:
    """The array name that fits ``wanted`` best, or None; LoadError when ambiguous."""
    exact = [w for w in wanted if w in names]
    if exact:
        return exact[0]
    hits = [n for n in names if any(w in n.lower() for w in wanted)]
    if len(hits) > 1:
        preferred = [n for n in hits if prefer and prefer.lower() in n.lower()]
        if len(preferred) == 1:
            return preferred[0]
        raise LoadError(f"several arrays could be meant: {hits}; choose one with --scores-key / "
                        "--labels-key")
    return hits[0] if hits else None


def _pick_arrays(arrays: dict, path: Path, scores_key, labels_key, prefer, needs_labels: bool):
    names = list(arrays)
    if not names:
        raise LoadError(f"{path.name}: holds no arrays")
    if names == [""]:
        if needs_labels:
            raise LoadError(f"{path.name}: a single array of scores; give the labels with "
                            "--labels FILE")
        return arrays[""], None, {"scores": "(array)"}
    s_key = scores_key or _match([n for n in names if n != labels_key], _SCORE_NAMES, prefer)
    if s_key is None or s_key not in arrays:
        what = f"named {scores_key!r}" if scores_key else "found"
        raise LoadError(f"{path.name}: no scores array {what} (arrays: {names}); name it with "
                        "--scores-key")
    source = {"scores": s_key}
    if not needs_labels:
        return arrays[s_key], None, source
    prefer_labels = _split_word(s_key) or prefer
    l_key = labels_key or _match([n for n in names if n != s_key], _LABEL_NAMES, prefer_labels)
    if l_key is None or l_key not in arrays:
        what = f"named {labels_key!r}" if labels_key else "found"
        raise LoadError(f"{path.name}: no labels array {what} (arrays: {names}); name it with "
                        "--labels-key or give --labels FILE")
    source["labels"] = l_key
    return arrays[s_key], arrays[l_key], source


def _split_word(key: str) -> str:
    """``"val"`` for ``"val_logits"``: labels are looked up next to their scores."""
    head, sep, _ = key.partition("_")
    return head if sep else ""


def _load_labels(path: Path, labels_key, prefer) -> tuple[np.ndarray, str]:
    _check_file(path)
    if path.suffix.lower() in (".csv", ".parquet"):
        table = _read_table(path)
        if len(table) != 1 and labels_key is None:
            raise LoadError(f"{path.name}: a labels table needs one column, or --labels-key")
        key = labels_key or next(iter(table))
        if key not in table:
            raise LoadError(f"{path.name}: no column {key!r} (columns: {list(table)})")
        return _numeric(table[key], key, path), f"{path.name}:{key}"
    arrays = _read_arrays(path)
    if list(arrays) == [""]:
        return arrays[""], path.name
    key = labels_key or _match(list(arrays), _LABEL_NAMES, prefer)
    if key is None or key not in arrays:
        raise LoadError(f"{path.name}: no labels array found (arrays: {list(arrays)})")
    return arrays[key], f"{path.name}:{key}"


def _squeeze_leading(a: np.ndarray, ndim: int) -> np.ndarray:
    while a.ndim > ndim and a.shape[0] == 1:
        a = a[0]
    return a


def _validated(scores, y, kind: str, source: dict) -> Predictions:
    """Decide logits vs probabilities and validate, with one-line errors."""
    scores = _squeeze_leading(np.asarray(scores), 2)
    y = _squeeze_leading(np.asarray(y), 1)
    name = source.get("file", "")
    if scores.dtype.kind not in "fiu" or scores.ndim not in (1, 2):
        raise LoadError(f"{name}: scores must be a 1-D or 2-D numeric array, got "
                        f"{scores.dtype} of shape {scores.shape}")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    if scores.ndim == 2 and y.ndim == 1 and scores.shape[0] != y.shape[0]:
        raise LoadError(f"{name}: {scores.shape[0]} rows of scores but {y.shape[0]} labels")
    if not np.isfinite(scores).all():
        raise LoadError(f"{name}: scores contain NaN or infinite values "
                        f"({int((~np.isfinite(scores)).sum())} entries)")
    if kind == "auto":
        kind = _detect_kind(scores, name)
    try:
        if kind == "logits":
            if scores.ndim != 2:
                raise LoadError(f"{name}: logits must be 2-D (n_samples, n_classes), got shape "
                                f"{scores.shape}")
            probs = softmax(scores)
            data = check_classification(y, probs)
            return Predictions(to_numpy(data.y_true), probs, "logits", scores, source)
        data = check_classification(y, scores)
    except LoadError:
        raise
    except ValueError as exc:
        raise LoadError(f"{name}: {exc}") from exc
    return Predictions(to_numpy(data.y_true), scores, "probs", None, source)


def _detect_kind(scores: np.ndarray, name: str) -> str:
    """Probabilities when the values are non-negative and rows sum to one (within the
    tolerance of the validation), logits when values leave [0, 1], else ambiguous."""
    lo, hi = float(scores.min()), float(scores.max())
    if scores.ndim == 1:
        if lo < 0 or hi > 1:
            raise LoadError(f"{name}: 1-D scores outside [0, 1] (range [{lo:.3g}, {hi:.3g}]); "
                            "binary scores must be probabilities of class 1")
        return "probs"
    worst = float(np.abs(scores.sum(axis=1, dtype=np.float64) - 1).max())
    if lo >= 0 and worst <= default_sum_tol(scores.dtype):
        return "probs"
    if lo < 0 or hi > 1:
        return "logits"
    raise LoadError(f"{name}: scores lie in [0, 1] but rows do not sum to 1 (off by up to "
                    f"{worst:.3g}); say what they are with --logits or --probs")


# ----------------------------------------------------------------------------- tables

def _read_table(path: Path) -> dict:
    """Columns of a CSV (stdlib csv, strings) or parquet (pandas) file by name."""
    if path.suffix.lower() == ".parquet":
        try:
            import pandas as pd
        except ImportError as exc:
            raise LoadError(f"{path.name}: reading .parquet needs pandas and pyarrow "
                            "(pip install pandas pyarrow), or save it as .csv/.npz") from exc
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow missing, corrupt file
            raise LoadError(f"{path.name}: could not be read as parquet ({exc})") from exc
        return {str(c): frame[c].to_numpy() for c in frame.columns}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LoadError(f"{path.name}: not a readable CSV text file ({exc})") from exc
    if len(rows) < 2:
        raise LoadError(f"{path.name}: needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    widths = {len(r) for r in body}
    if widths != {len(header)}:
        raise LoadError(f"{path.name}: rows have {sorted(widths)} fields but the header has "
                        f"{len(header)}")
    columns = zip(*body, strict=True)
    return {h.strip(): np.array(col, dtype=str) for h, col in zip(header, columns, strict=True)}


def _numeric(col: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        return float_column(col, _MISSING_WORDS)
    except ValueError as exc:
        raise LoadError(f"{path.name}: column {name!r} is not numeric ({exc})") from exc


def _boolean(col: np.ndarray, name: str, path: Path) -> np.ndarray:
    if col.dtype.kind == "b":
        return col.astype(np.int64)
    true, bad = true_false_words(col, _TRUE_WORDS, _FALSE_WORDS)
    if bad:
        raise LoadError(f"{path.name}: column {name!r} must be 0/1 or TRUE/FALSE, found {bad}")
    return true.astype(np.int64)


def _filter_rows(table: dict, where: dict, path: Path) -> dict:
    keep = None
    for col, value in where.items():
        if col not in table:
            raise LoadError(f"{path.name}: --where column {col!r} not found (columns: "
                            f"{list(table)})")
        hit = table[col].astype(str) == str(value)
        keep = hit if keep is None else keep & hit
    if keep is None:
        return table
    if not keep.any():
        raise LoadError(f"{path.name}: no rows match {where}")
    return {k: v[keep] for k, v in table.items()}


def _from_table(path: Path, table: dict, kind, scores_key, labels_key, confidence_col, where,
                dropna) -> Predictions:
    table = _filter_rows(table, where, path)
    names = list(table)
    correct = labels_key if labels_key in _CORRECT_NAMES else _first(names, _CORRECT_NAMES)
    if correct is not None and (labels_key is None or labels_key == correct):
        return _confidence_form(path, table, correct, confidence_col or scores_key, dropna)
    label = labels_key or _first(names, _LABEL_NAMES)
    if label is None or label not in table:
        raise LoadError(f"{path.name}: no label column (columns: {names}); name it with "
                        "--labels-key, or give a 'correct' column for (confidence, correct) data")
    score_cols = [c for c in names if c != label and c not in where]
    numeric = [c for c in score_cols if _is_numeric(table[c])]
    if len(numeric) < 1:
        raise LoadError(f"{path.name}: no numeric score columns besides {label!r}")
    scores = np.column_stack([_numeric(table[c], c, path) for c in numeric])
    if scores.shape[1] == 1:
        scores = scores[:, 0]
    y = _numeric(table[label], label, path)
    source = {"file": path.name, "scores": f"{len(numeric)} columns", "labels": label}
    return _validated(scores, y, kind, source)


def _is_numeric(col: np.ndarray) -> bool:
    if col.dtype.kind in "fiub":
        return True
    try:
        _numeric(col[:50], "", Path("."))
        return True
    except LoadError:
        return False


def _first(names, wanted) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _confidence_form(path: Path, table: dict, correct: str, confidence_col, dropna):
    """The binary (confidence, correct) table: one row per answer."""
    if confidence_col is None:
        candidates = [c for c in table if "conf" in c.lower() and c != correct]
        if not candidates:
            raise LoadError(f"{path.name}: found a {correct!r} column but no confidence column; "
                            "name it with --confidence-col")
        confidence_col = _first(candidates, ("confidence", "conf")) or candidates[0]
    if confidence_col not in table:
        raise LoadError(f"{path.name}: no column {confidence_col!r} (columns: {list(table)})")
    conf = _numeric(table[confidence_col], confidence_col, path)
    y = _boolean(table[correct], correct, path)
    missing = np.isnan(conf)
    if missing.any():
        if not dropna:
            raise LoadError(f"{path.name}: {int(missing.sum())} of {len(conf)} rows have no "
                            f"{confidence_col!r}; pass --dropna to drop them, or filter with "
                            "--where")
        conf, y = conf[~missing], y[~missing]
        if conf.size == 0:
            raise LoadError(f"{path.name}: every row lacks {confidence_col!r}")
    if conf.min() < 0 or conf.max() > 1:
        raise LoadError(f"{path.name}: confidences in {confidence_col!r} must lie in [0, 1], got "
                        f"[{conf.min():.3g}, {conf.max():.3g}]")
    source = {"file": path.name, "confidence": confidence_col, "correct": correct,
              "rows": int(conf.size)}
    if missing.any():
        source["dropped"] = int(missing.sum())
    return Predictions(y, conf, "confidence", None, source)
