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

from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from calkit._array import is_torch, to_numpy
from calkit._validation import check_binary_targets, check_labels, check_logits, check_scores
from calkit.posthoc import _sklearn_api as api
from calkit.posthoc._persistence import (
    ValueSpec,
    load_calibrator,  # noqa: F401 - re-exported here
    save_calibrator,
)


class BaseCalibrator(BaseEstimator):
    """Base class of calkit's post-hoc calibrators (not used directly).

    Subclasses declare their fitted attributes in ``_fitted_spec`` (name ->
    :class:`~calkit.posthoc._persistence.ValueSpec`; the required ones make up
    ``_fitted_attributes``, what a fitted calibrator has and :meth:`save` writes),
    optionally prediction-time constructor parameters in ``_param_spec`` and
    cross-attribute checks in ``_check_fitted_values``, and implement ``fit``
    and ``_predict_proba`` (numpy, float64); they may add
    ``_predict_proba_torch`` to keep tensors on their device.

    Every subclass's ``fit`` is wrapped with the scikit-learn layer of
    :mod:`calkit.posthoc._sklearn_api`: pandas input, labels mapped through
    ``classes_`` (any labels: strings, objects, or integer column indices),
    validated ``sample_weight``, 1-D binary scores, ``n_features_in_`` and
    ``feature_names_in_``; ``fit`` returns ``self``.  The subclass's own fit sees
    arrays and integer labels ``0 .. K-1``.  :meth:`predict` returns labels
    from ``classes_`` and :meth:`score` is the negative mean log-loss
    (scikit-learn's ``neg_log_loss`` convention).

    Examples
    --------
    >>> from calkit.posthoc import BaseCalibrator, TemperatureScaling
    >>> issubclass(TemperatureScaling, BaseCalibrator)
    True
    >>> TemperatureScaling._fitted_attributes
    ('temperature_', 'n_classes_')
    """

    #: declared form of every fitted attribute (checked by ``save`` and ``load_calibrator``)
    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {}
    #: declared form of constructor parameters that prediction uses (checked on load)
    _param_spec: ClassVar[dict[str, ValueSpec]] = {}
    #: the required fitted attributes (from ``_fitted_spec``)
    _fitted_attributes: ClassVar[tuple[str, ...]] = ()
    #: True when the calibrator never changes the argmax of (N, K) logits
    _keeps_argmax: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_fitted_attributes" in cls.__dict__:  # one declaration only: the spec
            raise TypeError(f"{cls.__name__} sets _fitted_attributes; declare its fitted "
                            "attributes in _fitted_spec (name -> ValueSpec) instead")
        cls._fitted_attributes = tuple(k for k, v in cls._fitted_spec.items() if v.required)

        if "fit" in cls.__dict__:
            cls.fit = api.sklearn_fit(cls.__dict__["fit"])

    #: True for calibrators that read a 1-D X themselves (a score per sample); the
    #: others get 1-D probabilities as the binary logits (log(1 - p), log p)
    _native_1d: ClassVar[bool] = False
    #: fewest columns of a 2-D X (one logit per class)
    _min_columns: ClassVar[int] = 2

    def _n_label_columns(self, X, fit_params: dict) -> int:
        """How many classes the labels may take: one per column of ``X`` (2 for 1-D)."""
        shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
        return 2 if len(shape) == 1 else int(shape[1])

    def _check_fitted_values(self) -> None:
        """Checks across fitted attributes after loading (override; raise ValueError)."""

    #: False for calibrators of binary problems only
    _multiclass: ClassVar[bool] = True

    def __sklearn_tags__(self):
        """scikit-learn (>= 1.6) tags: a classifier on logits that also transforms."""
        from sklearn.utils import ClassifierTags, TransformerTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        # poor_score: a calibrator keeps (or recalibrates) the model's own prediction; it
        # does not learn to classify arbitrary features (scikit-learn's accuracy checks)
        tags.classifier_tags = ClassifierTags(multi_class=self._multiclass, poor_score=True)
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X):
        """Calibrated probabilities for ``X`` (same input form as ``fit``).

        ``(N, K)`` rows that sum to one; for a calibrator fitted on 1-D scores, the
        1-D calibrated probability of the positive class ``classes_[1]``.
        """
        self._check_fitted()
        X, positive_column = api.predict_input(self, X)
        out = self._predict_proba_any(X)
        return out[:, 1] if positive_column else out

    def _predict_proba_any(self, X):
        if is_torch(X) and hasattr(self, "_predict_proba_torch"):
            return self._predict_proba_torch(X)
        out = self._predict_proba(np.asarray(to_numpy(X)))
        if is_torch(X):
            import torch

            return torch.as_tensor(out, dtype=X.dtype, device=X.device)
        return out

    def predict(self, X):
        """The predicted class: argmax of :meth:`predict_proba` (``p > 0.5`` for 1-D).

        Calibrators that provably keep the argmax (``_keeps_argmax``) return the
        argmax of the logits themselves, so float ties in the probabilities never
        change a prediction.
        """
        self._check_fitted()
        if self._keeps_argmax:
            z, positive_column = api.predict_input(self, X)
            if z.ndim == 2:  # a 1-D score map can move p across 0.5: thresholded below
                z = check_predict_logits(z, self.n_classes_, type(self).__name__)
                return api.decode_labels(self, z.argmax(1) if is_torch(z) else
                                         np.argmax(z, axis=1))
        p = self.predict_proba(X)
        if p.ndim == 1:
            index = (p > 0.5).long() if is_torch(p) else (p > 0.5).astype(np.int64)
        else:
            index = p.argmax(1) if is_torch(p) else np.argmax(p, axis=1)
        return api.decode_labels(self, index)

    def score(self, X, y, sample_weight=None) -> float:
        """Negative mean log-loss of :meth:`predict_proba` on ``(X, y)`` (higher is better).

        scikit-learn's ``neg_log_loss`` convention (probabilities clipped at the
        machine epsilon, as :func:`calkit.nll`); ``y`` holds labels from ``classes_``.
        """
        from calkit.metrics.scores import nll

        p = self.predict_proba(X)
        classes = getattr(self, "classes_", None)
        labels = api.labels_to_index(np.arange(p.shape[1] if p.ndim == 2 else 2)
                                     if classes is None else classes, y)
        p = np.asarray(to_numpy(p), dtype=np.float64)
        return -float(nll(labels, p, sample_weight=sample_weight))

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
        back without executing code.  Only calkit's own calibrator classes can be
        saved (a subclass would be loaded as a different class).
        """
        self._check_fitted()
        save_calibrator(self, path)


# ---------------------------------------------------------------------- input checks
def check_fit_logits(X, y, *, keep_float32: bool = False, keep_torch: bool = False):
    """Validated ``(logits (N, K), labels (N,) int64)`` for ``fit``.

    By default both come back as numpy, the logits as float64.  ``keep_float32``
    keeps float32 logits float32 (16-bit floats become float32) for solvers that
    accumulate in float64 themselves; ``keep_torch`` leaves tensors on their device.
    """
    z = check_logits(_float_if_integer(X), "X")
    labels = check_labels(y, int(z.shape[0]), int(z.shape[1]), like=z)
    if keep_torch and is_torch(z):
        return (z.float() if z.element_size() < 4 else z), labels
    z = np.asarray(to_numpy(z))
    dtype = np.float32 if keep_float32 and z.dtype.itemsize <= 4 else np.float64
    return z.astype(dtype, copy=False), np.asarray(to_numpy(labels))


def check_fit_binary(X, y):
    """Validated 1-D scores in [0, 1] and 0/1 targets, as float64 numpy, for ``fit``."""
    s = check_scores(X, "X")
    t = check_binary_targets(y, int(s.shape[0]), "y")
    return np.asarray(to_numpy(s), dtype=np.float64), np.asarray(to_numpy(t), dtype=np.float64)


def check_fit_binary_targets(y, n: int) -> np.ndarray:
    """0/1 float64 targets of length ``n`` from labels (already encoded to 0/1 by ``fit``)."""
    t = check_binary_targets(y, n, "y")
    return np.asarray(to_numpy(t), dtype=np.float64)


def check_predict_logits(X, n_classes: int, name: str = "calibrator"):
    """Validated logits with ``n_classes`` columns (numpy or torch, dtype kept)."""
    z = _float_if_integer(X)
    shape = getattr(z, "shape", ())
    if len(shape) == 2 and shape[1] != n_classes:  # before check_logits: 1 column is valid here
        raise ValueError(f"X has {shape[1]} features, but {name} is expecting {n_classes} "
                         f"features as input (one logit per class seen in fit)")
    return check_logits(z, "X")


def _float_if_integer(X):
    """Integer numpy logits as float64 (logits must be floats for ``check_logits``)."""
    if is_torch(X) or not isinstance(X, np.ndarray | list | tuple):
        return X
    arr = np.asarray(X)
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64)
    return arr
