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
    ``.npz``), a ``(scores, labels)`` pair, or a tensor of scores.  bfloat16 and
    float16 tensors are read as float32; sparse, quantized and meta tensors are
    refused.
``.csv`` (stdlib parser) / ``.parquet`` (needs pandas)
    Either the binary *(confidence, correct)* form used for LLM answers (a
    column ``correct`` with 0/1 or TRUE/FALSE and a confidence column), or one
    label column plus one numeric column per class.

Only regular files are read (no FIFOs or devices), and the array sizes an
``.npy``/``.npz`` header claims are checked against the file before anything is
allocated.  Pickle files (``.pkl``, ``.pickle``, object arrays) are refused:
loading them can run arbitrary code.

Score columns of a table
------------------------
``scores=`` names them: a list of columns, a comma-separated string
(``"p0,p1,p2"``), a glob (``"p*"``) or a prefix (``"prob_"``).  Without it
every numeric column but the label is a score, except columns that are row
numbers or identifiers: an unnamed column (a pandas index written by
``to_csv``), ``Unnamed: 0``, names such as ``id``, ``idx``, ``index``, ``row`` or
``*_id``, and integer columns that count the rows (``0..N-1``, ``1..N`` or any
increasing run).  Those are left out and said so in :attr:`Predictions.notes`.
A column of integers among non-integer score columns (an id or a fold number?)
is refused as ambiguous: name the scores.  Text columns are left out (and
said so); a number column with one cell that is not a number is an error that
names the column and the row.

Scores: logits or probabilities
-------------------------------
``kind="auto"`` calls scores logits only when they cannot be probabilities:
some value is negative, or values go above 1 while rows sum neither to 1 nor to
100.  Rows of non-negative values that sum to 1 are probabilities, divided by
their sums (rounding of a saved softmax is removed; rows off by more than
1e-4, and up to 1e-2, are renormalised and said so); rows that sum to 100 are percentages
and are divided by 100 (said so).  Anything else (values in [0, 1] whose rows
do not sum to 1, every row summing to the same other number) is ambiguous and
raises an error asking for ``kind="logits"``/``"probs"`` (``--logits`` /
``--probs``).  ``kind="probs"`` applies the same renormalisation, never a
softmax.  Leading axes of size one are dropped (``(1, N, K)`` files).
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calkit._array import to_numpy
from calkit._columns import float_column, parse_float_column, true_false_words
from calkit._files import PICKLE_HINT, LoadError, check_input_file, read_npy_header
from calkit._validation import check_classification, check_option, default_sum_tol
from calkit.logits import softmax

KINDS = ("auto", "logits", "probs")
SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".csv", ".parquet")
_SCORE_NAMES = ("logits", "probs", "probabilities", "proba", "predictions", "y_prob", "scores",
                "outputs", "pyx", "softmax")
_LABEL_NAMES = ("labels", "label", "y_true", "targets", "target", "ground_truth", "y")
_CORRECT_NAMES = ("correct", "is_correct", "correctness")
_TRUE_WORDS = {"1", "true", "t", "yes", "1.0"}
_FALSE_WORDS = {"0", "false", "f", "no", "0.0"}
_MISSING_WORDS = {"", "na", "nan", "none", "null"}
#: column names read as row numbers or identifiers, never as class scores
_ID_NAMES = frozenset({"", "id", "ids", "idx", "index", "row", "rows", "row_id", "rowid",
                       "row_number", "sample", "sample_id", "sample_idx", "image_id",
                       "example_id", "uid", "uuid", "key", "__index_level_0__"})
_ID_PATTERN = re.compile(r"(unnamed: \d+|.+_(id|idx|index)|(id|idx)_.+)")
#: rows off from summing to 1 by up to this much are renormalised probabilities
LOOSE_SUM_TOL = 1e-2


@dataclass(frozen=True)
class Predictions:
    """Validated predictions loaded from a file.

    Attributes
    ----------
    y_true : ndarray of shape (N,) or None
        int64 labels; for ``kind="confidence"`` whether each answer was correct.
        None only when loaded with ``require_labels=False`` from a file without
        labels.
    y_prob : ndarray of shape (N, K) or (N,)
        Probabilities (a softmax of the logits when ``kind="logits"``); for
        ``kind="confidence"`` the stated confidence that the answer is right.
    kind : {"logits", "probs", "confidence"}
        What the file held.
    logits : ndarray or None
        The logits, when the file held logits.
    source : dict
        File name, the keys / columns used and ``notes`` (what was inferred).

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
    >>> pred.notes
    ('logits: some scores are negative, so they cannot be probabilities',)
    """

    y_true: np.ndarray | None
    y_prob: np.ndarray
    kind: str
    logits: np.ndarray | None = None
    source: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.y_prob.shape[0])

    @property
    def view(self) -> str:
        """The calibration view that fits: confidences are checked against correctness."""
        return "positive" if self.kind == "confidence" else "top_label"

    @property
    def notes(self) -> tuple[str, ...]:
        """What was inferred or changed while loading (left-out columns, renormalised rows...)."""
        return tuple(self.source.get("notes", ()))

    def describe(self) -> str:
        """One line: file, shape, kind and the arrays or columns used."""
        shape = "x".join(str(d) for d in self.y_prob.shape)
        used = ", ".join(f"{k}={v}" for k, v in self.source.items()
                         if k not in ("file", "notes"))
        return f"{self.source.get('file', '?')}: {shape} {self.kind} ({used})"


def load_predictions(path, *, labels=None, kind: str = "auto", scores=None,
                     scores_key: str | None = None, labels_key: str | None = None,
                     prefer: str = "test", confidence_col: str | None = None,
                     where: dict | None = None, dropna: bool = False,
                     require_labels: bool = True) -> Predictions:
    """Load scores and labels from ``path`` (see the module docstring for formats).

    Parameters
    ----------
    path : str or Path
        ``.npz``, ``.npy``, ``.pt``/``.pth``, ``.csv`` or ``.parquet``.
    labels : str or Path, optional
        A separate labels file (``.npy``, ``.npz``, ``.pt`` or one-column ``.csv``).
    kind : {"auto", "logits", "probs"}, default="auto"
        What the scores are; ``"auto"`` decides from the values (module docstring).
    scores : str or sequence of str, optional
        Score columns of a table: names, ``"p0,p1,p2"``, a glob ``"p*"`` or a
        prefix.  For array files a single name works as ``scores_key``.
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
    require_labels : bool, default=True
        Fail when the file has no labels; with False, ``y_true`` is None then.

    Returns
    -------
    Predictions

    Raises
    ------
    LoadError
        A ``ValueError`` with a one-line message for every bad file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.datasets import example_path
    >>> from calkit.io import load_predictions
    >>> pred = load_predictions(example_path())
    >>> pred.kind, pred.y_prob.shape, pred.source["scores"], pred.source["labels"]
    ('logits', (2000, 10), 'logits', 'labels')

    A pandas ``to_csv()`` index column is left out, and percentages rescaled:

    >>> path = Path(tempfile.mkdtemp()) / "preds.csv"
    >>> _ = path.write_text(",p0,p1,label\\n0,80,20,0\\n1,30,70,1\\n2,60,40,1\\n")
    >>> pred = load_predictions(path)
    >>> pred.y_prob.tolist(), pred.source["scores"]
    ([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], 'p0,p1')
    >>> for note in pred.notes:
    ...     print(note)
    left out the unnamed first column (a row index), not a score
    probabilities: rows sum to 100, read as percentages and divided by 100
    """
    check_option(kind, "kind", KINDS)
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        table = _read_table(path)
        external = None
        if labels is not None:
            external = _load_labels(Path(labels), None, prefer)
        return _from_table(path, table, kind, scores, scores_key, labels_key,
                           confidence_col, where or {}, dropna, require_labels, external)
    if where:
        raise LoadError("--where filters apply to .csv/.parquet tables only")
    if scores is not None:
        if not isinstance(scores, str) or "," in scores or _is_glob(scores) or scores_key:
            raise LoadError(f"{path.name}: --scores selects table columns; name the array "
                            "of an .npz/.pt file with --scores-key")
        scores_key = scores
    arrays = _read_arrays(path)
    needs_labels = labels is None and require_labels
    scores_arr, y, source = _pick_arrays(arrays, path, scores_key, labels_key, prefer,
                                         needs_labels=needs_labels,
                                         want_labels=labels is None)
    if labels is not None:
        y, source["labels"] = _load_labels(Path(labels), labels_key, prefer)
    return _validated(scores_arr, y, kind, {"file": path.name, **source})


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
    table = _read_table(path)
    keep = _where_mask(table, where or {}, path)
    return table if keep is None else {k: v[keep] for k, v in table.items()}


def _check_file(path: Path) -> None:
    if path.suffix.lower() in (".pkl", ".pickle", ".joblib"):
        raise LoadError(f"{path.name}: {PICKLE_HINT}")
    check_input_file(path)
    if path.suffix.lower() not in SUFFIXES:
        raise LoadError(f"{path.name}: unsupported file type {path.suffix!r}; use .npz, .npy, "
                        ".pt, .csv or .parquet")


# ----------------------------------------------------------------------------- arrays

def _read_arrays(path: Path) -> dict:
    """All arrays of an .npz/.npy/.pt file by name (an .npy gives ``{"": array}``)."""
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return _read_torch(path)
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                read_npy_header(fh, os.fstat(fh.fileno()).st_size, path.name)
            return {"": np.load(path, allow_pickle=False)}
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fh:
                    read_npy_header(fh, info.file_size, f"{path.name}:{info.filename}")
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except LoadError:
        raise
    except zipfile.BadZipFile as exc:
        raise LoadError(f"{path.name}: not a valid .npz archive (corrupt, truncated or another "
                        f"format: {exc})") from exc
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise LoadError(f"{path.name}: holds Python objects (pickled); "
                            f"{PICKLE_HINT}") from exc
        raise LoadError(f"{path.name}: not a valid numpy file ({exc})") from exc
    except (OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise LoadError(f"{path.name}: could not be read as a numpy file "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                        ) from exc


def _read_torch(path: Path) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise LoadError(f"{path.name}: reading .pt files needs PyTorch "
                        "(pip install 'calkit[torch]')") from exc
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        raise LoadError(f"{path.name}: not a readable PyTorch file (no zip or pickle header: "
                        "corrupt, truncated or another format)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything but plain tensors and containers
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        why = [line for line in lines if "WeightsUnpickler error" in line]
        first = (why or lines or [type(exc).__name__])[0]
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise LoadError(f"{path.name}: torch.load(weights_only=True) refused it ({first}); "
                            "save plain tensors, e.g. torch.save({'logits': z, 'labels': y}, "
                            "path)") from exc
        raise LoadError(f"{path.name}: not a readable PyTorch file (corrupt, truncated or "
                        f"another format: {first})") from exc
    if isinstance(obj, torch.Tensor):
        return {"": _tensor_array(obj, path.name)}
    if isinstance(obj, dict):
        return {str(k): _tensor_array(v, f"{path.name}:{k}") for k, v in obj.items()
                if isinstance(v, torch.Tensor)}
    if isinstance(obj, list | tuple) and len(obj) == 2 and all(
            isinstance(t, torch.Tensor) for t in obj):
        return {"scores": _tensor_array(obj[0], path.name),
                "labels": _tensor_array(obj[1], path.name)}
    raise LoadError(f"{path.name}: expected a tensor, a dict of tensors or a (scores, labels) "
                    f"pair, got {type(obj).__name__}")


def _tensor_array(t, name: str) -> np.ndarray:
    """A numpy copy of a loaded tensor; sparse, quantized and meta tensors are refused."""
    import torch

    if t.layout != torch.strided:
        raise LoadError(f"{name}: a sparse tensor ({t.layout}); save t.to_dense()")
    if t.is_meta or t.device.type == "meta":
        raise LoadError(f"{name}: a meta tensor holds no data; save the real tensor")
    if t.is_quantized:
        raise LoadError(f"{name}: a quantized tensor; save t.dequantize()")
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    try:
        return to_numpy(t)
    except (TypeError, RuntimeError) as exc:
        raise LoadError(f"{name}: a {t.dtype} tensor cannot be read ({exc})") from exc


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


def _pick_arrays(arrays: dict, path: Path, scores_key, labels_key, prefer, needs_labels: bool,
                 want_labels: bool = True):
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
    if not want_labels:
        return arrays[s_key], None, source
    prefer_labels = _split_word(s_key) or prefer
    l_key = labels_key or _match([n for n in names if n != s_key], _LABEL_NAMES, prefer_labels)
    if l_key is None or l_key not in arrays:
        if not needs_labels and labels_key is None:
            return arrays[s_key], None, source
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
        return _strict_numeric(table[key], key, path, None), f"{path.name}:{key}"
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
    name = source.get("file", "")
    if scores.dtype.kind not in "fiu" or scores.ndim not in (1, 2):
        raise LoadError(f"{name}: scores must be a 1-D or 2-D numeric array, got "
                        f"{scores.dtype} of shape {scores.shape}")
    if scores.shape[0] == 0:
        raise LoadError(f"{name}: the scores are empty (0 rows)")
    if scores.dtype.kind != "f" or scores.dtype.itemsize > 8:
        scores = scores.astype(np.float64)
    if y is not None:
        y = _squeeze_leading(np.asarray(y), 1)
        if y.ndim >= 1 and y.shape[0] != scores.shape[0]:
            raise LoadError(f"{name}: {scores.shape[0]} rows of scores but {y.shape[0]} labels")
    if not np.isfinite(scores).all():
        raise LoadError(f"{name}: scores contain NaN or infinite values "
                        f"({int((~np.isfinite(scores)).sum())} entries)")
    notes = list(source.get("notes", ()))
    kind, scores, note = _decide_kind(scores, kind, name)
    if note:
        notes.append(note)
    if notes:
        source = {**source, "notes": notes}
    check_y = np.zeros(scores.shape[0], dtype=np.int64) if y is None else y
    try:
        if kind == "logits":
            probs = softmax(scores)
            data = check_classification(check_y, probs)
            labels = None if y is None else to_numpy(data.y_true)
            return Predictions(labels, probs, "logits", scores, source)
        data = check_classification(check_y, scores)
    except ValueError as exc:
        raise LoadError(f"{name}: {exc}") from exc
    labels = None if y is None else to_numpy(data.y_true)
    return Predictions(labels, scores, "probs", None, source)


def _decide_kind(scores: np.ndarray, kind: str, name: str) -> tuple[str, np.ndarray, str]:
    """``(kind, scores, note)``: logits only when the values cannot be probabilities;
    loosely normalised rows and percentages become probabilities (with a note)."""
    lo, hi = float(scores.min()), float(scores.max())
    flags = "; say what they are with --logits or --probs (kind='logits'/'probs')"
    if scores.ndim == 1:
        if kind == "logits":
            raise LoadError(f"{name}: logits must be 2-D (n_samples, n_classes), got shape "
                            f"{scores.shape}; 1-D scores are probabilities of class 1")
        if lo < 0 or hi > 1:
            raise LoadError(f"{name}: 1-D scores outside [0, 1] (range [{lo:.3g}, {hi:.3g}]); "
                            "binary scores must be probabilities of class 1 (divide "
                            "percentages by 100, or save (N, 2) logits)")
        return "probs", scores, ""
    if kind == "logits":
        return kind, scores, ""
    if lo < 0:
        if kind == "probs":
            raise LoadError(f"{name}: --probs given but some scores are negative (min "
                            f"{lo:.3g}); these look like logits (--logits)")
        return "logits", scores, "logits: some scores are negative, so they cannot be " \
            "probabilities"
    if hi == 0:
        if kind == "probs":
            raise LoadError(f"{name}: --probs given but every score is 0")
        return "logits", scores, "logits: every score is 0 (rows of 0 cannot be probabilities)"
    sums = scores.sum(axis=1, dtype=np.float64)
    off1 = float(np.abs(sums - 1).max())
    auto = kind == "auto"
    if off1 <= default_sum_tol(scores.dtype):
        if off1 > 1e-12:  # rounding of a saved softmax: divided out, a change too small to say
            scores = scores / sums[:, None]
        return "probs", scores, "probabilities: non-negative rows that sum to 1" if auto else ""
    if off1 <= LOOSE_SUM_TOL:
        return "probs", scores / sums[:, None], (
            f"probabilities: rows sum to 1 only within {off1:.2g}; renormalised")
    off100 = float(np.abs(sums - 100).max())
    if off100 <= 100 * LOOSE_SUM_TOL and hi <= 100 * (1 + LOOSE_SUM_TOL):
        return "probs", scores / sums[:, None], (
            "probabilities: rows sum to 100, read as percentages and divided by 100")
    if kind == "probs":
        raise LoadError(f"{name}: --probs given but rows sum to between {sums.min():.4g} and "
                        f"{sums.max():.4g}, not 1 (nor 100 for percentages)")
    if float(sums.max() - sums.min()) <= LOOSE_SUM_TOL * float(sums.mean()):
        raise LoadError(f"{name}: every row sums to {float(sums.mean()):.4g}, neither 1 nor 100 "
                        f"(counts or scaled probabilities?){flags}")
    if hi > 1 + 10 * LOOSE_SUM_TOL:
        return "logits", scores, (f"logits: scores go up to {hi:.3g} and rows sum neither to 1 "
                                  "nor to 100, so they cannot be probabilities")
    raise LoadError(f"{name}: scores lie in [{lo:.3g}, {hi:.3g}] but rows do not sum to 1 (off "
                    f"by up to {off1:.3g}): probabilities or logits?{flags}")


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
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LoadError(f"{path.name}: could not be read as parquet ({first})") from exc
        names = [str(c) for c in frame.columns]
        _check_unique(names, path)
        return {name: frame.iloc[:, i].to_numpy() for i, name in enumerate(names)}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LoadError(f"{path.name}: not a readable CSV text file ({exc})") from exc
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    if len(rows) < 2:
        raise LoadError(f"{path.name}: needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    _check_unique(header, path)
    bad = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if bad is not None:
        widths = {len(r) for r in body}
        raise LoadError(f"{path.name}: rows have {sorted(widths)} fields but the header has "
                        f"{len(header)} (first at line {bad + 2})")
    columns = zip(*body, strict=True)
    return {h: np.array(col, dtype=str) for h, col in zip(header, columns, strict=True)}


def _check_unique(names: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            shown = repr(name) if name else "'' (no name)"
            raise LoadError(f"{path.name}: duplicate column name {shown} (columns {seen[name] + 1} "
                            f"and {i + 1}); give every column its own name")
        seen[name] = i


def _row_text(path: Path, row: int) -> str:
    return (f"row {row + 1} (line {row + 2})" if path.suffix.lower() == ".csv"
            else f"row {row + 1}")


def _strict_numeric(col: np.ndarray, name: str, path: Path, rows) -> np.ndarray:
    """float64 values of a score/label column; a missing or non-number cell is an error
    naming the column and the row (``rows``: original row numbers after filtering)."""
    values, bad, _ = parse_float_column(col, _MISSING_WORDS)
    if bad is None and not np.isnan(values).any():
        return values
    i = bad if bad is not None else int(np.flatnonzero(np.isnan(values))[0])
    row = int(rows[i]) if rows is not None else i
    cell = str(col[i])
    what = f"{cell!r} is not a number" if bad is not None else (
        "the value is missing" if cell.strip().lower() in _MISSING_WORDS else f"{cell!r} is NaN")
    raise LoadError(f"{path.name}: column {name!r}, {_row_text(path, row)}: {what}")


def _numeric(col: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        return float_column(col, _MISSING_WORDS)
    except ValueError:
        _, bad, _ = parse_float_column(col, _MISSING_WORDS)
        raise LoadError(f"{path.name}: column {name!r}, {_row_text(path, bad or 0)}: "
                        f"{str(col[bad or 0])!r} is not a number") from None


def _boolean(col: np.ndarray, name: str, path: Path) -> np.ndarray:
    if col.dtype.kind == "b":
        return col.astype(np.int64)
    true, bad = true_false_words(col, _TRUE_WORDS, _FALSE_WORDS)
    if bad:
        raise LoadError(f"{path.name}: column {name!r} must be 0/1 or TRUE/FALSE, found {bad}")
    return true.astype(np.int64)


def _where_mask(table: dict, where: dict, path: Path) -> np.ndarray | None:
    keep = None
    for col, value in where.items():
        if col not in table:
            raise LoadError(f"{path.name}: --where column {col!r} not found (columns: "
                            f"{list(table)})")
        hit = table[col].astype(str) == str(value)
        keep = hit if keep is None else keep & hit
    if keep is not None and not keep.any():
        raise LoadError(f"{path.name}: no rows match {where}")
    return keep


def _is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def _select_columns(spec, names: list[str], path: Path) -> list[str]:
    """Columns named by ``spec``: names, ``"a,b"``, globs (``"p*"``) or prefixes."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    chosen: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise LoadError(f"{path.name}: --scores needs column names, got {spec!r}")
        if item in names:
            hits = [item]
        elif _is_glob(item):
            hits = [n for n in names if fnmatch.fnmatchcase(n, item)]
        else:
            hits = [n for n in names if n.startswith(item)]
        if not hits:
            raise LoadError(f"{path.name}: no column matches --scores {item!r} (columns: "
                            f"{names})")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _is_id_name(name: str) -> bool:
    low = name.strip().lower()
    return low in _ID_NAMES or _ID_PATTERN.fullmatch(low) is not None


def _counts_rows(v: np.ndarray) -> bool:
    """Integers that number the rows: increasing, or a permutation of consecutive integers."""
    if v.size < 3 or not np.all(v == np.round(v)):
        return False
    d = np.diff(v)
    if np.all(d > 0):
        return True
    s = np.sort(v)
    return bool(np.all(np.diff(s) == 1))


def _infer_score_columns(table: dict, candidates: list[str], path: Path, rows):
    """The score columns among ``candidates``, their values, and notes on what was left out."""
    notes: list[str] = []
    values: dict[str, np.ndarray] = {}
    text: list[str] = []
    for i, name in enumerate(candidates):
        if name == "" or name.lower().startswith("unnamed:") or name == "__index_level_0__":
            where_ = "first " if i == 0 and list(table)[0] == name else ""
            shown = "unnamed" if name == "" else repr(name)
            notes.append(f"left out the {shown} {where_}column (a row index), not a score")
            continue
        if _is_id_name(name):
            notes.append(f"left out column {name!r} (named like an identifier), not a score")
            continue
        parsed, bad, any_number = parse_float_column(table[name], _MISSING_WORDS)
        if not any_number:
            text.append(name)
            continue
        if bad is not None or np.isnan(parsed).any():
            _strict_numeric(table[name], name, path, rows)  # raises, naming the row
        values[name] = parsed
    if text:
        notes.append(f"left out text column(s) {', '.join(map(repr, text))}")
    counting = [n for n, v in values.items() if _counts_rows(v)]
    if counting and len(counting) < len(values):
        for name in counting:
            del values[name]
            notes.append(f"left out column {name!r} (integers counting the rows: a row index), "
                         "not a score")
    integral = [n for n, v in values.items() if np.all(v == np.round(v)) and np.ptp(v) > 0]
    if integral and len(integral) < len(values):
        v = values[integral[0]]
        raise LoadError(f"{path.name}: column {integral[0]!r} holds integers ({v.min():g} to "
                        f"{v.max():g}) while the other score columns do not: an id, a count or "
                        "a class score? name the score columns with --scores (e.g. "
                        f"--scores {','.join(n for n in values if n not in integral)})")
    return list(values), values, notes


def _compact(cols: list[str]) -> str:
    return ",".join(cols) if len(cols) <= 6 else f"{cols[0]}..{cols[-1]} ({len(cols)} columns)"


def _from_table(path: Path, table: dict, kind, scores, scores_key, labels_key, confidence_col,
                where, dropna, require_labels=True, external=None) -> Predictions:
    n_rows = len(next(iter(table.values())))
    if external is not None:
        if confidence_col is not None or where:
            raise LoadError(f"{path.name}: --labels FILE goes with a table of class scores only "
                            "(not with --where or a (confidence, correct) table)")
        own = labels_key or _first(list(table), _LABEL_NAMES)
        if own is not None and (scores if scores is not None else scores_key) is None:
            raise LoadError(f"{path.name} has a label column {own!r} and --labels FILE was "
                            "given too: drop --labels, or name the score columns with --scores")
        names = list(table)
        spec = scores if scores is not None else scores_key
        if spec is not None:
            cols = _select_columns(spec, names, path)
            values = {c: _strict_numeric(table[c], c, path, None) for c in cols}
            notes = []
        else:
            cols, values, notes = _infer_score_columns(table, names, path, None)
        if not cols:
            raise LoadError(f"{path.name}: no numeric score columns (columns: {names})")
        matrix = np.column_stack([values[c] for c in cols])
        source = {"file": path.name, "scores": _compact(cols), "labels": external[1]}
        if notes:
            source["notes"] = notes
        return _validated(matrix[:, 0] if matrix.shape[1] == 1 else matrix, external[0], kind,
                          source)
    keep = _where_mask(table, where, path)
    rows = np.arange(n_rows) if keep is None else np.flatnonzero(keep)
    if keep is not None:
        table = {k: v[keep] for k, v in table.items()}
    names = list(table)
    spec = scores if scores is not None else scores_key
    if confidence_col is not None:  # an explicit (confidence, correct) table
        correct = labels_key or _first(names, _CORRECT_NAMES)
        if correct is None or correct not in table:
            raise LoadError(f"{path.name}: no correctness column "
                            f"{'named ' + repr(correct) if correct else 'found'} (columns: "
                            f"{names}); name it with --correct")
        return _confidence_form(path, table, correct, confidence_col, dropna)
    correct = labels_key if labels_key in _CORRECT_NAMES else _first(names, _CORRECT_NAMES)
    if correct is not None and (labels_key is None or labels_key == correct) and spec is None:
        return _confidence_form(path, table, correct, None, dropna)
    label = labels_key or _first(names, _LABEL_NAMES)
    if label is not None and label not in table:
        raise LoadError(f"{path.name}: no label column {label!r} (columns: {names})")
    if label is None and require_labels:
        raise LoadError(f"{path.name}: no label column (columns: {names}); name it with "
                        "--labels-key, or give a 'correct' column for (confidence, correct) data")
    others = [c for c in names if c != label and c not in where]
    if spec is not None:
        cols = _select_columns(spec, names, path)
        if label in cols:
            raise LoadError(f"{path.name}: the label column {label!r} cannot also be a score "
                            "column; fix --scores or --labels-key")
        values = {c: _strict_numeric(table[c], c, path, rows) for c in cols}
        notes = []
    else:
        cols, values, notes = _infer_score_columns(table, others, path, rows)
    if not cols:
        raise LoadError(f"{path.name}: no numeric score columns besides {label!r} (columns: "
                        f"{names}); name them with --scores")
    score_matrix = np.column_stack([values[c] for c in cols])
    if score_matrix.shape[1] == 1:
        score_matrix = score_matrix[:, 0]
    y = None if label is None else _strict_numeric(table[label], label, path, rows)
    source = {"file": path.name, "scores": _compact(cols)}
    if label is not None:
        source["labels"] = label
    if notes:
        source["notes"] = notes
    return _validated(score_matrix, y, kind, source)


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
    if not np.isfinite(conf).all():
        raise LoadError(f"{path.name}: confidences in {confidence_col!r} must be finite")
    if conf.min() < 0 or conf.max() > 1:
        raise LoadError(f"{path.name}: confidences in {confidence_col!r} must lie in [0, 1], got "
                        f"[{conf.min():.3g}, {conf.max():.3g}]")
    source = {"file": path.name, "confidence": confidence_col, "correct": correct,
              "rows": int(conf.size)}
    notes = [f"(confidence, correct) table: confidence {confidence_col!r}, correctness "
             f"{correct!r}"]
    if missing.any():
        source["dropped"] = int(missing.sum())
        notes.append(f"dropped {int(missing.sum())} rows without a confidence (--dropna)")
    source["notes"] = notes
    return Predictions(y, conf, "confidence", None, source)
