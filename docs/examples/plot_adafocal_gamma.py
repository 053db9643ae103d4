"""
AdaFocal: how the focal gamma of each bin moves during training
===============================================================

AdaFocal (Ghosh et al. 2022) gives each equal-mass confidence bin its own focal parameter
``gamma_b`` and updates it from the *validation* calibration gap ``E_b`` (mean confidence
minus accuracy of the bin): over-confident bins (``E_b > 0``) get a larger gamma, which
lowers their confidence; under-confident ones a smaller gamma, down to an inverse-focal loss
that raises it.  This example trains the small CNN of ``benchmarks/adafocal_mnist.py`` for
three epochs on 3,000 MNIST digits with :class:`calkit.training.AdaFocalLoss`, updating the
gammas every 6 steps from 1,000 validation digits, and draws the loss's own ``history``
with :class:`calkit.plotting.GammaDynamicsDisplay` (the paper's Fig. 5).

**What to read.** The upper panel is ``E_b`` of every bin over training (dark: low bins,
yellow: high bins), the lower one the bin's gamma.  Early in training this network is
*under*-confident (``E_b < 0``), the high bins most: their gammas fall, and the top bin's
drops below the switching threshold to an inverse-focal loss (a negative gamma) that pushes
its confidence up.  As the gaps approach zero the gammas level off; bins whose gap swings
around zero move their gamma up and down with it.  The run is short (a CPU budget), so it
shows the mechanism, not converged values; ``python benchmarks/adafocal_mnist.py --quick``
trains longer and prints the same history.

Needs torch and the MNIST images (``../shared/data/mnist``); without either it draws nothing.
"""

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

import calkit
from calkit.plotting import GammaDynamicsDisplay
from calkit.training import AdaFocalLoss

DATA = Path(os.environ.get("CALKIT_SHARED_DATA", "../shared/data"))
path = DATA / "mnist" / "mnist_mnisthub_70k.npz"


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def images(x, y, n):
    x = torch.as_tensor(x[:n], dtype=torch.float32).div_(255).sub_(0.1307).div_(0.3081)
    return x[:, None], torch.as_tensor(y[:n], dtype=torch.int64)


if not path.exists():
    print(f"{path} is absent: this example needs the MNIST images and draws nothing")
else:
    with np.load(path, allow_pickle=False) as f:
        (xtr, ytr), (xva, yva) = (images(f["x_train"], f["y_train"], 3000),
                                  images(f["x_valid"], f["y_valid"], 1000))
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = small_cnn()
    loss_fn = AdaFocalLoss(n_bins=10, lam=1.0, gamma_init=1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch, epochs = 128, 3
    steps = -(-len(xtr) // batch)
    generator = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        order = torch.randperm(len(xtr), generator=generator)
        for step, i in enumerate(range(0, len(xtr), batch), start=1):
            model.train()
            loss = loss_fn(model(xtr[order[i:i + batch]]), ytr[order[i:i + batch]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 6 == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    loss_fn.update(model(xva), yva, epoch=epoch + step / steps)
    model.eval()
    with torch.no_grad():
        val_logits = model(xva).double().numpy()
    print(f"{len(loss_fn.history)} gamma updates; validation accuracy "
          f"{calkit.accuracy(yva.numpy(), calkit.softmax(val_logits)):.4f}, equal-mass ECE "
          f"{calkit.ece(yva.numpy(), calkit.softmax(val_logits), strategy='quantile'):.4f}")
    last = loss_fn.history[-1]
    print("final gammas:", np.round(np.asarray(last["gamma_b"], dtype=float), 2).tolist())
    GammaDynamicsDisplay.from_history(loss_fn.history)
