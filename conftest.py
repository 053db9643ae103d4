"""Collection rules for the whole repository (tests/ and the doctests of calkit/).

Modules that need PyTorch at import time (the training losses, the distributed helpers)
cannot even be collected for their doctests without it: they are left out when torch
is absent, so the README's test command passes on a machine without PyTorch.
"""

from __future__ import annotations

import importlib.util

#: calkit modules that import torch when imported (relative to this folder)
TORCH_ONLY = ["calkit/training", "calkit/_gather.py", "calkit/distributed.py"]

collect_ignore = [] if importlib.util.find_spec("torch") is not None else list(TORCH_ONLY)
