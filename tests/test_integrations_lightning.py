"""calkit.integrations.lightning with a real lightning.Trainer on CPU (gloo DDP, checkpoints)."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

import calkit  # noqa: E402
from calkit.integrations.lightning import (  # noqa: E402
    AdaFocalCallback,
    CalibrationCallback,
    validation_outputs,
)
from calkit.integrations.torchmetrics import CalibrationError  # noqa: E402
from calkit.training import AdaFocalLoss  # noqa: E402

N_TRAIN, N_VAL, N_FEATURES, N_CLASSES = 64, 48, 4, 3


def data():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(N_FEATURES, N_CLASSES, generator=g) * 3
    x = torch.randn(N_TRAIN + N_VAL, N_FEATURES, generator=g)
    y = torch.multinomial(torch.softmax(x @ w, 1), 1, generator=g).squeeze(1)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def loader(x, y, batch_size=8):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                       batch_size=batch_size, shuffle=False)


class Model(L.LightningModule):
    """Linear classifier trained with an AdaFocal loss; registered as submodule or not."""

    def __init__(self, loss, register_loss=True, log_metric=False):
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Linear(N_FEATURES, N_CLASSES)
        if register_loss:
            self.loss_fn = loss
        else:  # the callback's checkpoint state is then the only copy of the loss state
            self.__dict__["loss_fn"] = loss
        self.val_ece = CalibrationError(num_classes=N_CLASSES) if log_metric else None

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        if self.val_ece is not None:
            self.val_ece.update(torch.softmax(logits, 1), y)
            self.log("tm_ece", self.val_ece, on_epoch=True)
        return {"logits": logits, "target": y}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def trainer(tmp_path, callbacks, max_epochs, **kw):
    opts = dict(accelerator="cpu", devices=1, max_epochs=max_epochs, num_sanity_val_steps=2,
                logger=False, enable_progress_bar=False, enable_model_summary=False,
                enable_checkpointing=False, default_root_dir=tmp_path)
    opts.update(kw)
    return L.Trainer(callbacks=callbacks, **opts)


def test_validation_outputs_contract():
    z, y = torch.zeros(2, 3), torch.tensor([0, 1])
    assert validation_outputs((z, y))[0] is not None
    with pytest.raises(TypeError, match="validation_step must return"):
        validation_outputs(z)
    with pytest.raises(TypeError, match="torch tensors"):
        validation_outputs({"logits": np.zeros((2, 3)), "target": y})


def test_callback_arguments_are_checked():
    with pytest.raises(TypeError, match="AdaFocalLoss"):
        AdaFocalCallback(torch.nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="not both"):
        AdaFocalCallback(AdaFocalLoss(), every_n_epochs=1, every_n_steps=2)
    with pytest.raises(ValueError, match="every_n_steps"):
        AdaFocalCallback(AdaFocalLoss(), every_n_steps=0)


def _reference_gammas(history, model, lam, n_bins, x_val, y_val):
    """The last update recomputed by hand: equal-mass bins of the whole validation set."""
    ref = AdaFocalLoss(n_bins=n_bins, lam=lam)
    if len(history) > 1:
        ref.gammas.copy_(torch.tensor(history[-2]["gamma_b"], dtype=torch.float64))
    with torch.no_grad():
        ref.update(model(x_val), y_val)
    return ref


@pytest.mark.parametrize("register_loss", [pytest.param(True, marks=pytest.mark.slow), False])
def test_adafocal_resume_gives_bit_identical_gammas(tmp_path, register_loss):
    (x, y), (xv, yv) = data()
    kw = dict(n_bins=5, lam=2.0)

    loss_a = AdaFocalLoss(**kw)
    model_a = Model(loss_a, register_loss)
    trainer(tmp_path / "a", [AdaFocalCallback(loss_a)], 3).fit(
        model_a, loader(x, y), loader(xv, yv))
    assert int(loss_a.num_updates) == 3  # one per epoch, not one for the sanity check
    ref = _reference_gammas(loss_a.history, model_a, 2.0, 5, xv, yv)
    torch.testing.assert_close(loss_a.gammas, ref.gammas, rtol=1e-6, atol=1e-9)

    loss_b = AdaFocalLoss(**kw)
    first = trainer(tmp_path / "b", [AdaFocalCallback(loss_b)], 1)
    first.fit(Model(loss_b, register_loss), loader(x, y), loader(xv, yv))
    ckpt = tmp_path / "b.ckpt"
    first.save_checkpoint(ckpt)
    assert not torch.equal(loss_b.gammas, loss_a.gammas)

    loss_c = AdaFocalLoss(**kw)  # fresh objects: everything comes from the checkpoint
    trainer(tmp_path / "c", [AdaFocalCallback(loss_c)], 3).fit(
        Model(loss_c, register_loss), loader(x, y), loader(xv, yv), ckpt_path=ckpt)
    assert torch.equal(loss_c.gammas, loss_a.gammas)
    assert torch.equal(loss_c.edges, loss_a.edges)
    assert int(loss_c.num_updates) == 3
    assert loss_c.history == loss_a.history


def test_every_n_steps_and_logged_gammas(tmp_path):
    (x, y), (xv, yv) = data()
    loss = AdaFocalLoss(n_bins=4)
    cb = AdaFocalCallback(loss, every_n_steps=8)
    t = trainer(tmp_path, [cb], 2, val_check_interval=4)  # validation every 4 of 8 steps
    t.fit(Model(loss), loader(x, y), loader(xv, yv))
    assert int(loss.num_updates) == 2  # validations at steps 4, 8, 12, 16: updates at 8, 16
    assert [r["epoch"] for r in loss.history] == [1, 2]
    logged = {k: float(v) for k, v in t.callback_metrics.items() if k.startswith("adafocal/")}
    assert [logged[f"adafocal/gamma_{b}"] for b in range(4)] == pytest.approx(
        loss.gammas.tolist(), rel=1e-6)
    gaps = loss.history[-1]["E_b"]
    for b, gap in enumerate(gaps):
        assert (f"adafocal/E_{b}" in logged) == (not np.isnan(gap))


def test_calibration_callback_metrics_and_csv_diagram(tmp_path):
    pytest.importorskip("matplotlib")
    (x, y), (xv, yv) = data()
    logger = L.loggers.CSVLogger(tmp_path, name="run", version=0)
    cb = CalibrationCallback(n_bins=5)
    model = Model(AdaFocalLoss(n_bins=5), log_metric=True)
    t = trainer(tmp_path, [cb], 2, logger=logger)
    t.fit(model, loader(x, y), loader(xv, yv))
    with torch.no_grad():
        p = torch.softmax(model(xv), 1).numpy()
    yn = yv.numpy()
    expected = {"ece": calkit.ece(yn, p, n_bins=5),
                "ece_quantile": calkit.ece(yn, p, n_bins=5, strategy="quantile"),
                "mce": calkit.ece(yn, p, n_bins=5, norm="max"),
                "debiased_ece_uniform": calkit.debiased_ece(yn, p, n_bins=5, strategy="uniform"),
                "brier": calkit.brier_score(yn, p), "nll": calkit.nll(yn, p),
                "accuracy": calkit.accuracy(yn, p)}
    assert cb.last_metrics == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(t.callback_metrics["tm_ece"]) == pytest.approx(calkit.ece(yn, p), rel=1e-5)
    rows = list(csv.DictReader(open(Path(logger.log_dir) / "metrics.csv")))
    logged = [float(r["val_calibration/ece"]) for r in rows if r.get("val_calibration/ece")]
    assert len(logged) == 2 and logged[-1] == pytest.approx(expected["ece"], rel=1e-6)
    pngs = sorted(Path(logger.log_dir).glob("reliability-*.png"))
    assert [p.name for p in pngs] == ["reliability-16.png", "reliability-8.png"]


@pytest.mark.slow
def test_calibration_callback_tensorboard_image(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    (x, y), (xv, yv) = data()
    logger = L.loggers.TensorBoardLogger(tmp_path, name="tb", version=0)
    t = trainer(tmp_path, [CalibrationCallback(n_bins=5, equal_mass=False)], 1, logger=logger)
    t.fit(Model(AdaFocalLoss(n_bins=5)), loader(x, y), loader(xv, yv))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert "val_calibration/reliability" in events.Tags()["images"]
    assert "val_calibration/ece" in events.Tags()["scalars"]


class RankRecorder(L.Callback):
    """Each rank writes its final loss state (DDP children do not return their objects)."""

    def __init__(self, loss, out):
        self.loss, self.out = loss, out

    def on_train_end(self, trainer, pl_module):
        torch.save({"gammas": self.loss.gammas.clone(), "history": self.loss.history,
                    "weight": pl_module.net.weight.detach().clone(),
                    "bias": pl_module.net.bias.detach().clone()},
                   f"{self.out}-{trainer.global_rank}.pt")


def test_ddp_two_cpu_processes_use_the_global_validation_set(tmp_path):
    """DDP (gloo, 2 forked processes): same gammas on both ranks, from all 48 samples."""
    (x, y), (xv, yv) = data()
    loss = AdaFocalLoss(n_bins=5, lam=2.0)
    cal = CalibrationCallback(n_bins=5, diagram=False)
    t = trainer(tmp_path, [AdaFocalCallback(loss), cal, RankRecorder(loss, tmp_path / "rank")],
                2, devices=2, strategy="ddp_fork")
    # A forked child deadlocks in OpenMP if this process has used torch's thread pool (as
    # earlier tests of a session do; this large softmax makes sure it has): children must run
    # single-threaded, which they inherit from here.
    torch.softmax(torch.randn(2048, 2048), 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t.fit(Model(loss, log_metric=True), loader(x, y), loader(xv, yv))
    finally:
        torch.set_num_threads(threads)
    ranks = [torch.load(tmp_path / f"rank-{r}.pt", weights_only=True) for r in range(2)]
    assert torch.equal(ranks[0]["gammas"], ranks[1]["gammas"])
    assert ranks[0]["history"] == ranks[1]["history"]
    assert sum(ranks[0]["history"][-1]["count"]) == N_VAL  # both shards, not one
    model = Model(AdaFocalLoss(n_bins=5))
    model.net.weight.data.copy_(ranks[0]["weight"])
    model.net.bias.data.copy_(ranks[0]["bias"])
    ref = _reference_gammas(ranks[0]["history"], model, 2.0, 5, xv, yv)
    torch.testing.assert_close(ranks[0]["gammas"], ref.gammas, rtol=1e-6, atol=1e-9)
    with torch.no_grad():
        p = torch.softmax(model(xv), 1).numpy()
    ece = calkit.ece(yv.numpy(), p, n_bins=5)
    assert float(t.callback_metrics["val_calibration/ece"]) == pytest.approx(ece, rel=1e-5)
    assert float(t.callback_metrics["tm_ece"]) == pytest.approx(calkit.ece(yv.numpy(), p),
                                                                rel=1e-5)


DDP_SCRIPT = """
import sys, torch, lightning.pytorch as L
sys.path.insert(0, {tests!r})
from test_integrations_lightning import Model, data, loader, RankRecorder
from calkit.integrations.lightning import AdaFocalCallback
from calkit.training import AdaFocalLoss
(x, y), (xv, yv) = data()
loss = AdaFocalLoss(n_bins=5, lam=2.0)
t = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
              enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
              callbacks=[AdaFocalCallback(loss), RankRecorder(loss, {out!r})])
t.fit(Model(loss), loader(x, y), loader(xv, yv))
"""


@pytest.mark.slow
def test_popen_ddp_strategy_in_a_subprocess(tmp_path):
    """strategy="ddp" re-executes the script per rank, so it runs as its own program."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(
        tests=str(Path(__file__).parent), out=str(tmp_path / "rank"))))
    subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path, timeout=600)
    ranks = [torch.load(tmp_path / f"rank-{r}.pt", weights_only=True) for r in range(2)]
    assert torch.equal(ranks[0]["gammas"], ranks[1]["gammas"])
    assert sum(ranks[0]["history"][-1]["count"]) == N_VAL
