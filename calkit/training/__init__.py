"""Training-time calibration: focal-loss family and AdaFocal as PyTorch losses.

Needs PyTorch (``pip install 'calkit[torch]'``); ``import calkit`` does not import
this package (it loads on first use of ``calkit.training``).

* :mod:`calkit.training.focal`: :class:`FocalLoss`, :class:`InverseFocalLoss`,
  :class:`FLSD53`, :class:`DualFocalLoss` and their shared :func:`focal_term`.
* :mod:`calkit.training.adafocal`: :class:`AdaFocalLoss` and its ablation
  :class:`CalFocalLoss`, with per-bin gammas updated from validation bins.
"""

from calkit._array import import_torch

import_torch()  # a clear error without the torch extra

from calkit.training.adafocal import AdaFocalLoss, CalFocalLoss  # noqa: E402
from calkit.training.focal import (  # noqa: E402
    FLSD53,
    DualFocalLoss,
    FocalLoss,
    InverseFocalLoss,
    focal_term,
)

__all__ = [
    "FLSD53",
    "AdaFocalLoss",
    "CalFocalLoss",
    "DualFocalLoss",
    "FocalLoss",
    "InverseFocalLoss",
    "focal_term",
]
