"""torchmetrics ``Metric`` classes on calkit's fixed-size, float64 bin tables.

torchmetrics' own ``CalibrationError`` keeps every confidence in a ``"cat"``
list state: memory ``O(N)`` on every rank, a gather of all predictions under
DDP, and float32 sums.  The metrics here keep the bin table of the binning
engine (:func:`calkit.binning.bin_table`: count, confidence sum and target sum
per bin) and the Brier/NLL sums as ``dist_reduce_fx="sum"`` states, so the
state is ``O(n_bins)``, float64, and the all-reduce moves a few hundred bytes
whatever the number of samples.  ``merge_state``, ``MetricCollection`` (metrics
with equal states share one update) and Lightning's ``self.log(name, metric)``
work as with any torchmetrics metric.

Arguments follow torchmetrics' ``CalibrationError`` (``task``, ``num_classes``,
``n_bins``, ``norm``, ``ignore_index``), and ``convention`` picks the bin rule:

``"calkit"`` (default)
    Exact edges ``k / n_bins``, bins ``(a, b]`` (first bin ``[0, b]``), so a
    confidence of exactly 1.0 is in the last bin; confidences in their own
    dtype, every sum in float64.  ``preds`` are probabilities (validated: rows
    sum to one), or logits with ``from_logits=True``.
``"torchmetrics"``
    torchmetrics 1.9's rule: edges ``torch.linspace(0, 1, n_bins + 1)`` in the
    confidences' dtype, bins ``[a, b)``, and a confidence of exactly 1.0 in an
    extra ``(n_bins + 1)``-th bin (torchmetrics#3510); multiclass confidences
    are cast to float32 first; ``preds`` outside ``[0, 1]`` are taken as logits
    (softmax / sigmoid), as torchmetrics does.  The value equals torchmetrics'
    up to *its* float32 summation (it drifts in the 7th digit at 10^4 samples
    and by far more at 10^7 on a GPU); the bins are the same.

``task="binary"`` is judged on ``P(y = 1)`` (1-D ``preds``), ``"multiclass"`` on
the top-label confidence (``(N, C)`` or ``(N, C, d1, ...)`` ``preds``).

Precision plugins that cast a module (Lightning's ``"16-true"``) also cast these
float64 states; keep metrics outside such modules or use mixed precision.
"""

from __future__ import annotations

import numpy as np

from calkit._validation import check_classification, check_n_bins, check_option, check_scores
from calkit.binning import BinTable, _bin_table_explicit, bin_table
from calkit.metrics._views import score_target_pairs
from calkit.metrics.binned import NORMS, debiased_error_from_table, error_from_table
from calkit.metrics.scores import _brier_per_sample, _true_class_prob

try:
    import torch
    from torchmetrics import Metric
except ImportError:  # pragma: no cover - only without torchmetrics
    torch = None
    Metric = object

__all__ = [
    "BrierScore",
    "CalibrationError",
    "DebiasedCalibrationError",
    "NegativeLogLikelihood",
]

CONVENTIONS = ("calkit", "torchmetrics")
TASKS = ("binary", "multiclass")
_TM_KWARGS = ("compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn",
              "distributed_available_fn", "sync_on_compute", "compute_with_cache")


class _BinTableMetric(Metric):
    """Base: states ``count``/``sum_score``/``sum_target`` per bin, ``brier``/``nll`` sums."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = False
    _needs_scores = False  # whether update also sums the Brier score and the NLL

    def __init__(self, task: str = "multiclass", num_classes: int | None = None,
                 n_bins: int = 15, norm: str = "l1", ignore_index: int | None = None, *,
                 convention: str = "calkit", from_logits: bool = False, **kwargs) -> None:
        if torch is None:  # pragma: no cover - only without torchmetrics
            raise ImportError("calkit.integrations.torchmetrics needs torchmetrics: "
                              "pip install torchmetrics")
        unknown = sorted(set(kwargs) - set(_TM_KWARGS))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {unknown}")
        if kwargs.get("dist_sync_on_step"):
            raise ValueError("dist_sync_on_step is not supported: the state is synchronised "
                             "once, in compute()")
        super().__init__(**kwargs)
        self.task = check_option(task, "task", TASKS)
        if task == "multiclass" and (isinstance(num_classes, bool) or not isinstance(
                num_classes, int) or num_classes < 2):
            raise ValueError(f"num_classes must be an integer >= 2 for task='multiclass', "
                             f"got {num_classes!r}")
        self.num_classes = num_classes
        self.n_bins = check_n_bins(n_bins)
        self.norm = check_option(norm, "norm", NORMS)
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, int)):
            raise ValueError(f"ignore_index must be None or an integer, got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.convention = check_option(convention, "convention", CONVENTIONS)
        if convention == "torchmetrics" and from_logits:
            raise ValueError("convention='torchmetrics' detects logits itself (values outside "
                             "[0, 1]); do not pass from_logits=True")
        self.from_logits = bool(from_logits)
        slots = self.n_bins + (1 if convention == "torchmetrics" else 0)
        self.add_state("count", torch.zeros(slots, dtype=torch.int64), dist_reduce_fx="sum")
        for name in ("sum_score", "sum_target"):
            self.add_state(name, torch.zeros(slots, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("brier", "nll"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    # ------------------------------------------------------------------ update
    def update(self, preds, target) -> None:
        """Add a batch: ``preds`` (N,) (binary) or (N, C, ...) (multiclass), labels ``target``."""
        preds, target = self._flat(preds, target)
        if preds.shape[0] == 0:
            return
        if self.convention == "torchmetrics":
            scores, targets, edges = self._torchmetrics_pairs(preds, target)
            # the extra top edge above 1 gives a confidence of exactly 1.0 its own slot, as
            # torchmetrics does; bin_table's public check keeps edges inside [0, 1]
            table = _bin_table_explicit(check_scores(scores), targets, edges, "left")
        else:
            data = check_classification(target, preds)
            view = "positive" if self.task == "binary" else "top_label"
            ((scores, targets),) = score_target_pairs(data, view)
            table = bin_table(scores, targets, n_bins=self.n_bins, closed="right")
            if self._needs_scores:
                self._add_scores(data)
        self.count += table.count.to(self.count.device)
        self.sum_score += table.sum_score.to(self.sum_score.device, torch.float64)
        self.sum_target += table.sum_target.to(self.sum_target.device, torch.float64)

    def _flat(self, preds, target):
        preds, target = torch.as_tensor(preds), torch.as_tensor(target)
        preds = preds.detach()
        if not preds.is_floating_point():
            raise ValueError(f"preds must be a floating tensor of probabilities or logits, "
                             f"got dtype {preds.dtype}")
        if self.task == "binary":
            preds, target = preds.reshape(-1), target.reshape(-1)
        else:
            if preds.ndim < 2 or preds.shape[1] != self.num_classes:
                raise ValueError(f"preds must have shape (N, {self.num_classes}, ...) for "
                                 f"num_classes={self.num_classes}, got {tuple(preds.shape)}")
            preds = preds.movedim(1, -1).reshape(-1, self.num_classes)
            target = target.reshape(-1)
        if target.shape[0] != preds.shape[0]:
            raise ValueError(f"target has {target.shape[0]} entries but preds has "
                             f"{preds.shape[0]} predictions")
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            preds, target = preds[keep], target[keep]
        if self.from_logits:
            preds = preds.sigmoid() if self.task == "binary" else preds.softmax(1)
        return preds, target.to(preds.device)

    def _torchmetrics_pairs(self, preds, target):
        """torchmetrics 1.9's confidences, accuracies and ``[a, b)`` edges with the 1.0 slot."""
        outside = bool(((preds < 0) | (preds > 1)).any())
        if self.task == "binary":
            conf = preds.sigmoid() if outside else preds
            bad = (target != 0) & (target != 1)
            if bool(bad.any()):
                raise ValueError("target must hold 0/1 labels for task='binary'")
            acc = target == 1
        else:
            probs = preds.softmax(1) if outside else preds
            conf, pred = probs.max(1)
            conf, acc = conf.float(), pred == target
        linspace = torch.linspace(0, 1, self.n_bins + 1, dtype=conf.dtype, device=conf.device)
        top = torch.tensor([1.0, 2.0], dtype=torch.float64, device=conf.device)
        return conf, acc, torch.cat([linspace[:-1].double(), top])

    def _add_scores(self, data) -> None:
        p_true = _true_class_prob(data)
        eps = float(np.finfo(str(data.y_prob.dtype).replace("torch.", "")).eps)
        self.brier += _brier_per_sample(data, p_true).sum().to(self.brier.device)
        self.nll += -(p_true.clamp(min=eps).log().sum()).to(self.nll.device)

    # ------------------------------------------------------------------ results
    @property
    def table(self) -> BinTable:
        """The accumulated bin table (synchronise first: ``compute()`` does)."""
        if int(self.count.sum()) == 0:
            raise ValueError(f"{type(self).__name__} holds no samples: call update() first")
        n = self.count.shape[0]
        edges = torch.arange(n + 1, dtype=torch.float64, device=self.count.device) / self.n_bins
        return BinTable(edges, self.count, self.sum_score, self.sum_target, "explicit",
                        "left" if self.convention == "torchmetrics" else "right")

    def _n(self):
        return self.count.sum().double()


class CalibrationError(_BinTableMetric):
    """Binned calibration error (ECE ``norm="l1"``, RMSCE ``"l2"``, MCE ``"max"``).

    Parameters
    ----------
    task : {"binary", "multiclass"}, default="multiclass"
    num_classes : int, optional
        Number of classes (multiclass).
    n_bins : int, default=15
        Equal-width bins.
    norm : {"l1", "l2", "max"}, default="l1"
    ignore_index : int, optional
        Targets with this value are left out (e.g. -100 padding).
    convention : {"calkit", "torchmetrics"}, default="calkit"
        The bin rule (see the module docstring): calkit's exact ``(a, b]`` bins,
        or torchmetrics 1.9's ``[a, b)`` bins with the extra 1.0 bin.
    from_logits : bool, default=False
        calkit convention: apply softmax (sigmoid for binary) to ``preds``.
    **kwargs
        torchmetrics ``Metric`` options (``sync_on_compute``, ``process_group``...).

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("torchmetrics")
    >>> import calkit
    >>> from calkit.integrations.torchmetrics import CalibrationError
    >>> g = torch.Generator().manual_seed(0)
    >>> probs = torch.softmax(torch.randn(1000, 4, generator=g) * 2, 1)
    >>> labels = torch.randint(0, 4, (1000,), generator=g)
    >>> metric = CalibrationError(num_classes=4, n_bins=10)
    >>> for part in range(0, 1000, 250):
    ...     metric.update(probs[part:part + 250], labels[part:part + 250])
    >>> value = metric.compute()
    >>> expected = calkit.ece(labels.numpy(), probs.numpy(), n_bins=10)
    >>> value.dtype, abs(float(value) - expected) < 1e-12
    (torch.float64, True)
    """

    def compute(self):
        """The calibration error of all samples (float64 0-d tensor)."""
        return error_from_table(self.table, self.norm)


class DebiasedCalibrationError(_BinTableMetric):
    """Kumar et al. (2019) debiased L2 calibration error on the fixed equal-width bins.

    Parameters as :class:`CalibrationError` (``norm`` is ignored; ``convention``
    only ``"calkit"``).  Equals :func:`calkit.metrics.debiased_error_from_table`
    of the table (:func:`calkit.debiased_ece` with ``strategy="uniform"``).

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("torchmetrics")
    >>> import calkit
    >>> from calkit.integrations.torchmetrics import DebiasedCalibrationError
    >>> g = torch.Generator().manual_seed(0)
    >>> probs = torch.softmax(torch.randn(2000, 3, generator=g) * 3, 1)
    >>> labels = torch.randint(0, 3, (2000,), generator=g)
    >>> metric = DebiasedCalibrationError(num_classes=3)
    >>> metric.update(probs, labels)
    >>> expected = calkit.debiased_ece(labels.numpy(), probs.numpy(), strategy="uniform")
    >>> abs(float(metric.compute()) - expected) < 1e-12
    True
    """

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("convention", "calkit") != "calkit":
            raise ValueError("DebiasedCalibrationError has only convention='calkit'")
        super().__init__(*args, **kwargs)

    def compute(self):
        """The debiased calibration error (float64 0-d tensor)."""
        return debiased_error_from_table(self.table)


class _ScoreMetric(_BinTableMetric):
    _needs_scores = True

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("convention", "calkit") != "calkit":
            raise ValueError(f"{type(self).__name__} has only convention='calkit'")
        super().__init__(*args, **kwargs)


class BrierScore(_ScoreMetric):
    """Mean Brier score ``sum_k (p_k - 1[y = k])^2`` (binary: ``(p - y)^2``), float64 sums.

    Parameters as :class:`CalibrationError` (the bin settings only shape the
    state it shares with the ECE metrics in a ``MetricCollection``).

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("torchmetrics")
    >>> import calkit
    >>> from calkit.integrations.torchmetrics import BrierScore
    >>> probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> metric = BrierScore(num_classes=2)
    >>> metric.update(probs, torch.tensor([0, 1, 1]))
    >>> round(float(metric.compute()), 6) == round(calkit.brier_score([0, 1, 1], probs.numpy()), 6)
    True
    """

    def compute(self):
        """The mean Brier score (float64 0-d tensor)."""
        return self.brier / self._n()


class NegativeLogLikelihood(_ScoreMetric):
    """Mean negative log-likelihood of the true class (clipped at the dtype's epsilon).

    Parameters as :class:`CalibrationError`.

    Examples
    --------
    >>> import math
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("torchmetrics")
    >>> from calkit.integrations.torchmetrics import NegativeLogLikelihood
    >>> metric = NegativeLogLikelihood(task="binary")
    >>> metric.update(torch.tensor([0.8, 0.4]), torch.tensor([1, 0]))
    >>> math.isclose(float(metric.compute()), -(math.log(0.8) + math.log(0.6)) / 2, rel_tol=1e-6)
    True
    """

    def compute(self):
        """The mean NLL (float64 0-d tensor)."""
        return self.nll / self._n()
