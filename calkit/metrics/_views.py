"""Views: which (score, 0/1 target) pairs a calibration metric looks at.

* ``"top_label"``: the confidence of the predicted class against whether the
  prediction is right (Guo et al. 2017).  For 1-D binary input the predicted
  class is 1 where ``p > 0.5`` and the confidence is ``max(p, 1 - p)``.
* ``"positive"``: binary tasks only, ``P(y = 1)`` against ``y`` (the view of
  scikit-learn's ``calibration_curve``, torchmetrics and netcal).
* ``"classwise"``: every class ``k`` on its own, ``p[:, k]`` against ``y == k``
  (the marginal / class-wise calibration of Kull et al. 2019, Kumar et al. 2019).
* ``"confidence"``: (correct, confidence) pairs, e.g. the top-1 confidences of
  an image classifier or the stated confidence of LLM answers: ``y_prob`` is
  1-D, the confidence of each predicted answer, and ``y_true`` is 0/1, whether
  that answer was right.  The confidence is checked as it is against
  correctness (the same numbers as ``"positive"`` on these pairs; never
  ``max(p, 1 - p)``).

The default ``view=None`` is ``"top_label"`` for an ``(N, K)`` matrix.  A 1-D
``y_prob`` with ``view=None`` is an error: ``ece(correct, confidence)`` and
``ece(y, p_positive)`` look the same, and reading one as the other gives a
plausible but wrong number (ImageNet top-1 confidences read as binary P(y=1):
ECE 0.016 instead of 0.070).  The caller says which it is.
"""

from __future__ import annotations

from collections.abc import Iterator

from calkit._array import Array
from calkit._validation import Classification, check_option

VIEWS = ("top_label", "positive", "classwise", "confidence")

#: the ValueError of a 1-D ``y_prob`` without a view
AMBIGUOUS_1D = (
    "y_prob is 1-D, which can mean two different things; say which with view=: "
    "view='confidence' if y_prob is the confidence of each predicted answer and y_true is "
    "0/1 whether it was right, e.g. ece(correct, confidence, view='confidence'); "
    "view='positive' if y_prob is a binary classifier's P(y = 1) and y_true the 0/1 class "
    "(view='top_label' checks that classifier's max(p, 1 - p) against whether p > 0.5 "
    "was right)")


def resolve_view(view: str | None, data: Classification, allowed=VIEWS) -> str:
    """The view to use: ``view`` checked against the data, or the default for ``None``."""
    if view is None:
        if data.binary:
            raise ValueError(AMBIGUOUS_1D)
        return "top_label"
    check_option(view, "view", allowed)
    if view == "positive" and data.n_classes != 2:
        raise ValueError(f"view='positive' needs a binary task, y_prob has "
                         f"{data.n_classes} classes; use 'top_label' or 'classwise'")
    if view == "confidence" and not data.binary:
        raise ValueError(f"view='confidence' takes a 1-D y_prob (the confidence of each "
                         f"predicted answer) with 0/1 y_true (whether it was right); y_prob "
                         f"has {data.n_classes} columns: use view='top_label'")
    return view


def score_target_pairs(data: Classification, view: str | None) -> Iterator[tuple[Array, Array]]:
    """Yield the (scores, targets) pairs of ``view``: one pair, or one per class."""
    view = resolve_view(view, data)
    if view == "top_label":
        yield data.confidence, data.correct
    elif view in ("positive", "confidence"):
        p = data.y_prob if data.binary else data.y_prob[:, 1]
        yield p, data.y_true == 1
    elif data.binary:
        yield 1 - data.y_prob, data.y_true == 0
        yield data.y_prob, data.y_true == 1
    else:
        for k in range(data.n_classes):
            yield data.y_prob[:, k], data.y_true == k
