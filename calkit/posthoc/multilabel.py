"""Per-label calibrators for multilabel outputs: one binary calibrator per label.

A multilabel model gives ``L`` independent logits per sample, ``z[i, l]``, with
``P(label l) = sigmoid(z[i, l])``, against a 0/1 matrix ``y`` of the same shape.
Each label is a binary task and is recalibrated on its own column by calkit's
binary calibrators, fitted exactly as they fit a single binary score:

==========================  =========================================================
class                       map of label ``l``
==========================  =========================================================
``PerLabelTemperature``     ``sigmoid(z_l / T_l)``, ``T_l`` minimising the binary NLL
                            (:class:`~calkit.posthoc.TemperatureScaling` on the two-class
                            logits ``(0, z_l)``, whose softmax is ``sigmoid(z_l / T)``)
``PerLabelPlatt``           ``sigmoid(a_l z_l + b_l)`` (:class:`~calkit.posthoc.PlattScaling`,
                            Platt's smoothed targets as scikit-learn's sigmoid calibration)
``PerLabelIsotonic``        isotonic regression of ``y_l`` on ``z_l``
                            (:class:`~calkit.posthoc.IsotonicCalibration` on 1-D scores)
``MultilabelCalibration``   any of the three, chosen by ``method=``
==========================  =========================================================

``fit(X, y)`` takes per-label **logits** ``X`` of shape ``(N, L)`` (for
probabilities pass ``scipy.special.logit(np.clip(p, 1e-12, 1 - 1e-12))``;
isotonic regression only uses the order of the scores, so for it either works)
and a 0/1 (or boolean) ``y`` of shape ``(N, L)``; ``predict_proba(X)`` returns
calibrated per-label probabilities ``(N, L)`` (rows need not sum to one) and
``predict(X)`` the 0/1 matrix ``predict_proba(X) > 0.5``.  ``score`` is minus the
mean binary cross-entropy (:func:`calkit.metrics.multilabel_nll`), so higher is
better, as for every calkit calibrator.  ``sample_weight`` (N,) weights every
label of a sample.  ``classes_`` is ``0 .. L-1`` (scikit-learn's convention for
label-indicator targets).

A label whose calibration column holds only one class (no positive, or no
negative, among the samples with positive weight) cannot be recalibrated:
``fit`` raises a ``ValueError`` naming those labels rather than fit a map that
the data cannot support.  Drop such labels, or calibrate on a larger split.

The per-label classes save to and load from JSON like every calkit calibrator;
:meth:`MultilabelCalibration.save` writes the per-label calibrator it fitted
(so loading gives a ``PerLabelTemperature``, ``PerLabelPlatt`` or
``PerLabelIsotonic``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

from calkit._array import is_torch, to_numpy
from calkit._validation import check_multilabel, check_option
from calkit.posthoc._base import BaseCalibrator, _float_if_integer
from calkit.posthoc._persistence import ValueSpec
from calkit.posthoc.binary import fit_platt, platt_targets
from calkit.posthoc.isotonic import IsotonicCalibration
from calkit.posthoc.temperature import TemperatureScaling

MULTILABEL_METHODS = ("temperature", "platt", "isotonic")


def _check_fit_multilabel(X, y, sample_weight):
    """``(logits (N, L) float64, targets (N, L) float64)``; one-class labels refused."""
    t, z = check_multilabel(y, _float_if_integer(X), logits=True, prob_name="X",
                            true_name="y")
    z = np.asarray(to_numpy(z), dtype=np.float64)
    t = np.asarray(to_numpy(t), dtype=np.float64)
    seen = t if sample_weight is None else t[np.asarray(sample_weight) > 0]
    one_class = np.flatnonzero(seen.min(axis=0) == seen.max(axis=0))
    if one_class.size:
        shown = one_class[:10].tolist()
        raise ValueError(
            f"label(s) {shown}{' ...' if one_class.size > 10 else ''} of y hold only one "
            "class (no positive or no negative) among the calibration samples"
            f"{' with positive sample_weight' if sample_weight is not None else ''}; a "
            "per-label calibrator needs both 0 and 1 in every column: drop those labels "
            "or calibrate on more data")
    return z, t


class _PerLabelCalibrator(BaseCalibrator):
    """Shared input checks, prediction and scikit-learn tags of the per-label calibrators."""

    _native_1d = True   # a 1-D X is refused by fit (not read as binary probabilities)
    _min_columns = 1    # one logit per label: a single label is a valid multilabel task
    # not a binary-only calibrator: y is a label matrix and classes_ is 0 .. L-1 (the tags
    # below say multi_label, not multi_class)
    _multiclass = True

    def _n_label_columns(self, X, fit_params: dict) -> int:
        if getattr(X, "ndim", np.ndim(X)) != 2:  # before labels are read as classes
            raise ValueError(f"X must be 2-D (n_samples, n_labels): one logit per label, got "
                             f"shape {tuple(X.shape)}")
        return int(X.shape[1])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit one map per label on logits ``X`` (N, L) and 0/1 labels ``y`` (N, L).

        ``sample_weight`` (N,) weights every label of a sample.
        """
        self._check_params()
        z, t = _check_fit_multilabel(X, y, sample_weight)
        self._fit_labels(z, t, sample_weight)
        self.n_labels_ = int(z.shape[1])
        return self

    def _check_params(self) -> None:
        """Validate constructor parameters (override)."""

    def _fit_labels(self, z: np.ndarray, t: np.ndarray,
                    sample_weight) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _map(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_proba(self, X):
        z = np.asarray(to_numpy(_float_if_integer(X)))
        if z.ndim == 1 and self.n_labels_ == 1:  # one label: the API layer passes its column
            z = z[:, None]
        if z.ndim != 2 or z.shape[1] != self.n_labels_:
            raise ValueError(f"X has shape {z.shape}, but {type(self).__name__} is expecting "
                             f"{self.n_labels_} features as input (one logit per label)")
        if z.dtype.kind != "f" or not np.isfinite(z).all():
            raise ValueError("X must hold finite real-valued logits")
        return self._map(z.astype(np.float64, copy=False))

    def predict(self, X):
        """The 0/1 label matrix ``predict_proba(X) > 0.5`` (N, L), int64."""
        p = self.predict_proba(X)
        return (p > 0.5).long() if is_torch(p) else (p > 0.5).astype(np.int64)

    def score(self, X, y, sample_weight=None) -> float:
        """Minus the mean binary cross-entropy of :meth:`predict_proba` (higher is better)."""
        from calkit.metrics.multilabel import multilabel_nll

        p = np.asarray(to_numpy(self.predict_proba(X)), dtype=np.float64)
        if p.ndim == 1:
            p = p[:, None]
        y = np.asarray(to_numpy(y.to_numpy() if hasattr(y, "to_numpy") else y))
        return -float(multilabel_nll(y.reshape(p.shape) if y.size == p.size else y, p,
                                     sample_weight=sample_weight))


class PerLabelTemperature(_PerLabelCalibrator):
    """A temperature per label: ``sigmoid(z_l / T_l)``, each ``T_l`` by binary NLL.

    Every label's temperature is fitted by :class:`~calkit.posthoc.TemperatureScaling`
    on the two-class logits ``(0, z_l)`` (their softmax is ``sigmoid(z_l / T)``,
    so its NLL is the label's binary cross-entropy), with the same solver,
    bounds and warnings.  Temperature scaling keeps every label's ranking and its
    0.5 threshold, so :meth:`predict` equals ``z > 0``.

    Parameters
    ----------
    t_bounds : tuple of float, default=(0.01, 100.0)
        Range of every ``T_l`` (a ``ConvergenceWarning`` when one ends at a bound).
    tol : float, default=1e-8
        Relative tolerance on ``1 / T_l``.
    max_iter : int, default=100
        Newton iterations per label.

    Attributes
    ----------
    temperature_ : ndarray of shape (L,)
        The fitted temperature of every label.
    n_labels_ : int
        ``L``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc import PerLabelTemperature
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(20000, 2)) * 3
    >>> y = (rng.random((20000, 2)) < 1 / (1 + np.exp(-z / [1.0, 2.0]))).astype(int)
    >>> cal = PerLabelTemperature().fit(z, y)
    >>> cal.temperature_.round(1).tolist()     # label 1 was over-confident by a factor 2
    [1.0, 2.0]
    >>> cal.predict_proba(z[:1]).shape
    (1, 2)
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "temperature_": ValueSpec("array", shape=("L",), gt=0),
        "n_labels_": ValueSpec("int", ge=1, dim="L")}

    def __init__(self, t_bounds: tuple[float, float] = (0.01, 100.0), tol: float = 1e-8,
                 max_iter: int = 100):
        self.t_bounds = t_bounds
        self.tol = tol
        self.max_iter = max_iter

    def _fit_labels(self, z, t, sample_weight):
        ts = TemperatureScaling(t_bounds=self.t_bounds, tol=self.tol, max_iter=self.max_iter)
        zero = np.zeros(z.shape[0])
        temperatures, warned = [], []
        for j in range(z.shape[1]):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                ts.fit(np.column_stack([zero, z[:, j]]), t[:, j], sample_weight)
            temperatures.append(ts.temperature_)
            for w in caught:  # said again below with the label it concerns
                if issubclass(w.category, ConvergenceWarning):
                    warned.append(f"label {j}: {w.message}")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if warned:
            warnings.warn("per-label temperature scaling: " + "; ".join(warned),
                          ConvergenceWarning, stacklevel=3)
        self.temperature_ = np.array(temperatures, dtype=np.float64)

    def _map(self, z):
        return expit(z / np.asarray(self.temperature_))


class PerLabelPlatt(_PerLabelCalibrator):
    """Platt scaling per label: ``sigmoid(a_l z_l + b_l)``.

    Every label gets the fit of :class:`~calkit.posthoc.PlattScaling` on its
    column of logits (Platt's smoothed targets by default, as scikit-learn's
    ``CalibratedClassifierCV(method="sigmoid")``), solved for all labels at once
    by a vectorised Newton method (``calkit.posthoc.binary.fit_platt``).

    Parameters
    ----------
    smooth_targets : bool, default=True
        Fit against Platt's smoothed targets instead of 0/1.

    Attributes
    ----------
    coef_ : ndarray of shape (L,)
        Slope ``a_l`` of every label.
    intercept_ : ndarray of shape (L,)
        Offset ``b_l`` of every label.
    n_labels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc import PerLabelPlatt
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(20000, 2))
    >>> y = (rng.random((20000, 2)) < 1 / (1 + np.exp(-(z * [2.0, 0.5] - [1.0, 0.0]))))
    >>> cal = PerLabelPlatt().fit(z, y)
    >>> cal.coef_.round(1).tolist(), cal.intercept_.round(1).tolist()
    ([2.0, 0.5], [-1.0, 0.0])
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "coef_": ValueSpec("array", shape=("L",)),
        "intercept_": ValueSpec("array", shape=("L",)),
        "n_labels_": ValueSpec("int", ge=1, dim="L")}

    def __init__(self, smooth_targets: bool = True):
        self.smooth_targets = smooth_targets

    def _fit_labels(self, z, t, sample_weight):
        z, t = np.asarray(z, np.float64), np.asarray(t, np.float64)
        if self.smooth_targets:
            t = platt_targets(t, sample_weight)
        self.coef_, self.intercept_ = fit_platt(z, t, sample_weight)

    def _map(self, z):
        return expit(z * np.asarray(self.coef_) + np.asarray(self.intercept_))


class PerLabelIsotonic(_PerLabelCalibrator):
    """Isotonic regression per label: a non-decreasing step map of each label's logit.

    Every label is fitted by :class:`~calkit.posthoc.IsotonicCalibration` on its
    column of scores (scikit-learn's ``IsotonicRegression`` with outputs in
    ``[0, 1]``; new scores are interpolated between its thresholds and clipped to
    the range seen in ``fit``), and the output is kept in ``[floor, 1 - floor]``.
    Only the order of the scores matters, so logits and probabilities give the
    same map.

    Parameters
    ----------
    floor : float, default=1e-12
        Least probability of either outcome (so the log-loss stays finite).

    Attributes
    ----------
    nodes_x_, nodes_y_ : ndarray
        The isotonic thresholds of all labels, one map after the other.
    offsets_ : ndarray of shape (L + 1, 2)
        Where each label's map starts in ``nodes_x_`` and ``nodes_y_``.
    n_labels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc import PerLabelIsotonic
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3))
    >>> y = (rng.random((2000, 3)) < 1 / (1 + np.exp(-3 * z))).astype(int)
    >>> cal = PerLabelIsotonic().fit(z, y)
    >>> p = cal.predict_proba(np.array([[-2.0, 0.0, 2.0]]))
    >>> bool(p[0, 0] < 0.05 and 0.3 < p[0, 1] < 0.7 and p[0, 2] > 0.95)
    True
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        "nodes_x_": ValueSpec("array", shape=("*",)),
        "nodes_y_": ValueSpec("array", shape=("*",), ge=0, le=1),
        "offsets_": ValueSpec("array", shape=("*", 2), dtype="int64", ge=0),
        "n_labels_": ValueSpec("int", ge=1, dim="L")}
    _param_spec: ClassVar[dict[str, ValueSpec]] = {"floor": ValueSpec("float", ge=0, lt=0.5)}

    def __init__(self, floor: float = 1e-12):
        self.floor = floor

    def _check_params(self) -> None:
        f = self.floor
        if isinstance(f, bool) or not isinstance(f, int | float | np.floating) \
                or not 0 <= f < 0.5:
            raise ValueError(f"floor must be a number in [0, 0.5), got {f!r}")

    def _fit_labels(self, z, t, sample_weight):
        iso = IsotonicCalibration(floor=self.floor)
        xs, vs = [], []
        for j in range(z.shape[1]):
            iso.fit(z[:, j], t[:, j], sample_weight)
            xs.append(np.asarray(iso.nodes_x_, dtype=np.float64))
            vs.append(np.asarray(iso.nodes_y_, dtype=np.float64))
        lengths = np.array([[0, 0]] + [[len(x), len(v)] for x, v in zip(xs, vs, strict=True)],
                           dtype=np.int64)
        self.nodes_x_ = np.concatenate(xs)
        self.nodes_y_ = np.concatenate(vs)
        self.offsets_ = np.cumsum(lengths, axis=0)

    def _check_fitted_values(self) -> None:
        """Loaded maps: ``offsets_`` cut the nodes into one sorted map per label."""
        o, x = np.asarray(self.offsets_), np.asarray(self.nodes_x_)
        if o.shape[0] != self.n_labels_ + 1:
            raise ValueError(f"offsets_ must have {self.n_labels_ + 1} rows (one map per "
                             f"label), got {o.shape[0]}")
        lengths = np.diff(o, axis=0)
        if (o[0] != 0).any() or (lengths < 1).any() or (lengths[:, 0] != lengths[:, 1]).any() \
                or o[-1].tolist() != [len(x), len(self.nodes_y_)]:
            raise ValueError("offsets_ must start at 0, give every map at least one node "
                             "(as many x as y nodes) and end at the lengths of nodes_x_ and "
                             "nodes_y_")
        unsorted = np.diff(x) < 0
        unsorted[o[1:-1, 0] - 1] = False  # where one map ends and the next begins
        if unsorted.any():
            raise ValueError("nodes_x_ must be sorted within every map")

    def _map(self, z):
        o = np.asarray(self.offsets_)
        x, v = np.asarray(self.nodes_x_), np.asarray(self.nodes_y_)
        out = np.empty_like(z)
        for j in range(z.shape[1]):
            out[:, j] = np.interp(z[:, j], x[o[j, 0]:o[j + 1, 0]], v[o[j, 1]:o[j + 1, 1]])
        return np.clip(out, self.floor, 1.0 - self.floor)


_METHOD_CLASSES = {"temperature": PerLabelTemperature, "platt": PerLabelPlatt,
                   "isotonic": PerLabelIsotonic}


class MultilabelCalibration(_PerLabelCalibrator):
    """One binary calibrator per label, chosen by ``method`` (with its default settings).

    Parameters
    ----------
    method : {"temperature", "platt", "isotonic"}, default="temperature"
        :class:`PerLabelTemperature`, :class:`PerLabelPlatt` or
        :class:`PerLabelIsotonic` (use those classes directly for their settings).

    Attributes
    ----------
    calibrator_ : PerLabelTemperature, PerLabelPlatt or PerLabelIsotonic
        The fitted per-label calibrator; :meth:`predict_proba` is its output and
        :meth:`save` writes it (loading the file gives that class).
    n_labels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import multilabel_ece
    >>> from calkit.posthoc import MultilabelCalibration
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4000, 3)) * 3
    >>> y = (rng.random((4000, 3)) < 1 / (1 + np.exp(-z / 2))).astype(int)  # over-confident
    >>> fit, test = slice(0, 2000), slice(2000, None)
    >>> cal = MultilabelCalibration(method="platt").fit(z[fit], y[fit])
    >>> before = multilabel_ece(y[test], z[test], logits=True)
    >>> after = multilabel_ece(y[test], cal.predict_proba(z[test]))
    >>> round(before, 2), bool(after < 0.03)
    (0.1, True)
    >>> type(cal.calibrator_).__name__
    'PerLabelPlatt'
    """

    _fitted_spec: ClassVar[dict[str, ValueSpec]] = {
        # never saved as such: ``save`` writes ``calibrator_`` itself
        "calibrator_": ValueSpec("unsaved"), "n_labels_": ValueSpec("int", ge=1, dim="L")}

    def __init__(self, method: str = "temperature"):
        self.method = method

    def _check_params(self) -> None:
        check_option(self.method, "method", MULTILABEL_METHODS)

    def _fit_labels(self, z, t, sample_weight):
        self.calibrator_ = _METHOD_CLASSES[self.method]().fit(z, t, sample_weight)

    def _map(self, z):
        return self.calibrator_._map(z)

    def save(self, path: str | Path) -> None:
        """Save ``calibrator_``: loading the file gives the fitted per-label calibrator."""
        self._check_fitted()
        self.calibrator_.save(path)
