"""Doctest collection without PyTorch: the torch-only modules are not collected.

``testpaths`` includes ``calkit``, so ``pytest --doctest-modules`` imports every
module of the package.  The modules below import torch at the top (they define
``torch.nn.Module`` subclasses) and raise a clear ``ImportError`` without it;
on a machine without torch their doctests are left out instead of failing to
collect (their tests in ``tests/`` skip with ``pytest.importorskip("torch")``).
"""

import importlib.util

#: modules (or packages) of calkit that cannot be imported without torch
TORCH_ONLY = ["calkit/_gather.py", "calkit/distributed.py", "calkit/training"]

collect_ignore = [] if importlib.util.find_spec("torch") is not None else TORCH_ONLY
