"""Small real example data shipped inside the package (no ``../shared`` needed).

``cifar10_resnet50_ce_test_2000.npz``: 2,000 test samples (seeded random subset,
original test indices in ``indices``) of a CIFAR-10 ResNet-50 trained with
cross-entropy, from the calibench collection (Misakaaaaaz/calibench): ``logits``
float32 (2000, 10) and ``labels`` int64.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

EXAMPLE_FILE = "cifar10_resnet50_ce_test_2000.npz"


def example_path() -> Path:
    """Path of the bundled example ``.npz`` file (keys ``logits``, ``labels``).

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.datasets import example_path
    >>> path = example_path()
    >>> path.name, path.is_file()
    ('cifar10_resnet50_ce_test_2000.npz', True)
    >>> with np.load(path) as data:
    ...     sorted(data.files), data["logits"].shape
    (['indices', 'labels', 'logits'], (2000, 10))
    """
    return Path(str(resources.files("calkit") / "data" / EXAMPLE_FILE))


def load_example() -> tuple[np.ndarray, np.ndarray]:
    """Logits (2000, 10) float32 and labels (2000,) of a real CIFAR-10 ResNet-50.

    Examples
    --------
    >>> from calkit.datasets import load_example
    >>> logits, labels = load_example()
    >>> logits.shape, logits.dtype.name, labels.shape
    ((2000, 10), 'float32', (2000,))
    """
    with np.load(example_path(), allow_pickle=False) as data:
        return data["logits"], data["labels"]
