"""Hugging Face ``transformers``: calibration metrics, AdaFocal in ``Trainer``, LLM confidences.

* :func:`calibration_metrics` makes a ``compute_metrics`` for ``Trainer``: ECE
  (equal-width and equal-mass), debiased ECE, MCE, Brier, NLL and accuracy of
  the evaluation logits, with ``-100`` labels left out (token classification),
  optionally writing a reliability diagram per evaluation.  It also works with
  ``batch_eval_metrics=True`` (one fixed-size update per batch).
* :func:`adafocal_loss_func` turns an :class:`~calkit.training.AdaFocalLoss` into
  a ``Trainer(compute_loss_func=...)``, and :class:`AdaFocalCallback` updates its
  gammas after every evaluation during training, from the logits the evaluation
  already computed (its :meth:`~AdaFocalCallback.compute_metrics` wraps yours),
  and saves the loss state in each checkpoint folder.
* :func:`option_logits` and :func:`multiple_choice_confidence` turn a causal LM's
  logits into the probabilities of the option letters (A/B/C/D...), normalised
  over the options, as ``(confidence, correct)`` columns for
  :func:`calkit.grouped_calibration`.

``Trainer`` gathers evaluation outputs over processes before ``compute_metrics``
(every rank sees all of them, without the padding duplicates), so every rank
updates the gammas from the same global validation set.
"""

from __future__ import annotations

import os

import numpy as np

from calkit import _array as xp
from calkit.logits import softmax
from calkit.stream import CalibrationAccumulator

try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - only without transformers
    TrainerCallback = object

__all__ = [
    "AdaFocalCallback",
    "adafocal_loss_func",
    "calibration_metrics",
    "flatten_labelled",
    "multiple_choice_confidence",
    "option_logits",
]

STATE_FILE = "calkit_adafocal.pt"


def _predictions(eval_pred):
    """(logits, labels) as numpy from an ``EvalPrediction`` (first output of a tuple)."""
    preds = eval_pred.predictions
    if isinstance(preds, tuple):  # several model outputs: the logits come first
        preds = preds[0]
    labels = eval_pred.label_ids
    if isinstance(labels, tuple):  # several label names
        labels = labels[0]
    if preds is None or labels is None:
        raise ValueError("compute_metrics needs predictions and label_ids (evaluate with "
                         "labels in the dataset)")
    return np.asarray(xp.to_numpy(preds)), np.asarray(xp.to_numpy(labels))


def flatten_labelled(logits, labels, ignore_index: int | None = -100):
    """``(M, C)`` logits and ``(M,)`` labels of the labelled positions (token classification).

    ``logits`` of shape ``(N, C)`` or ``(N, T, C)`` (class axis last, as models
    return them) and labels ``(N,)`` or ``(N, T)``; positions whose label is
    ``ignore_index`` are dropped.  Works on numpy arrays and torch tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.integrations.transformers import flatten_labelled
    >>> z = np.zeros((2, 3, 4)); y = np.array([[1, -100, 2], [0, 3, -100]])
    >>> z2, y2 = flatten_labelled(z, y)
    >>> z2.shape, y2.tolist()
    ((4, 4), [1, 2, 0, 3])
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not match labels of shape "
                         f"{tuple(labels.shape)} (expected labels of shape logits.shape[:-1])")
    logits = logits.reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    if ignore_index is not None:
        keep = labels != ignore_index
        logits, labels = logits[keep], labels[keep]
    return logits, labels


class _CalibrationMetrics:
    """The ``compute_metrics`` callable of :func:`calibration_metrics`."""

    def __init__(self, n_bins, ignore_index, from_logits, equal_mass, diagram_dir):
        self.accumulator = CalibrationAccumulator(n_bins, exact=bool(equal_mass))
        self.ignore_index, self.from_logits = ignore_index, bool(from_logits)
        self.equal_mass = bool(equal_mass)
        self.diagram_dir = None if diagram_dir is None else os.fspath(diagram_dir)
        self.n_evaluations = 0

    def __call__(self, eval_pred, compute_result: bool | None = None) -> dict:
        logits, labels = flatten_labelled(*_predictions(eval_pred), self.ignore_index)
        if len(labels):
            probs = softmax(logits.astype(np.float32, copy=False)) if self.from_logits else logits
            self.accumulator.update(labels, probs)
        if compute_result is False:  # batch_eval_metrics: more batches follow
            return {}
        try:
            return self._result()
        finally:
            self.accumulator.reset()

    def _result(self) -> dict:
        acc = self.accumulator
        if acc.n_samples == 0:
            raise ValueError("no labelled evaluation samples (every label is ignore_index?)")
        out = acc.compute()
        keys = ["ece", "mce", "debiased_ece_uniform", "brier", "nll", "accuracy"]
        keys += ["ece_quantile"] if self.equal_mass else []
        metrics = {k: float(out[k]) for k in keys}
        self.n_evaluations += 1
        if self.diagram_dir is not None:
            self._draw(acc, metrics["ece"])
        return metrics

    def _draw(self, acc, ece: float) -> None:
        import matplotlib.pyplot as plt

        from calkit.plotting import ReliabilityDisplay

        settings = dict(n_bins=acc.n_bins, strategy="uniform", view="top_label", norm="l1",
                        closed="right")
        display = ReliabilityDisplay([acc.table], [f"evaluation {self.n_evaluations}"], [ece],
                                     settings).plot()
        os.makedirs(self.diagram_dir, exist_ok=True)
        display.figure_.savefig(os.path.join(self.diagram_dir,
                                             f"reliability-{self.n_evaluations}.png"), dpi=80)
        plt.close(display.figure_)


def calibration_metrics(n_bins: int = 15, *, ignore_index: int | None = -100,
                        from_logits: bool = True, equal_mass: bool = True,
                        diagram_dir=None):
    """A ``compute_metrics`` for ``transformers.Trainer`` returning calibration metrics.

    Parameters
    ----------
    n_bins : int, default=15
        Bins of the binned errors and the diagram.
    ignore_index : int or None, default=-100
        Label of positions to leave out (padding, sub-word tokens).
    from_logits : bool, default=True
        The model outputs logits (softmax in float32); False for probabilities.
    equal_mass : bool, default=True
        Also return ``ece_quantile`` (equal-mass bins).
    diagram_dir : path, optional
        Write ``reliability-{k}.png`` there at the k-th evaluation (matplotlib).

    Returns
    -------
    callable
        ``compute_metrics(eval_pred, compute_result=None) -> dict`` with keys
        ``ece``, ``mce``, ``debiased_ece_uniform``, ``brier``, ``nll``, ``accuracy`` (and
        ``ece_quantile``); ``Trainer`` prefixes them with ``eval_``.  With
        ``TrainingArguments(batch_eval_metrics=True)`` it updates a fixed-size
        state per batch and returns the metrics on the last one.

    Examples
    --------
    >>> import numpy as np
    >>> import calkit
    >>> from types import SimpleNamespace
    >>> from calkit.integrations.transformers import calibration_metrics
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(200, 3)).astype(np.float32)
    >>> labels = rng.integers(0, 3, size=200)
    >>> metrics = calibration_metrics(n_bins=10)
    >>> out = metrics(SimpleNamespace(predictions=logits, label_ids=labels))
    >>> sorted(out)
    ['accuracy', 'brier', 'debiased_ece_uniform', 'ece', 'ece_quantile', 'mce', 'nll']
    >>> abs(out["ece"] - calkit.ece(labels, calkit.softmax(logits), n_bins=10)) < 1e-12
    True
    """
    return _CalibrationMetrics(n_bins, ignore_index, from_logits, equal_mass, diagram_dir)


def _output_logits(outputs):
    if isinstance(outputs, dict) or hasattr(outputs, "keys"):
        return outputs["logits"]
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def adafocal_loss_func(loss, *, ignore_index: int | None = -100):
    """``Trainer(compute_loss_func=...)`` from a calkit focal-family loss (e.g. AdaFocal).

    The returned function takes ``(outputs, labels, num_items_in_batch=None)``
    as ``Trainer`` calls it, flattens ``(B, T, C)`` logits (token
    classification), drops ``ignore_index`` labels and returns the summed
    per-sample loss divided by ``num_items_in_batch`` (the labelled items of
    the whole gradient-accumulation window, as ``Trainer`` expects of a custom
    loss), or by the batch's labelled items when that is not given.  Causal-LM
    labels are not shifted: use it with classification heads.

    Parameters
    ----------
    loss : torch.nn.Module
        ``AdaFocalLoss``, ``CalFocalLoss``, ``FocalLoss``... with any reduction.
    ignore_index : int or None, default=-100

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> from calkit.training import AdaFocalLoss
    >>> from calkit.integrations.transformers import adafocal_loss_func
    >>> fn = adafocal_loss_func(AdaFocalLoss(n_bins=5, reduction="sum"))
    >>> logits, labels = torch.zeros(2, 3, 4), torch.tensor([[1, 2, -100], [0, -100, -100]])
    >>> value = fn({"logits": logits}, labels, num_items_in_batch=torch.tensor(3))
    >>> round(float(value), 4)  # gamma 1 focal loss of p = 1/4 at each of 3 tokens
    1.0397
    """
    def compute_loss(outputs, labels, num_items_in_batch=None):
        logits, target = flatten_labelled(_output_logits(outputs), labels, ignore_index)
        values = loss(logits, target)
        reduction = getattr(loss, "reduction", "mean")
        if reduction == "mean":
            total = values * target.shape[0]
        elif reduction == "none":
            total = values.sum()
        else:
            total = values
        denominator = target.shape[0] if num_items_in_batch is None else num_items_in_batch
        if xp.is_torch(denominator):
            denominator = denominator.to(total.device)
        return total / denominator

    return compute_loss


class AdaFocalCallback(TrainerCallback):
    """Update an AdaFocal loss's gammas after each evaluation of ``Trainer.train``.

    ``Trainer`` gives callbacks only the scalar metrics, so the logits come
    through :meth:`compute_metrics`, which records the evaluation's labelled
    logits (and calls your own ``compute_metrics``, if any).  The state of the
    loss (edges, gammas, update count, history) is written to
    ``calkit_adafocal.pt`` in every ``checkpoint-{step}`` folder and read back
    when ``train(resume_from_checkpoint=...)`` resumes from a checkpoint in
    ``output_dir`` (or call :meth:`load` yourself).

    Parameters
    ----------
    loss : AdaFocalLoss or CalFocalLoss
    ignore_index : int or None, default=-100

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("transformers")
    >>> from types import SimpleNamespace
    >>> from calkit.training import AdaFocalLoss
    >>> from calkit.integrations.transformers import AdaFocalCallback
    >>> loss = AdaFocalLoss(n_bins=2)
    >>> callback = AdaFocalCallback(loss)
    >>> compute_metrics = callback.compute_metrics()
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.2]]).numpy()
    >>> compute_metrics(SimpleNamespace(predictions=logits, label_ids=[0, 1, 1, 0]))
    {}
    >>> callback.on_train_begin(None, SimpleNamespace(global_step=0), None)
    >>> callback.on_evaluate(None, SimpleNamespace(epoch=1.0), None)
    >>> int(loss.num_updates)
    1
    """

    def __init__(self, loss, *, ignore_index: int | None = -100) -> None:
        from calkit.training._binned_gamma import BinnedGammaLoss

        if not isinstance(loss, BinnedGammaLoss):
            raise TypeError(f"loss must be an AdaFocalLoss or CalFocalLoss, got "
                            f"{type(loss).__name__}")
        self.loss, self.ignore_index = loss, ignore_index
        self._logits: list = []
        self._labels: list = []
        self._training = False

    def compute_metrics(self, inner=None):
        """A ``compute_metrics`` that records the logits for the update, then calls ``inner``."""
        def compute_metrics(eval_pred, compute_result: bool | None = None):
            logits, labels = flatten_labelled(*_predictions(eval_pred), self.ignore_index)
            self._logits.append(logits)
            self._labels.append(labels)
            if inner is None:
                return {}
            if compute_result is None:
                return inner(eval_pred)
            return inner(eval_pred, compute_result=compute_result)

        return compute_metrics

    def on_train_begin(self, args, state, control, **kwargs):
        self._training = True
        if state.global_step > 0 and args is not None:  # resumed from a checkpoint
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isfile(os.path.join(folder, STATE_FILE)):
                self.load(folder)

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False

    def on_evaluate(self, args, state, control, **kwargs):
        import torch

        logits, labels = self._logits, self._labels
        self._logits, self._labels = [], []
        if not self._training or not logits:
            return
        device = self.loss.gammas.device
        z = torch.as_tensor(np.concatenate(logits)).to(device)
        y = torch.as_tensor(np.concatenate(labels)).long().to(device)
        # compute_metrics saw the outputs of every rank already: no second gather
        self.loss.update(z, y, epoch=state.epoch, distributed=False)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.save(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))

    def save(self, folder) -> None:
        """Write the loss state to ``folder/calkit_adafocal.pt``."""
        import torch

        state = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                 for k, v in self.loss.state_dict().items()}
        torch.save(state, os.path.join(os.fspath(folder), STATE_FILE))

    def load(self, folder) -> None:
        """Restore the loss state from ``folder/calkit_adafocal.pt``."""
        import torch

        state = torch.load(os.path.join(os.fspath(folder), STATE_FILE), weights_only=True)
        self.loss.load_state_dict(state)


def option_logits(logits, option_ids, attention_mask=None):
    """The logits of the option tokens at each sequence's last position, ``(B, K)``.

    Parameters
    ----------
    logits : array of shape (B, T, V) or (B, V)
        A causal LM's logits (numpy or torch); ``(B, V)`` is already the next-token
        position.
    option_ids : sequence of int
        The token id of each option letter (``tokenizer.convert_tokens_to_ids``
        of ``["A", "B", "C", "D"]``), one token per option.
    attention_mask : array of shape (B, T), optional
        With right padding, the last position of sequence ``b`` is
        ``attention_mask[b].sum() - 1``; default: position ``T - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.integrations.transformers import option_logits
    >>> z = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    >>> option_logits(z, [1, 3], attention_mask=np.array([[1, 1, 0], [1, 1, 1]])).tolist()
    [[6.0, 8.0], [26.0, 28.0]]
    """
    ids = np.asarray(option_ids)
    if ids.ndim != 1 or len(ids) < 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError("option_ids must be a sequence of at least two integer token ids")
    if logits.ndim == 2:
        rows = logits
    elif logits.ndim == 3:
        b, t = logits.shape[:2]
        if attention_mask is None:
            last = np.full(b, t - 1)
        else:
            last = xp.to_numpy(attention_mask).sum(1).astype(np.int64) - 1
            if last.shape != (b,) or (last < 0).any():
                raise ValueError("attention_mask must be (B, T) with at least one 1 per row")
        index = np.arange(b)
        if xp.is_torch(logits):
            import torch

            rows = logits[torch.as_tensor(index), torch.as_tensor(last, device=logits.device)]
        else:
            rows = logits[index, last]
    else:
        raise ValueError(f"logits must be (B, T, V) or (B, V), got shape {tuple(logits.shape)}")
    if ids.min() < 0 or ids.max() >= rows.shape[-1]:
        raise ValueError(f"option_ids must lie in [0, {rows.shape[-1]}) (the vocabulary)")
    if xp.is_torch(rows):
        import torch

        return rows[:, torch.as_tensor(ids, device=rows.device)]
    return rows[:, ids]


def multiple_choice_confidence(logits, option_ids, answer, attention_mask=None) -> dict:
    """Confidence and correctness of a causal LM's multiple-choice answers.

    The option letters' logits (:func:`option_logits`) are normalised over the
    options only (softmax in float64); the chosen option is the most probable
    one and its probability is the confidence.

    Parameters
    ----------
    logits, option_ids, attention_mask
        As in :func:`option_logits`.
    answer : array of shape (B,)
        Index of the correct option (0 for the first of ``option_ids``).

    Returns
    -------
    dict
        ``confidence`` (B,) float64, ``correct`` (B,) bool, ``choice`` (B,) int
        and ``probabilities`` (B, K): numpy columns for
        :func:`calkit.grouped_calibration` (``confidence="confidence",
        correct="correct"``) after adding group columns.

    Examples
    --------
    >>> import numpy as np
    >>> import calkit
    >>> from calkit.integrations.transformers import multiple_choice_confidence
    >>> z = np.zeros((2, 6)); z[0, 2] = 2.0; z[1, 4] = 1.0     # vocab of 6, options ids 2..5
    >>> out = multiple_choice_confidence(z, [2, 3, 4, 5], answer=[0, 1])
    >>> out["choice"].tolist(), out["correct"].tolist()
    ([0, 2], [True, False])
    >>> round(float(out["confidence"][0]), 4)   # e^2 / (e^2 + 3)
    0.7112
    >>> rows = calkit.grouped_calibration(out, confidence="confidence", correct="correct",
    ...                                   n_bins=1)
    >>> rows[0]["accuracy"]
    0.5
    """
    z = xp.to_numpy(option_logits(logits, option_ids, attention_mask)).astype(np.float64)
    answer = np.asarray(xp.to_numpy(answer) if xp.is_torch(answer) else answer)
    if answer.shape != (z.shape[0],) or not np.issubdtype(answer.dtype, np.integer):
        raise ValueError(f"answer must be {z.shape[0]} integer option indices, got shape "
                         f"{answer.shape} of {answer.dtype}")
    if (answer < 0).any() or (answer >= z.shape[1]).any():
        raise ValueError(f"answer must lie in [0, {z.shape[1]}) (one of the options)")
    probs = softmax(z)
    choice = probs.argmax(1)
    return {"confidence": probs[np.arange(len(choice)), choice], "correct": choice == answer,
            "choice": choice, "probabilities": probs}
