"""Views: which (score, 0/1 target) pairs a calibration metric looks at.

* ``"top_label"``: the confidence of the predicted class against whether the
  prediction is right (Guo et al. 2017).  For 1-D binary input the predicted
  class is 1 where ``p > 0.5`` and the confidence is ``max(p, 1 - p)``.
* ``"positive"``: binary tasks only, ``P(y = 1)`` against ``y`` (the view of
  scikit-learn's ``calibration_curve``, torchmetrics and netcal).
* ``"classwise"``: every class ``k`` on its own, ``p[:, k]`` against ``y == k``
  (the marginal / class-wise calibration of Kull et al. 2019, Kumar et al. 2019).
"""

from __future__ import annotations

from collections.abc import Iterator

from calkit._array import Array
from calkit._validation import Classification, check_option

VIEWS = ("top_label", "positive", "classwise")


def check_view(view: str, data: Classification) -> str:
    check_option(view, "view", VIEWS)
    if view == "positive" and data.n_classes != 2:
        raise ValueError(f"view='positive' needs a binary task, y_prob has "
                         f"{data.n_classes} classes; use 'top_label' or 'classwise'")
    return view


def score_target_pairs(data: Classification, view: str) -> Iterator[tuple[Array, Array]]:
    """Yield the (scores, targets) pairs of ``view``: one pair, or one per class."""
    check_view(view, data)
    if view == "top_label":
        yield data.confidence, data.correct
    elif view == "positive":
        p = data.y_prob if data.binary else data.y_prob[:, 1]
        yield p, data.y_true == 1
    elif data.binary:
        yield 1 - data.y_prob, data.y_true == 0
        yield data.y_prob, data.y_true == 1
    else:
        for k in range(data.n_classes):
            yield data.y_prob[:, k], data.y_true == k
