"""The validation accuracy change of a calibrator that may move predictions.

Calibrators that can change the predicted class (vector, matrix and Dirichlet
calibration, one-vs-rest maps) record, at the end of ``fit``, how the accuracy
on the fitting data moved: ``accuracy_change_ = accuracy(calibrated) -
accuracy(uncalibrated)``, both as the argmax (lowest index on ties) against the
labels.  The command line prints it.
"""

from __future__ import annotations

import numpy as np


def accuracy_change(logits: np.ndarray, calibrated: np.ndarray, labels: np.ndarray) -> float:
    """``mean(argmax calibrated == y) - mean(argmax logits == y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._accuracy import accuracy_change
    >>> z = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> accuracy_change(z, np.array([[0.4, 0.6], [0.3, 0.7]]), np.array([1, 1]))
    0.5
    """
    before = np.argmax(logits, axis=1) == labels
    after = np.argmax(calibrated, axis=1) == labels
    return float(np.mean(after) - np.mean(before))
