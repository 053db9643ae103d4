"""What makes a calkit calibrator a scikit-learn classifier: labels, containers, weights.

Every calibrator's ``fit`` is wrapped (by ``BaseCalibrator.__init_subclass__``)
with :func:`sklearn_fit`, which, before the calibrator's own fit runs:

* turns pandas ``DataFrame``/``Series`` inputs into arrays and records
  ``feature_names_in_`` (string column names), as scikit-learn estimators do;
* maps the labels to column indices through ``classes_`` (:func:`encode_labels`):
  integer labels inside ``[0, K)`` are the column indices themselves
  (``classes_ = 0 .. K-1``, so a class missing from a calibration fold keeps its
  column); any other labels (strings, objects, 1-based integers) must take
  exactly ``K`` distinct values, sorted into ``classes_`` (``classes_[k]`` is the
  class of column ``k``);
* turns a 1-D ``X`` into binary logits ``(log(1 - p), log p)`` for calibrators
  that work on ``(N, K)`` logits (:func:`binary_logits`), so that temperature,
  vector, matrix, Dirichlet, ETS and consistency calibration take a probability
  of the positive class (or a confidence, with 0/1 correctness as ``y``);
* validates ``sample_weight`` (:func:`calkit._validation.check_sample_weight`)
  and passes it on;
* sets ``n_features_in_`` and returns ``self``.

``predict_proba`` / ``predict`` / ``score`` of :class:`~calkit.posthoc.BaseCalibrator`
undo the same steps (:func:`predict_input`, :func:`decode_labels`).
"""

from __future__ import annotations

import functools
import inspect
import numbers
import warnings

import numpy as np

from calkit._array import is_torch, to_numpy, torch_module
from calkit._validation import check_sample_weight, check_scores, unmasked

#: probabilities are clipped to [_EPS, 1 - _EPS] before their logarithm
_EPS = 1e-12


# ------------------------------------------------------------------------ containers
def feature_names(X) -> np.ndarray | None:
    """String column names of a DataFrame-like ``X`` (object array), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or getattr(X, "ndim", 2) != 2:
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def plain(X, name: str = "X"):
    """``X`` as a numpy array (pandas, lists, array-likes) or a torch tensor.

    Sparse matrices, complex numbers and non-numeric objects are refused with a
    clear error; a numeric object array becomes float64.
    """
    if is_torch(X):
        if X.is_complex():
            raise ValueError(f"{name}: Complex data not supported (got a complex tensor)")
        return X
    if X is None:
        raise ValueError(f"{name} is None")
    X = unmasked(X, name)
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse {type(X).__name__}: calibrators need dense "
                        "data (sparse input is not supported); pass X.toarray()")
    if not isinstance(X, np.ndarray):
        if hasattr(X, "to_numpy") and hasattr(X, "shape"):  # pandas (and polars-like) frames
            X = X.to_numpy()
        else:
            try:
                X = np.asarray(X)
            except ValueError as exc:  # ragged nested lists
                raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if X.dtype.kind == "c":
        raise ValueError(f"{name}: Complex data not supported (got dtype {X.dtype})")
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name} must be numeric (an object array whose entries are "
                            f"not all numbers): {exc}") from exc
    return X


def _ndim(X) -> int:
    return int(getattr(X, "ndim", np.ndim(X)))


# ------------------------------------------------------------------------ labels
def encode_labels(y, n_columns: int, one_d: bool = False):
    """``(classes_, labels as column indices)`` for ``n_columns`` columns of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._sklearn_api import encode_labels
    >>> encode_labels(np.array([0, 2, 2]), 3)  # indices: class 1 absent, still a column
    (array([0, 1, 2]), array([0, 2, 2]))
    >>> encode_labels(np.array(["dog", "cat", "dog"]), 2)
    (array(['cat', 'dog'], dtype='<U3'), array([1, 0, 1]))
    """
    if is_torch(y):  # tensors hold numbers: the indices themselves (checked by the fit)
        return np.arange(n_columns), y
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and n_columns != 1:
        from sklearn.exceptions import DataConversionWarning

        warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples,), for example using ravel().",
                      DataConversionWarning, stacklevel=4)
        y = y.ravel()
    if y.ndim != 1:  # one-hot or wrong shape: the calibrator's own check decides
        return np.arange(n_columns), y
    if y.dtype.kind == "O" and len(y) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in y):
        y = y.astype(np.int64)  # an object array of integers: integer labels
    kind = y.dtype.kind
    if kind == "c":
        raise ValueError("y must hold class labels, got complex numbers")
    if kind == "b":
        return np.arange(n_columns), y.astype(np.int64)
    if kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("y must hold class labels, got NaN or infinite values")
        if not (y == np.round(y)).all():
            raise ValueError("Unknown label type: y holds non-integer floats (continuous "
                             "values); a calibrator needs class labels")
    if kind in "iuf" and len(y) and 0 <= y.min() and y.max() < n_columns:
        return np.arange(n_columns), y.astype(np.int64)
    try:
        classes, index = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise ValueError(f"Unknown label type: y must hold labels of one comparable type "
                         f"({exc})") from exc
    if len(classes) != n_columns and one_d:
        raise ValueError(f"X is 1-D (one binary score per sample), so y must hold 2 classes "
                         f"(0/1, booleans or two labels); got {len(classes)} distinct labels "
                         f"{classes[:6].tolist()}")
    if len(classes) != n_columns:
        shown = classes[:6].tolist()
        raise ValueError(
            f"y holds {len(classes)} distinct labels {shown}{' ...' if len(classes) > 6 else ''}"
            f" but X has {n_columns} columns (one per class): labels must be the column "
            f"indices 0..{n_columns - 1}, or exactly {n_columns} distinct values (sorted, "
            "one per column)")
    return classes, index.reshape(-1).astype(np.int64)


def labels_to_index(classes, y) -> np.ndarray:
    """Column indices of labels ``y`` among fitted ``classes``; ValueError for unknown ones."""
    y = np.asarray(to_numpy(y.to_numpy() if hasattr(y, "to_numpy") else y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    classes = np.asarray(classes)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
    try:
        idx = np.searchsorted(classes, y)
    except TypeError as exc:
        raise ValueError(f"labels of y cannot be compared with classes_: {exc}") from exc
    clipped = np.minimum(idx, len(classes) - 1)
    ok = (idx < len(classes)) & (classes[clipped] == y)
    if not ok.all():
        raise ValueError(f"y holds labels {np.unique(y[~ok])[:5].tolist()} that are not "
                         f"among the classes seen in fit {classes.tolist()}")
    return clipped.astype(np.int64)


def decode_labels(estimator, index):
    """Labels for predicted column indices: ``classes_[index]`` (indices if no ``classes_``)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return index
    classes = np.asarray(classes)
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes))):
        return index  # the indices are the labels (tensors stay tensors)
    return classes[np.asarray(to_numpy(index))]


# ------------------------------------------------------------------------ 1-D binary input
def binary_logits(p):
    """Two-class logits ``(log(1 - p), log p)`` of positive-class probabilities ``p``.

    ``p`` is clipped to ``[1e-12, 1 - 1e-12]`` first, so probabilities of exactly
    0 or 1 give logits of about -27.6 instead of minus infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit import softmax
    >>> from calkit.posthoc._sklearn_api import binary_logits
    >>> softmax(binary_logits(np.array([0.2, 0.9])))[:, 1].round(12).tolist()
    [0.2, 0.9]
    """
    try:
        s = check_scores(p, "X")
    except ValueError as exc:
        raise ValueError(f"a 1-D X is read as probabilities of the positive class (or "
                         f"confidences) in [0, 1]: {exc}; for 1-D binary logits d pass the "
                         "(N, 2) logits np.column_stack([np.zeros_like(d), d])") from exc
    if is_torch(s):
        s = s.double().clamp(_EPS, 1 - _EPS)
        return torch_module().stack([(-s).log1p(), s.log()], dim=1)
    s = np.clip(np.asarray(s, dtype=np.float64), _EPS, 1 - _EPS)
    return np.column_stack([np.log1p(-s), np.log(s)])


def _one_d_error(name: str) -> str:
    return (f"{name} was fitted on 1-D scores (one per sample); X must be 1-D as well")


# ------------------------------------------------------------------------ fit
def _check_binary_labels(y, name: str) -> None:
    """ValueError (scikit-learn's wording) when a binary-only calibrator sees > 2 labels."""
    values = y if is_torch(y) else np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if not is_torch(values) and values.dtype.kind == "f" and not (
            np.isfinite(values).all() and (values == np.round(values)).all()):
        return  # continuous: encode_labels says so
    if values.ndim == 1 and values.dtype != object:
        n_classes = len(values.unique() if is_torch(values) else np.unique(values))
    elif values.ndim == 1:
        n_classes = len(set(values.tolist()))
    else:
        return
    if n_classes > 2:
        raise ValueError(f"Only binary classification is supported by {name}: y holds "
                         f"{n_classes} classes")


def sklearn_fit(fit):
    """Wrap a calibrator's ``fit(self, X, y, [sample_weight], **kw)`` (module docstring)."""
    if getattr(fit, "_calkit_sklearn_fit", False):
        return fit
    takes_weight = "sample_weight" in inspect.signature(fit).parameters

    @functools.wraps(fit)
    def wrapped(self, X, y, sample_weight=None, **kwargs):
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None")
        y = unmasked(y, "y")
        names = feature_names(X)
        X = plain(X)
        ndim = _ndim(X)
        if ndim not in (1, 2):
            raise ValueError(f"X must be 1-D scores or 2-D (n_samples, n_features), got "
                             f"{ndim} dimensions")
        shape = tuple(X.shape)
        if ndim == 2 and shape[1] < self._min_columns:
            raise ValueError(
                f"X has {shape[1]} feature(s) (shape={shape}) while a minimum of "
                f"{self._min_columns} is required: a 2-D X holds one logit per class"
                + ("; pass binary scores as a 1-D array" if shape[1] == 1 else ""))
        n = int(shape[0])
        one_d = ndim == 1
        if one_d and not self._native_1d:
            X = binary_logits(X)
        n_columns = self._n_label_columns(X, kwargs)
        # None: the calibrator cannot tell the classes from its input (its fit says why)
        if not self._multiclass:
            _check_binary_labels(y, name)
        classes, labels = (None, y) if n_columns is None else encode_labels(y, n_columns, one_d)
        if sample_weight is not None:
            if not takes_weight:
                raise TypeError(f"{type(self).__name__}.fit does not support sample_weight")
            kwargs["sample_weight"] = check_sample_weight(sample_weight, n)
        fit(self, X, labels, **kwargs)
        self.classes_ = classes
        self.n_features_in_ = 1 if one_d else int(shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    wrapped._calkit_sklearn_fit = True
    return wrapped


# ------------------------------------------------------------------------ predict
def predict_input(estimator, X):
    """``X`` for prediction: plain array, feature names and count checked, 1-D converted.

    Returns ``(X, one_d)``; ``one_d`` says the output must be the positive-class column.
    """
    check_feature_names(estimator, X)
    X = plain(X)
    ndim = _ndim(X)
    if ndim not in (1, 2):
        raise ValueError(f"X must be 1-D scores or 2-D (n_samples, n_features), got {ndim} "
                         "dimensions")
    n_in = getattr(estimator, "n_features_in_", None)
    name = type(estimator).__name__
    if n_in is None:  # loaded from a file without the API state: trust the calibrator
        return X, False
    if n_in == 1:
        if ndim != 1:
            shape = tuple(np.shape(X)) if not is_torch(X) else tuple(X.shape)
            if ndim == 2 and shape[1] == 1:
                X = X[:, 0]
            else:
                raise ValueError(f"X has {shape[1] if ndim == 2 else shape} features, but "
                                 f"{name} is expecting 1 features as input "
                                 f"({_one_d_error(name)})")
        if estimator._native_1d:
            return X, False
        return binary_logits(X), True
    if ndim == 1:
        raise ValueError(f"X is 1-D, but {name} was fitted on {n_in} columns: pass a 2-D X "
                         f"with {n_in} columns. Reshape your data using X.reshape(1, -1) if "
                         "it holds a single sample")
    width = int(X.shape[1]) if is_torch(X) else int(np.shape(X)[1])
    if width != n_in:
        raise ValueError(f"X has {width} features, but {name} is expecting {n_in} "
                         "features as input")
    return X, False


def check_feature_names(estimator, X) -> None:
    """scikit-learn's rule: names seen in fit must match; warn when one side has none."""
    fitted = getattr(estimator, "feature_names_in_", None)
    names = feature_names(X)
    name = type(estimator).__name__
    if names is None and fitted is not None and getattr(X, "columns", None) is None:
        warnings.warn(f"X does not have valid feature names, but {name} was fitted with "
                      "feature names", UserWarning, stacklevel=3)
    elif names is not None and fitted is None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names",
                      UserWarning, stacklevel=3)
    elif names is not None and (len(names) != len(fitted) or (names != fitted).any()):
        raise ValueError("The feature names should match those that were passed during "
                         f"fit: fitted {list(fitted)[:6]}, got {list(names)[:6]}")


# ------------------------------------------------------------------------ save / load
def saved_state(estimator) -> dict:
    """``classes_``, ``n_features_in_`` and ``feature_names_in_`` as JSON-ready values."""
    state = {}
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        classes = np.asarray(classes)
        if classes.dtype.kind not in "iubUO":
            raise TypeError(f"classes_ of dtype {classes.dtype} cannot be saved as JSON")
        values = classes.tolist()
        if not all(isinstance(v, int | str | bool) for v in values):
            raise TypeError("classes_ must be integers or strings to be saved as JSON, got "
                            f"{sorted({type(v).__name__ for v in values})}")
        state["classes"] = values
    if hasattr(estimator, "n_features_in_"):
        state["n_features_in"] = int(estimator.n_features_in_)
    if hasattr(estimator, "feature_names_in_"):
        state["feature_names_in"] = [str(v) for v in estimator.feature_names_in_]
    return state


def restore_state(estimator, state, path: str = "file") -> None:
    """Inverse of :func:`saved_state` (files written before it have no state: nothing set)."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise ValueError(f"{path}: 'sklearn' must be a mapping, got {type(state).__name__}")
    classes = state.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not classes or not all(
                isinstance(v, int | str) and not isinstance(v, bool) for v in classes):
            raise ValueError(f"{path}: classes must be a non-empty list of integers or strings")
        arr = np.asarray(classes)
        if len(np.unique(arr)) != len(arr) or (np.sort(arr) != arr).any():
            raise ValueError(f"{path}: classes must be distinct and sorted")
        n_classes = getattr(estimator, "n_classes_", 2 if not estimator._multiclass else None)
        if n_classes is not None and len(arr) != int(n_classes):
            raise ValueError(f"{path}: {len(arr)} classes for a calibrator of {n_classes} "
                             "classes")
        estimator.classes_ = arr
    n_in = state.get("n_features_in")
    if n_in is not None:
        if isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1:
            raise ValueError(f"{path}: n_features_in must be a positive integer")
        estimator.n_features_in_ = n_in
    names = state.get("feature_names_in")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
            raise ValueError(f"{path}: feature_names_in must be a list of strings")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
