"""Saving fitted calibrators as JSON and loading them back, every value checked.

A calibrator file holds numbers and strings only::

    {"format": "calkit-calibrator", "version": 1, "class": "TemperatureScaling",
     "params": {...constructor arguments...},
     "fitted": {"temperature_": {"dtype": "<f8", "shape": [], "data": [1.5], "scalar": true},
                ...},
     "sklearn": {"classes": [...], "n_features_in": K}}

Nothing in it is executed, and nothing is trusted:

* the class is looked up in :data:`CALIBRATORS`, calkit's own fixed table of
  calibrator classes (by name and defining module), never in a registry that a
  subclass could join or shadow;
* every calibrator class declares the form of its fitted attributes in
  ``_fitted_spec`` (name -> :class:`ValueSpec`: kind, shape, range) and may
  declare constructor parameters used at prediction time in ``_param_spec``.
  :func:`load_calibrator` refuses unknown attributes and parameters, checks
  every value against its spec (type, shape, finiteness, range, dimensions
  shared between attributes such as ``K`` = ``n_classes_``), runs the class's own
  ``_check_params`` and cross-attribute ``_check_fitted_values``, and raises a
  ``ValueError`` naming the file, the attribute and the problem;
* files larger than :data:`MAX_FILE_BYTES` and arrays of more than
  :data:`MAX_ELEMENTS` entries are refused before they are read or built.

:meth:`BaseCalibrator.save` writes the attributes of ``_fitted_spec`` that the
fitted object has, after checking them by the same rules, so whatever ``save``
writes ``load_calibrator`` reads back.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calkit._array import to_numpy
from calkit._files import check_input_file
from calkit.posthoc._sklearn_api import restore_state, saved_state

FORMAT = "calkit-calibrator"
VERSION = 1
#: calkit's calibrators, by the class name ``save`` writes: the only classes that are loaded
CALIBRATORS = {
    "BetaCalibration": "calkit.posthoc.binary",
    "ConsistencyCalibration": "calkit.posthoc.consistency",
    "DirichletCalibration": "calkit.posthoc.dirichlet",
    "EnsembleTemperatureScaling": "calkit.posthoc.ensemble",
    "FeatureClipping": "calkit.posthoc.feature_clipping",
    "HistogramBinning": "calkit.posthoc.histogram",
    "IsotonicCalibration": "calkit.posthoc.isotonic",
    "MatrixScaling": "calkit.posthoc.temperature",
    "PerLabelIsotonic": "calkit.posthoc.multilabel",
    "PerLabelPlatt": "calkit.posthoc.multilabel",
    "PerLabelTemperature": "calkit.posthoc.multilabel",
    "PlattScaling": "calkit.posthoc.binary",
    "ScalingBinning": "calkit.posthoc.scaling_binning",
    "SplineCalibration": "calkit.posthoc.spline",
    "TemperatureScaling": "calkit.posthoc.temperature",
    "VectorScaling": "calkit.posthoc.temperature",
    "VennAbersCalibration": "calkit.posthoc.venn_abers",
}
#: fitted attributes of the scikit-learn layer, saved in the file's "sklearn" entry
SKLEARN_ATTRIBUTES = ("classes_", "n_features_in_", "feature_names_in_")
MAX_FILE_BYTES = 512 << 20
MAX_ELEMENTS = 50_000_000
KINDS = ("int", "float", "str", "array", "unsaved")
ARRAY_DTYPES = ("float64", "int64", "str")


@dataclass(frozen=True)
class ValueSpec:
    """The declared form of one fitted attribute (or constructor parameter).

    Parameters
    ----------
    kind : {"int", "float", "str", "array", "unsaved"}
        A Python int, float or str, or a numpy array; ``"unsaved"``: a
        diagnostic that ``save`` leaves out (and a file may not hold).
    shape : tuple of int or str, default=()
        Arrays: the shape; an int is a fixed size, a str names a dimension that
        must be the same wherever it appears (e.g. ``"K"``), ``"*"`` is any size.
    dtype : {"float64", "int64", "str"}, default="float64"
        Arrays: the element type.
    ge, gt, le, lt : float, optional
        Bounds on the value (ints, floats) or on every entry (arrays).
    finite : bool, default=True
        Refuse infinite values.
    nan_ok : bool, default=False
        Accept NaN (diagnostics where NaN means "not computed").
    choices : tuple of str, default=()
        Strings: the allowed values.
    dim : str, optional
        Ints: this value is the size of dimension ``dim`` (e.g. ``n_classes_`` is ``"K"``).
    total : float, optional
        Arrays: the entries add up to this (within 1e-9).
    required : bool, default=True
        A fitted calibrator always has it (``False``: saved when present;
        always ``False`` for ``"unsaved"``).
    none_ok : bool, default=False
        ``None`` is allowed (constructor parameters).

    Examples
    --------
    >>> from calkit.posthoc._persistence import ValueSpec, check_value
    >>> dims = {}
    >>> check_value("n_classes_", 3, ValueSpec("int", ge=2, dim="K"), dims), dims
    (3, {'K': 3})
    >>> check_value("temperature_", -1.0, ValueSpec("float", gt=0), dims)
    Traceback (most recent call last):
    ...
    ValueError: temperature_ must be > 0, got -1.0
    """

    kind: str
    shape: tuple = ()
    dtype: str = "float64"
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    nan_ok: bool = False
    choices: tuple = ()
    dim: str | None = None
    total: float | None = None
    required: bool = True
    none_ok: bool = False

    def __post_init__(self):
        if self.kind not in KINDS or self.dtype not in ARRAY_DTYPES:
            raise ValueError(f"bad ValueSpec kind {self.kind!r} / dtype {self.dtype!r}")
        if self.kind == "unsaved":  # never in a file, so never required of a loaded one
            object.__setattr__(self, "required", False)


def check_value(name: str, value, spec: ValueSpec, dims: dict[str, int]):
    """``value`` checked against ``spec`` (``dims``: sizes of named dimensions, updated).

    Returns the value in its canonical type (int, float, str or numpy array).
    """
    if value is None:
        if spec.none_ok:
            return None
        raise ValueError(f"{name} must not be None")
    if spec.kind == "str":
        if not isinstance(value, str | np.str_):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        if spec.choices and value not in spec.choices:
            raise ValueError(f"{name} must be one of {list(spec.choices)}, got {value!r}")
        return str(value)
    if spec.kind == "int":
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
        _check_bounds(name, np.array([value], dtype=np.float64), spec)
        if spec.dim is not None:
            _bind(name, spec.dim, value, dims)
        return value
    if spec.kind == "unsaved":
        raise ValueError(f"{name} is not saved")
    if spec.kind == "float":
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number) \
                or isinstance(value, complex | np.complexfloating):
            raise ValueError(f"{name} must be a real number, got {value!r}")
        value = float(value)
        _check_bounds(name, np.array([value]), spec)
        return value
    return _check_array(name, value, spec, dims)


def _check_array(name: str, value, spec: ValueSpec, dims: dict[str, int]) -> np.ndarray:
    arr = np.asarray(to_numpy(value))
    if spec.dtype == "str":
        if arr.dtype.kind != "U":
            raise ValueError(f"{name} must hold strings, got dtype {arr.dtype}")
    elif arr.dtype.kind not in ("iu" if spec.dtype == "int64" else "iuf") or arr.dtype == bool:
        wanted = "integers" if spec.dtype == "int64" else "real numbers"
        raise ValueError(f"{name} must hold {wanted}, got dtype {arr.dtype}")
    if arr.ndim != len(spec.shape):
        raise ValueError(f"{name} must be {len(spec.shape)}-D, got shape {arr.shape}")
    for axis, (size, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
        if isinstance(want, int) and not isinstance(want, bool):
            if size != want:
                raise ValueError(f"{name} must have {want} entries along axis {axis}, got "
                                 f"shape {arr.shape}")
        elif want != "*":
            _bind(name, want, size, dims)
    if spec.dtype == "str":
        return arr
    arr = arr.astype(np.dtype(spec.dtype))
    _check_bounds(name, arr.astype(np.float64), spec)
    if spec.total is not None and not abs(float(arr.sum()) - spec.total) <= 1e-9:
        raise ValueError(f"the entries of {name} must add up to {spec.total}, got "
                         f"{float(arr.sum())!r}")
    return arr


def _bind(name: str, dim: str, size: int, dims: dict[str, int]) -> None:
    if dims.setdefault(dim, size) != size:
        raise ValueError(f"{name} has {dim} = {size}, but other fitted values have "
                         f"{dim} = {dims[dim]} (e.g. a class count that does not match)")


def _check_bounds(name: str, values: np.ndarray, spec: ValueSpec) -> None:
    if values.size == 0:
        return
    nan = np.isnan(values)
    if nan.any():
        if not spec.nan_ok:
            raise ValueError(f"{name} contains NaN")
        values = values[~nan]
        if values.size == 0:
            return
    if spec.finite and not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite, got an infinite value")
    lo, hi = float(values.min()), float(values.max())
    scalar = spec.kind != "array"
    for bound, sign, ok in ((spec.ge, ">=", lambda b: lo >= b), (spec.gt, ">", lambda b: lo > b),
                            (spec.le, "<=", lambda b: hi <= b), (spec.lt, "<", lambda b: hi < b)):
        if bound is not None and not ok(bound):
            what, got = (name, repr(lo)) if scalar else \
                (f"every entry of {name}", f"values in [{lo!r}, {hi!r}]")
            raise ValueError(f"{what} must be {sign} {bound}, got {got}")


# ---------------------------------------------------------------------- classes
def calibrator_class(name) -> type:
    """The calkit calibrator class called ``name`` in :data:`CALIBRATORS` (ValueError if none)."""
    module = CALIBRATORS.get(name) if isinstance(name, str) else None
    if module is None:
        raise ValueError(f"unknown calibrator class {name!r}; calkit's calibrators are "
                         f"{sorted(CALIBRATORS)}")
    return getattr(importlib.import_module(module), name)


def _restore_tuples(cls, params: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists: give tuple-valued defaults their tuples back."""
    defaults = inspect.signature(cls.__init__).parameters
    out = dict(params)
    for key, value in params.items():
        if isinstance(value, list) and isinstance(defaults[key].default, tuple):
            out[key] = tuple(value)
    return out


# ---------------------------------------------------------------------- document
def to_document(est) -> dict:
    """The JSON document of a fitted calibrator (its values checked as on load)."""
    cls = type(est)
    if CALIBRATORS.get(cls.__name__) != cls.__module__ or \
            calibrator_class(cls.__name__) is not cls:
        raise TypeError(f"only calkit's own calibrators can be saved ({sorted(CALIBRATORS)}); "
                        f"{cls.__module__}.{cls.__qualname__} is not one of them")
    params = {k: _plain(v) for k, v in est.get_params(deep=False).items()}
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError as exc:
            raise TypeError(f"parameter {key}={value!r} cannot be saved as JSON") from exc
    spec = cls._fitted_spec
    undeclared = sorted(a for a in fitted_attributes(est)
                        if a not in spec and a not in SKLEARN_ATTRIBUTES)
    if undeclared:
        raise TypeError(f"{cls.__name__} has fitted attribute(s) {undeclared} that its "
                        "_fitted_spec does not declare; add a ValueSpec for each (kind "
                        "'unsaved' for diagnostics)")
    fitted = {}
    for name in spec:
        if not hasattr(est, name) or spec[name].kind == "unsaved":
            continue
        value = getattr(est, name)
        arr = np.asarray(to_numpy(value))
        fitted[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape),
                        "data": arr.ravel().tolist(), "scalar": np.ndim(value) == 0}
    doc = {"format": FORMAT, "version": VERSION, "class": cls.__name__, "params": params,
           "fitted": fitted, "sklearn": saved_state(est)}
    from_document(json.loads(json.dumps(doc)), f"the {cls.__name__} to save")
    return doc


def fitted_attributes(est) -> list[str]:
    """The fitted attributes an estimator has: public names ending in ``_`` (scikit-learn)."""
    return [a for a in vars(est) if a.endswith("_") and not a.startswith("_")]


def _plain(value):
    """numpy scalars (also inside lists and tuples) as Python numbers, for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def from_document(doc, where: str):
    """Rebuild a calibrator from a parsed document; ``where`` names it in errors."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where} is not a calkit calibrator file (a JSON "
                         f"{type(doc).__name__}, not an object)")
    if doc.get("format") != FORMAT:
        raise ValueError(f"{where} is not a calkit calibrator file (no \"format\": {FORMAT!r})")
    version = doc.get("version", VERSION)  # files from before versions were written: 1
    if version != VERSION or isinstance(version, bool):
        raise ValueError(f"{where} has format version {version!r}; this calkit reads version "
                         f"{VERSION}")
    unknown = sorted(set(doc) - {"format", "version", "class", "params", "fitted", "sklearn"})
    if unknown:
        raise ValueError(f"{where}: unexpected entries {unknown}")
    try:
        cls = calibrator_class(doc.get("class"))
    except ValueError as exc:
        raise ValueError(f"{where} holds an {exc}") from None
    est = _construct(cls, doc.get("params"), where)
    fitted = doc.get("fitted")
    if not isinstance(fitted, dict):
        raise ValueError(f"{where}: \"fitted\" must be an object of fitted attributes")
    spec = cls._fitted_spec
    unknown = sorted(a for a in fitted if a not in spec or spec[a].kind == "unsaved")
    if unknown:
        raise ValueError(f"{where}: unexpected fitted attribute(s) {unknown} for {cls.__name__} "
                         f"(it has {sorted(spec)})")
    missing = [a for a, s in spec.items() if s.required and a not in fitted]
    if missing:
        raise ValueError(f"{where}: missing fitted attribute(s) {missing} of {cls.__name__}")
    dims: dict[str, int] = {}
    values = {}
    try:
        for name in sorted(fitted, key=lambda a: spec[a].kind == "array"):  # ints bind dims first
            values[name] = check_value(name, _decode(name, fitted[name]), spec[name], dims)
        for name, value in values.items():
            setattr(est, name, value)
        est._check_fitted_values()
        restore_state(est, doc.get("sklearn"), "the file")   # classes_, n_features_in_
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return est


def _construct(cls, params, where: str):
    if not isinstance(params, dict):
        raise ValueError(f"{where}: \"params\" must be an object of constructor parameters")
    known = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(params) - set(known) - {"self"})
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {unknown} for {cls.__name__}")
    try:
        for name, spec in cls._param_spec.items():
            if name in params:
                check_value(f"parameter {name}", params[name], spec, {})
        est = cls(**_restore_tuples(cls, params))
        if hasattr(est, "_check_params"):
            est._check_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: invalid parameters for {cls.__name__}: {exc}") from None
    return est


def _decode(name: str, entry):
    """A fitted value from its JSON entry (shape and size checked before building)."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data", "scalar"}:
        raise ValueError(f"{name} must be an object with dtype, shape, data and scalar")
    shape, data, scalar = entry["shape"], entry["data"], entry["scalar"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                              and s >= 0 for s in shape):
        raise ValueError(f"{name}: shape must be a list of non-negative integers, got {shape!r}")
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        raise ValueError(f"{name} has {size} entries, more than the {MAX_ELEMENTS} allowed")
    if not isinstance(data, list) or len(data) != size:
        raise ValueError(f"{name}: data must be a list of {size} values (shape {shape})")
    if not isinstance(scalar, bool) or (scalar and shape != []):
        raise ValueError(f"{name}: scalar must be true (with shape []) or false")
    types = {type(v) for v in data}
    if types <= {int}:
        arr = np.array(data, dtype=np.int64) if data else np.zeros(0, np.int64)
    elif types <= {int, float}:
        arr = np.array(data, dtype=np.float64)
    elif types <= {str}:
        arr = np.array(data, dtype=str)
    else:
        raise ValueError(f"{name}: data must be numbers or strings, got "
                         f"{sorted(t.__name__ for t in types)}")
    if scalar:
        return arr.reshape(()).item()
    return arr.reshape(shape)


# ---------------------------------------------------------------------- files
def save_calibrator(est, path: str | Path) -> None:
    """Write a fitted calibrator to ``path`` (see :meth:`BaseCalibrator.save`).

    The file is written beside ``path`` first and then renamed, so a failed
    write never leaves half a file (nor destroys an older one).
    """
    path = Path(path)
    text = json.dumps(to_document(est), indent=1)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_calibrator(path: str | Path):
    """Rebuild a calibrator written by :meth:`BaseCalibrator.save`.

    Only calkit's own calibrator classes are built, and every parameter and
    fitted value is checked against the class's declared form (module
    docstring); a file that fails any check raises ``ValueError``.

    Parameters
    ----------
    path : str or Path
        A JSON file written by ``save``.

    Returns
    -------
    BaseCalibrator
        A fitted calibrator of the saved class.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from calkit.posthoc import TemperatureScaling, load_calibrator
    >>> z = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    >>> ts = TemperatureScaling().fit(z, [0, 1, 1, 1])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ts.json"
    >>> ts.save(path)
    >>> load_calibrator(path).temperature_ == ts.temperature_
    True
    """
    path = Path(path)
    try:
        check_input_file(path)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{path} is {size} bytes, more than a calibrator file may be "
                             f"({MAX_FILE_BYTES})")
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a calkit calibrator file (not JSON: {exc})") from exc
    except RecursionError:
        raise ValueError(f"{path} is not a calkit calibrator file (nested too deeply)") from None
    except OSError as exc:
        raise ValueError(f"{path} could not be read: {exc}") from exc
    return from_document(doc, str(path))
