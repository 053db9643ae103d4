"""Table columns read as text (CSV cells): numbers with missing values, true/false words.

Low in the layering (numpy only), so both :mod:`calkit.metrics.grouped` and
:mod:`calkit.io` convert columns the same way.  Each caller words its own
errors.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

#: cells read as a missing value (NaN), after stripping and lower-casing
MISSING_WORDS = frozenset({"", "na", "n/a", "nan", "none", "null", "<na>"})
#: cells read as true / false, after stripping and lower-casing
TRUE_WORDS = frozenset({"1", "1.0", "true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"0", "0.0", "false", "f", "no", "n"})


def words(col: np.ndarray) -> np.ndarray:
    """The cells of ``col`` as stripped, lower-case strings."""
    return np.char.lower(np.char.strip(col.astype(str)))


def float_column(col: np.ndarray, missing: Collection[str] = MISSING_WORDS) -> np.ndarray:
    """float64 values of a column: numbers as they are, text parsed, ``missing`` words NaN.

    Raises the ``ValueError`` of the conversion when a cell is not a number.
    """
    if col.dtype.kind in "fiub":
        return col.astype(np.float64)
    absent = np.isin(words(col), list(missing))
    out = np.full(col.shape, np.nan)
    out[~absent] = col[~absent].astype(np.float64)
    return out


def parse_float_column(col: np.ndarray, missing: Collection[str] = MISSING_WORDS
                       ) -> tuple[np.ndarray, int | None, bool]:
    """Parse a column of numbers without raising: ``(values, first_bad, any_number)``.

    ``values`` are float64 (NaN for ``missing`` words and for cells that are not
    numbers), ``first_bad`` the index of the first cell that is neither a number
    nor a missing word (None when there is none) and ``any_number`` whether at
    least one cell is a number.
    """
    if col.dtype.kind in "fiub":
        values = col.astype(np.float64)
        return values, None, bool(values.size)
    absent = np.isin(words(col), list(missing))
    out = np.full(col.shape, np.nan)
    try:
        out[~absent] = col[~absent].astype(np.float64)
    except (ValueError, TypeError):
        pass
    else:
        return out, None, bool((~absent).any())
    first_bad, any_number = None, False
    for i in np.flatnonzero(~absent):
        try:
            out[i] = float(col[i])
            any_number = True
        except (ValueError, TypeError):
            out[i] = np.nan
            if first_bad is None:
                first_bad = int(i)
    return out, first_bad, any_number


def true_false_words(col: np.ndarray, true: Collection[str] = TRUE_WORDS,
                     false: Collection[str] = FALSE_WORDS) -> tuple[np.ndarray, list[str]]:
    """Boolean values of a column of true/false words, and the first unknown words.

    Returns the mask of ``true`` cells and up to three sorted distinct cells
    that are neither ``true`` nor ``false`` words (empty when all are known).
    """
    w = words(col)
    is_true, is_false = np.isin(w, list(true)), np.isin(w, list(false))
    return is_true, sorted(set(w[~(is_true | is_false)].tolist()))[:3]
