"""Class-conditional calibration errors of Nixon et al. (2019): SCE, ACE and TACE.

"Measuring Calibration in Deep Learning" (Nixon, Dusenberry, Zhang, Jerfel and
Tran, CVPR workshops 2019) bins every class column ``p[:, k]`` against
``y == k`` on its own and averages over the ``K`` classes:

* **SCE** (static calibration error): ``B`` equal-width bins per class;
* **ACE** (adaptive calibration error): ``B`` equal-mass ranges per class;
* **TACE** (thresholded ACE): ACE on the probabilities above a threshold
  ``eps`` only, the ranges formed on the kept values.

The conventions are those of the authors' library, robustness_metrics
(``robustness_metrics/metrics/uncertainty.py``, ``GeneralCalibrationError``
with the ``sce``, ``ace`` and ``tace`` presets), here on calkit's binning
engine:

* 30 bins by default;
* class ``k`` keeps its probabilities ``p > threshold`` (strictly: even the
  default ``threshold=0`` drops exact zeros); its error is
  ``sum_b (n_b / N_k) |acc_b - conf_b|`` with ``N_k`` the kept rows, and the
  class errors are averaged, ``(1 / K) sum_k``; a class with no kept
  probability counts 0.  ``norm="l2"`` is ``sqrt((1 / K) sum_k sum_b (n_b /
  N_k) gap_b^2)``;
* bins are closed on the left, ``[a, b)``, and a probability of exactly 1.0
  has a bin of its own (``np.digitize`` on upper edges ending at 1.0);
* equal-width edges ``np.linspace(0, 1, B + 1)``; equal-mass lower edges are
  the sorted kept values at ranks ``round(linspace(0, N_k, B, endpoint=False))``
  (numpy's round half to even), so tied values stay together and ranges may be
  empty;
* 1-D binary probabilities ``p`` are the two columns ``[1 - p, p]`` (K = 2).

robustness_metrics' registered ``tace`` takes ``threshold=0.01`` but passes 0
to its engine, so there it equals ``ace``; :func:`tace` applies its threshold.
The ``n_b / N_k`` weights differ from the paper's unweighted ACE formula
``(1 / (K R)) sum_k sum_r |acc - conf|`` only by the unequal range sizes.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from calkit import _array as xp
from calkit._validation import check_classification, check_option
from calkit.binning import BinTable, _bin_table_explicit, resolve_n_bins
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import CalibrationResult, _combine, error_from_table

__all__ = ["ace", "sce", "tace"]

DEFAULT_BINS = 30


def _uniform_edges(n_bins: int, scores: np.ndarray) -> np.ndarray:
    """``[0, linspace(0, 1, B + 1)[1:-1], 1, 2]``: B bins ``[a, b)`` and one for 1.0."""
    return np.concatenate([[0.0], np.linspace(0.0, 1.0, n_bins + 1)[1:-1], [1.0, 2.0]])


def _adaptive_edges(n_bins: int, scores: np.ndarray) -> np.ndarray:
    """Lower edges at the sorted scores of ranks ``round(linspace(0, n, B, endpoint=False))``."""
    n = scores.shape[0]
    ranks = np.minimum(np.round(np.linspace(0, n, n_bins, endpoint=False)).astype(np.int64),
                       n - 1)
    lower = np.sort(scores)[ranks]
    return np.concatenate([[0.0], lower[1:], [1.0, 2.0]])


_EDGES = {"uniform": _uniform_edges, "adaptive": _adaptive_edges}


def _class_table(scores: np.ndarray, targets: np.ndarray, n_bins: int, binning: str,
                 threshold: float) -> BinTable:
    """The bin table of one class column: its probabilities above ``threshold``."""
    keep = scores > threshold
    s, t = scores[keep], targets[keep]
    if s.shape[0] == 0:
        edges = _uniform_edges(n_bins, s)
        zeros = np.zeros(edges.shape[0] - 1)
        return BinTable(edges, zeros.astype(np.int64), zeros, zeros.copy(), "explicit",
                        "left", n_samples=0)
    return _bin_table_explicit(s, t, _EDGES[binning](n_bins, s), "left")


def _class_conditional(y_true, y_prob, *, metric: str, n_bins, binning: str, threshold,
                       norm: str, sum_tol, classes) -> CalibrationResult:
    """The engine of :func:`sce`, :func:`ace` and :func:`tace` (robustness_metrics' GCE)."""
    check_option(norm, "norm", ("l1", "l2"))
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, Real):
        raise TypeError(f"threshold must be a number in [0, 1), got {threshold!r}")
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must lie in [0, 1) (probabilities above it are kept), "
                         f"got {threshold!r}")
    data = check_classification(y_true, y_prob, sum_tol=sum_tol, classes=classes)
    n_bins, rule = resolve_n_bins(n_bins, data.n_samples)
    tables, errors = [], []
    for scores, targets in score_target_pairs(data, "classwise"):
        s = xp.to_numpy(xp.as_float64(scores))
        table = _class_table(s, xp.to_numpy(targets).astype(bool), n_bins, binning,
                             float(threshold))
        tables.append(table)
        errors.append(float(error_from_table(table, norm)) if table.n_samples else 0.0)
    value = float(_combine(errors, norm))
    settings = dict(convention="robustness_metrics", metric=metric, norm=norm,
                    n_bins=n_bins, strategy=binning, closed="left", view="classwise",
                    threshold=float(threshold), debiased=False, n_samples=data.n_samples,
                    kept=[int(t.n_samples) for t in tables])
    if rule is not None:
        settings["n_bins_rule"] = rule
    if data.classes is not None:
        settings["classes"] = list(data.classes)
    return CalibrationResult(value, tuple(tables), settings)


def sce(y_true, y_prob, *, n_bins: int | str = DEFAULT_BINS, threshold: float = 0.0,
        norm: str = "l1", sum_tol: float | None = None, classes=None) -> CalibrationResult:
    """Static calibration error (Nixon et al. 2019): equal-width bins per class.

    Parameters
    ----------
    y_true : array of shape (N,) or (N, K)
        Class labels, or a one-hot matrix.
    y_prob : array of shape (N, K) or (N,)
        Class probabilities; a 1-D ``y_prob`` is a binary ``P(y = 1)``, read as
        the two columns ``[1 - p, p]``.  Torch tensors are read on the host.
    n_bins : int or str, default=30
        Bins per class, or a bin-count rule (``"sqrt"``, ``"cube_root"``,
        ``"rice"``, ``"sturges"``) of the number of rows ``N``
        (:func:`calkit.binning.resolve_n_bins`).
    threshold : float, default=0.0
        Each class keeps its probabilities ``> threshold`` (robustness_metrics'
        rule; 0 drops exact zeros).
    norm : {"l1", "l2"}, default="l1"
    sum_tol, classes
        As in :func:`calkit.calibration_error`.

    Returns
    -------
    CalibrationResult
        One table per class (``B + 1`` bins: the last holds probabilities of
        exactly 1.0); ``settings`` hold the convention, ``threshold``, ``kept``
        (rows kept per class) and ``n_bins`` (with ``n_bins_rule`` for a rule).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import sce
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> y = np.array([0, 1, 1, 1])
    >>> r = sce(y, y_prob, n_bins=2)
    >>> round(float(r), 6)   # class 0: (|0.3 + 0.4 - 0| + |0.9 + 0.8 - 1|) / 4, class 1 alike
    0.35
    >>> r.settings["convention"], r.settings["n_bins"], r.table.count.tolist()
    ('robustness_metrics', 2, [2, 2, 0])
    """
    return _class_conditional(y_true, y_prob, metric="SCE", n_bins=n_bins, binning="uniform",
                              threshold=threshold, norm=norm, sum_tol=sum_tol, classes=classes)


def ace(y_true, y_prob, *, n_bins: int | str = DEFAULT_BINS, threshold: float = 0.0,
        norm: str = "l1", sum_tol: float | None = None, classes=None) -> CalibrationResult:
    """Adaptive calibration error (Nixon et al. 2019): equal-mass ranges per class.

    Parameters as in :func:`sce`; the ranges of class ``k`` are formed on its
    kept probabilities (``p > threshold``), with lower edges at the sorted
    values of ranks ``round(linspace(0, N_k, B, endpoint=False))``.  ``ace``
    with ``threshold > 0`` is :func:`tace`.

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import ace
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(3000, 4)) * 3
    >>> p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    >>> y = np.array([rng.choice(4, p=row) for row in p])      # calibrated by construction
    >>> r = ace(y, p)
    >>> float(r) < 0.03, r.settings["n_bins"], len(r.tables)
    (True, 30, 4)
    >>> r.tables[0].count[:30].tolist() == [100] * 30     # 3000 rows, 30 ranges of 100
    True
    """
    return _class_conditional(y_true, y_prob, metric="ACE", n_bins=n_bins, binning="adaptive",
                              threshold=threshold, norm=norm, sum_tol=sum_tol, classes=classes)


def tace(y_true, y_prob, *, n_bins: int | str = DEFAULT_BINS, threshold: float = 0.01,
         norm: str = "l1", sum_tol: float | None = None, classes=None) -> CalibrationResult:
    """Thresholded adaptive calibration error (Nixon et al. 2019): ACE above ``threshold``.

    :func:`ace` on the probabilities ``> threshold`` only (default 0.01, the
    value of robustness_metrics' ``tace``, whose preset drops it and computes
    ACE; here it is applied), equal-mass ranges re-formed on the kept values of
    each class.  Parameters as in :func:`sce`.

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.metrics import ace, tace
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(3000, 10)) * 4
    >>> p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    >>> y = p.argmax(1)                                  # always right: under-confident
    >>> r = tace(y, p)
    >>> r.settings["threshold"], r.settings["kept"][0] < 3000
    (0.01, True)
    >>> bool(float(r) > float(ace(y, p)))    # tiny probabilities no longer dilute it
    True
    """
    return _class_conditional(y_true, y_prob, metric="TACE", n_bins=n_bins,
                              binning="adaptive",
                              threshold=threshold, norm=norm, sum_tol=sum_tol, classes=classes)
