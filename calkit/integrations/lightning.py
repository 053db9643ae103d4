"""PyTorch Lightning callbacks: AdaFocal gamma updates and calibration logging.

Both callbacks read the validation outputs the ``LightningModule`` already
produces, so there is no second validation pass.  The contract is what
``validation_step`` returns, which Lightning hands to every callback's
``on_validation_batch_end``::

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        return {"logits": logits, "target": y}      # or: return logits, y

``logits`` is ``(B, C)`` (class scores before the softmax) and ``target`` the
``(B,)`` integer labels.  Only the first validation dataloader is read, and the
sanity-check batches Lightning runs before training are skipped.

* :class:`AdaFocalCallback` keeps the epoch's validation logits of its rank
  and, at validation epoch end, calls ``loss.update`` of an
  :class:`~calkit.training.AdaFocalLoss` (or :class:`~calkit.training.CalFocalLoss`).
  Under DDP the loss gathers the top-label (confidence, correct) pairs of all
  ranks (two numbers per sample; equal-mass bins need the ranks of all
  confidences, so no fixed-size summary gives them), and every rank computes the
  same bins and gammas.  The loss state travels in the checkpoint, so a resumed
  run continues with identical gammas; gamma and ``E_b`` per bin are logged.
* :class:`CalibrationCallback` feeds a fixed-size
  :class:`~calkit.stream.CalibrationAccumulator` per batch, all-reduces it at
  epoch end (:func:`calkit.distributed.all_reduce_accumulator`, ``O(n_bins)``
  bytes) and logs ECE, debiased ECE, MCE, Brier, NLL and accuracy, the
  equal-mass ECE (from 5-byte (confidence, correct) pairs, ``equal_mass=True``),
  and a reliability diagram (TensorBoard image, or a PNG beside a CSV log).

Samples that Lightning's ``DistributedSampler`` repeats to pad the last shard
count twice on every engine; make the validation set divisible by the world size
for numbers equal to a single-process run.
"""

from __future__ import annotations

import copy
import math
import os

from calkit.stream import CalibrationAccumulator

try:
    import torch
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - only without lightning
    torch = None
    Callback = object

__all__ = ["AdaFocalCallback", "CalibrationCallback", "validation_outputs"]


def _require_lightning():
    if torch is None:  # pragma: no cover - only without lightning
        raise ImportError("calkit.integrations.lightning needs PyTorch Lightning: "
                          "pip install 'calkit[lightning]'")


def validation_outputs(outputs) -> tuple:
    """``(logits, target)`` from what ``validation_step`` returned (the callbacks' contract).

    Accepts a mapping with ``"logits"`` and ``"target"`` keys, or a
    ``(logits, target)`` tuple or list; both are detached.

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")
    >>> _ = pytest.importorskip("lightning")
    >>> from calkit.integrations.lightning import validation_outputs
    >>> out = {"logits": torch.zeros(2, 3), "target": torch.tensor([0, 2])}
    >>> logits, target = validation_outputs(out)
    >>> tuple(logits.shape), target.tolist()
    ((2, 3), [0, 2])
    """
    if isinstance(outputs, dict) and "logits" in outputs and "target" in outputs:
        logits, target = outputs["logits"], outputs["target"]
    elif isinstance(outputs, (tuple, list)) and len(outputs) == 2:
        logits, target = outputs
    else:
        raise TypeError("validation_step must return {'logits': (B, C) tensor, 'target': (B,) "
                        "tensor} or a (logits, target) tuple for calkit's callbacks, got "
                        f"{type(outputs).__name__}")
    if not (isinstance(logits, torch.Tensor) and isinstance(target, torch.Tensor)):
        raise TypeError("validation_step's logits and target must be torch tensors")
    return logits.detach(), target.detach()


class _ValidationOutputs(Callback):
    """Base: collects the first dataloader's validation outputs (not sanity checks)."""

    def _skip(self, trainer, dataloader_idx: int) -> bool:
        return trainer.sanity_checking or dataloader_idx != 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx: int = 0) -> None:
        if self._skip(trainer, dataloader_idx):
            return
        self._collect(*validation_outputs(outputs))

    def _collect(self, logits, target) -> None:
        raise NotImplementedError  # pragma: no cover - abstract


class AdaFocalCallback(_ValidationOutputs):
    """Update an AdaFocal loss's gammas from the validation outputs Lightning already produces.

    Parameters
    ----------
    loss : AdaFocalLoss or CalFocalLoss
        The loss the ``LightningModule`` trains with (typically an attribute of
        the module, so it moves with it; otherwise it is moved to the module's
        device at setup).
    every_n_epochs : int, optional
        Update after the validation of every n-th epoch (default 1).
    every_n_steps : int, optional
        Instead, update at the first validation end at least ``every_n_steps``
        optimizer steps after the previous update (use with the Trainer's
        ``val_check_interval``).
    log : bool, default=True
        Log ``{prefix}gamma_{b}`` and ``{prefix}E_{b}`` (non-empty bins) per bin.
    prefix : str, default="adafocal/"

    Notes
    -----
    Only validation inside ``trainer.fit`` updates the loss
    (``trainer.validate()`` does not).  The callback's state (the loss buffers
    and history, and the step of the last update) is saved in
    ``checkpoint["callbacks"]`` and restored on resume, so a run resumed from a
    checkpoint applies the same updates as an uninterrupted one.

    Examples
    --------
    >>> import pytest
    >>> _ = pytest.importorskip("lightning")
    >>> from calkit.training import AdaFocalLoss
    >>> from calkit.integrations.lightning import AdaFocalCallback
    >>> loss = AdaFocalLoss(n_bins=10)
    >>> callback = AdaFocalCallback(loss, every_n_epochs=1)
    >>> callback.state_key
    "AdaFocalCallback{'every_n_epochs': 1, 'every_n_steps': None}"
    """

    def __init__(self, loss, *, every_n_epochs: int | None = None,
                 every_n_steps: int | None = None, log: bool = True,
                 prefix: str = "adafocal/") -> None:
        _require_lightning()
        from calkit.training._binned_gamma import BinnedGammaLoss

        if not isinstance(loss, BinnedGammaLoss):
            raise TypeError(f"loss must be an AdaFocalLoss or CalFocalLoss, got "
                            f"{type(loss).__name__}")
        if every_n_epochs is not None and every_n_steps is not None:
            raise ValueError("pass every_n_epochs or every_n_steps, not both")
        for name, value in (("every_n_epochs", every_n_epochs), ("every_n_steps", every_n_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if every_n_steps is None and every_n_epochs is None:
            every_n_epochs = 1
        self.loss = loss
        self.every_n_epochs, self.every_n_steps = every_n_epochs, every_n_steps
        self.log, self.prefix = bool(log), str(prefix)
        self._last_step = 0
        self._logits: list = []
        self._targets: list = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_epochs=self.every_n_epochs,
                                        every_n_steps=self.every_n_steps)

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.loss.to(pl_module.device)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._logits, self._targets = [], []

    def _collect(self, logits, target) -> None:
        self._logits.append(logits)
        self._targets.append(target)

    def _due(self, trainer) -> bool:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return False
        if self.every_n_steps is not None:
            return trainer.global_step - self._last_step >= self.every_n_steps
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        logits, targets = self._logits, self._targets
        self._logits, self._targets = [], []
        if not self._due(trainer):
            return
        if not logits:  # no validation batch ran (Lightning's sampler gives every rank some)
            return
        device = self.loss.gammas.device
        z, y = torch.cat(logits).to(device), torch.cat(targets).to(device)
        record = self.loss.update(z, y, epoch=trainer.current_epoch + 1,
                                  distributed=trainer.world_size > 1)
        self._last_step = trainer.global_step
        if self.log:
            for b, (gamma, gap) in enumerate(zip(record["gamma_b"], record["E_b"], strict=True)):
                pl_module.log(f"{self.prefix}gamma_{b}", float(gamma))
                if not math.isnan(gap):
                    pl_module.log(f"{self.prefix}E_{b}", float(gap))

    def state_dict(self) -> dict:
        loss_state = {k: v.detach().cpu().clone() if isinstance(v, torch.Tensor)
                      else copy.deepcopy(v) for k, v in self.loss.state_dict().items()}
        return {"loss": loss_state, "last_step": int(self._last_step)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loss.load_state_dict(state_dict["loss"])
        self._last_step = int(state_dict["last_step"])


class CalibrationCallback(_ValidationOutputs):
    """Log calibration metrics of the validation set, from a fixed-size all-reduced state.

    Parameters
    ----------
    n_bins : int, default=15
        Equal-width bins of ``ece``, ``mce``, ``debiased_ece_uniform`` and the diagram
        (and the equal-mass bins of ``ece_quantile``).
    from_logits : bool, default=True
        Whether the validation outputs are logits (softmax per batch) or
        probabilities.
    equal_mass : bool, default=True
        Also log ``ece_quantile`` (equal-mass bins).  It needs the ranks of all
        confidences, so the accumulator keeps 5 bytes per sample (float32
        confidence, bool correct) and gathers them; ``False`` keeps the state
        strictly fixed-size.
    diagram : bool, default=True
        Draw a reliability diagram (needs matplotlib) on rank 0: an image in a
        TensorBoard logger (``add_figure``), a PNG file ``reliability-{step}.png``
        in the ``log_dir`` of other loggers (CSV).
    prefix : str, default="val_calibration/"

    Attributes
    ----------
    last_metrics : dict
        The metrics of the latest validation epoch (floats).

    Examples
    --------
    >>> import pytest
    >>> _ = pytest.importorskip("lightning")
    >>> from calkit.integrations.lightning import CalibrationCallback
    >>> CalibrationCallback(n_bins=10, diagram=False).prefix
    'val_calibration/'
    """

    def __init__(self, n_bins: int = 15, *, from_logits: bool = True, equal_mass: bool = True,
                 diagram: bool = True, prefix: str = "val_calibration/") -> None:
        _require_lightning()
        self.accumulator = CalibrationAccumulator(n_bins, exact=bool(equal_mass))
        self.n_bins = self.accumulator.n_bins
        self.from_logits, self.equal_mass = bool(from_logits), bool(equal_mass)
        self.diagram, self.prefix = bool(diagram), str(prefix)
        self.last_metrics: dict = {}
        if self.diagram:
            try:
                import matplotlib  # noqa: F401
            except ImportError as exc:
                raise ImportError("diagram=True needs matplotlib: pip install matplotlib, "
                                  "or pass diagram=False") from exc

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.accumulator.reset()

    def _collect(self, logits, target) -> None:
        if self.from_logits:
            logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
            probs = torch.softmax(logits, dim=1)
        else:
            probs = logits
        self.accumulator.update(target, probs)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            self.accumulator.reset()
            return
        acc = self.accumulator
        if trainer.world_size > 1:
            from calkit.distributed import all_reduce_accumulator

            acc = all_reduce_accumulator(acc)
        if acc.n_samples == 0:
            return
        out = acc.compute()
        keys = ["ece", "mce", "debiased_ece_uniform", "brier", "nll", "accuracy"]
        keys += ["ece_quantile"] if self.equal_mass else []
        self.last_metrics = {k: float(out[k]) for k in keys}
        for k, v in self.last_metrics.items():
            pl_module.log(self.prefix + k, v)
        if self.diagram and trainer.is_global_zero:
            self._draw(trainer, acc)

    def _draw(self, trainer, acc: CalibrationAccumulator) -> None:
        import matplotlib.pyplot as plt

        from calkit.plotting import ReliabilityDisplay

        settings = dict(n_bins=self.n_bins, strategy="uniform", view="top_label", norm="l1",
                        closed="right")
        display = ReliabilityDisplay([acc.table], [f"step {trainer.global_step}"],
                                     [self.last_metrics["ece"]], settings).plot()
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_figure"):
                experiment.add_figure(self.prefix + "reliability", display.figure_,
                                      global_step=trainer.global_step, close=False)
            elif getattr(logger, "log_dir", None):
                os.makedirs(logger.log_dir, exist_ok=True)
                display.figure_.savefig(os.path.join(
                    logger.log_dir, f"reliability-{trainer.global_step}.png"), dpi=80)
        plt.close(display.figure_)
