"""Bin-count rules: a number of bins from the number of samples, in exact integer arithmetic.

``n_bins`` may name a rule instead of a number where the samples are known
(:func:`calkit.binning.resolve_n_bins`).  Each rule is the smallest integer at
least as large as its real-valued formula, computed with integers only, so a
perfect square or cube never rounds up by one (``ceil(np.cbrt(27))`` is 4 on
numpy 2: ``np.cbrt(27) = 3.0000000000000004``).  The result is capped at ``n``
(a bin needs a sample) and is never below 1.

``"sqrt"``
    ``ceil(sqrt(n))`` (numpy's ``histogram_bin_edges(bins="sqrt")``).
``"cube_root"``
    ``ceil(n ** (1/3))`` (scikit-learn's ``calibration_curve(n_bins="cube_root")``,
    PR #33856; n = 2 gives 2).
``"rice"``
    ``ceil(2 n ** (1/3))`` (the Rice rule; ``m^3 >= 8 n``).
``"sturges"``
    ``ceil(log2(n)) + 1`` (Sturges 1926, numpy's ``"sturges"``).
"""

from __future__ import annotations

import math

#: rule name -> one-line definition, in documentation order
BIN_RULES = {
    "sqrt": "ceil(sqrt(n))",
    "cube_root": "ceil(n ** (1/3))",
    "rice": "ceil(2 n ** (1/3))",
    "sturges": "ceil(log2(n)) + 1",
}


def ceil_sqrt(n: int) -> int:
    """Smallest integer ``m >= 0`` with ``m * m >= n`` (``n >= 0``)."""
    return 0 if n <= 0 else math.isqrt(n - 1) + 1


def ceil_cbrt(n: int) -> int:
    """Smallest integer ``m >= 0`` with ``m ** 3 >= n`` (``n >= 0``), exact for any size."""
    if n <= 0:
        return 0
    m = int(round(n ** (1.0 / 3.0))) if n < 2 ** 1000 else 1 << -(-n.bit_length() // 3)
    while m ** 3 < n:  # the float guess is off by at most a few units; correct it exactly
        m += 1
    while m > 0 and (m - 1) ** 3 >= n:
        m -= 1
    return m


def rule_n_bins(rule: str, n: int) -> int:
    """The number of bins of ``rule`` for ``n >= 1`` samples, in ``[1, n]``."""
    if n < 1:
        raise ValueError(f"n_bins={rule!r} needs at least one sample to bin, got {n}")
    if rule == "sqrt":
        b = ceil_sqrt(n)
    elif rule == "cube_root":
        b = ceil_cbrt(n)
    elif rule == "rice":
        b = ceil_cbrt(8 * n)  # ceil(2 n^(1/3)) = smallest m with m^3 >= 8 n
    elif rule == "sturges":
        b = (n - 1).bit_length() + 1  # ceil(log2 n) + 1
    else:
        raise ValueError(f"n_bins rule must be one of {list(BIN_RULES)}, got {rule!r}")
    return max(1, min(b, n))
