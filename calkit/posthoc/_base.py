"""What every post-hoc calibrator shares: the estimator base, input checks, save/load.

Calibrators are scikit-learn estimators: constructor arguments are stored unchanged,
``fit`` learns attributes ending in ``_``, ``predict_proba`` returns calibrated
probabilities, ``predict`` the argmax (or ``p > 0.5`` for 1-D binary scores).
Fitting happens in float64 numpy; ``predict_proba`` on a torch tensor returns a
tensor on the same device where the subclass implements ``_predict_proba_torch``.

A fitted calibrator saves its constructor parameters and fitted arrays as JSON
(:meth:`BaseCalibrator.save`), and :func:`load_calibrator` rebuilds it without
unpickling anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from calkit._array import is_torch, to_numpy
from calkit._validation import check_binary_targets, check_labels, check_logits, check_scores

#: class name -> class, filled by ``BaseCalibrator.__init_subclass__``
_REGISTRY: dict[str, type[BaseCalibrator]] = {}

_FORMAT = "calkit-calibrator"


class BaseCalibrator(BaseEstimator):
    """Base class of calkit's post-hoc calibrators (not used directly).

    Subclasses set ``_fitted_attributes`` (the names :meth:`save` writes) and
    implement ``fit`` and ``_predict_proba`` (numpy, float64); they may add
    ``_predict_proba_torch`` to keep tensors on their device.
    """

    #: names of the fitted attributes that define the calibrator (saved by ``save``)
    _fitted_attributes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X):
        """Calibrated probabilities for ``X`` (same input form as ``fit``)."""
        self._check_fitted()
        if is_torch(X) and hasattr(self, "_predict_proba_torch"):
            return self._predict_proba_torch(X)
        out = self._predict_proba(np.asarray(to_numpy(X)))
        if is_torch(X):
            import torch

            return torch.as_tensor(out, dtype=X.dtype, device=X.device)
        return out

    def predict(self, X):
        """The predicted class: argmax of :meth:`predict_proba` (``p > 0.5`` for 1-D)."""
        p = self.predict_proba(X)
        if p.ndim == 1:
            return (p > 0.5).long() if is_torch(p) else (p > 0.5).astype(np.int64)
        return p.argmax(1) if is_torch(p) else np.argmax(p, axis=1)

    def transform(self, X):
        """Same as :meth:`predict_proba` (for use inside a scikit-learn ``Pipeline``)."""
        return self.predict_proba(X)

    def fit_transform(self, X, y, **fit_params):
        return self.fit(X, y, **fit_params).predict_proba(X)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    def _check_fitted(self) -> None:
        missing = [a for a in self._fitted_attributes if not hasattr(self, a)]
        if missing or not self._fitted_attributes:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; "
                                 "call 'fit' with validation data first")

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, a) for a in self._fitted_attributes)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write constructor parameters and fitted arrays to a JSON file.

        The file holds numbers and strings only; :func:`load_calibrator` reads it
        back without executing code.
        """
        self._check_fitted()
        fitted = {}
        for name in self._fitted_attributes:
            value = getattr(self, name)
            arr = np.asarray(to_numpy(value))
            fitted[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape),
                            "data": arr.ravel().tolist(), "scalar": np.ndim(value) == 0}
        doc = {"format": _FORMAT, "class": type(self).__name__,
               "params": _json_params(self.get_params(deep=False)), "fitted": fitted}
        Path(path).write_text(json.dumps(doc, indent=1))


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError as exc:
            raise TypeError(f"parameter {key}={value!r} cannot be saved as JSON") from exc
    return params


def load_calibrator(path: str | Path) -> BaseCalibrator:
    """Rebuild a calibrator written by :meth:`BaseCalibrator.save`.

    Parameters
    ----------
    path : str or Path
        A JSON file written by ``save``.

    Returns
    -------
    BaseCalibrator
        A fitted calibrator of the saved class.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a calkit calibrator file (not JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a calkit calibrator file")
    cls = _REGISTRY.get(doc.get("class"))
    if cls is None:
        raise ValueError(f"{path} holds an unknown calibrator class {doc.get('class')!r}")
    est = cls(**doc["params"])
    for name, spec in doc["fitted"].items():
        if name not in cls._fitted_attributes:
            raise ValueError(f"{path}: unexpected fitted attribute {name!r}")
        arr = np.asarray(spec["data"], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
        setattr(est, name, arr[()] if spec["scalar"] else arr)
    est._check_fitted()
    return est


# ---------------------------------------------------------------------- input checks
def check_fit_logits(X, y):
    """Validated ``(logits (N, K) float64 numpy, labels (N,) int64 numpy)`` for ``fit``."""
    z = check_logits(X, "X")
    labels = check_labels(y, int(z.shape[0]), int(z.shape[1]), like=z)
    return np.asarray(to_numpy(z), dtype=np.float64), np.asarray(to_numpy(labels))


def check_fit_binary(X, y):
    """Validated 1-D scores in [0, 1] and 0/1 targets, as float64 numpy, for ``fit``."""
    s = check_scores(X, "X")
    t = check_binary_targets(y, int(s.shape[0]), "y")
    return np.asarray(to_numpy(s), dtype=np.float64), np.asarray(to_numpy(t), dtype=np.float64)


def check_predict_logits(X, n_classes: int) -> np.ndarray:
    """Validated logits with ``n_classes`` columns as float64 numpy."""
    z = check_logits(X, "X")
    if z.shape[1] != n_classes:
        raise ValueError(f"X has {z.shape[1]} classes but the calibrator was fitted on "
                         f"{n_classes}")
    return z
