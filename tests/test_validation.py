"""The fused row checks of ``check_classification`` (blocked, threaded for large inputs)."""

import numpy as np
import pytest

from calkit import _validation
from calkit._validation import _largest_sum_deviation, _row_summary, check_classification


def _probabilities(n, k, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * 3
    p = np.exp(z - z.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("shape", [(7, 3), (10_001, 10), (2_203, 1_000)])
@pytest.mark.parametrize("threaded", [False, True])
def test_row_summary_equals_plain_reductions(shape, threaded, monkeypatch):
    # (2_203, 1_000) float32 is 8.4 MiB: threaded by default, with a ragged last block
    monkeypatch.setattr(_validation, "_THREADED_BYTES", 0 if threaded else 1 << 62)
    p = _probabilities(*shape)
    predicted, confidence, row_sum = _row_summary(p)  # valid input: no error
    np.testing.assert_array_equal(predicted, p.argmax(1))
    np.testing.assert_array_equal(confidence, p.max(1))
    np.testing.assert_allclose(row_sum, p.sum(1, dtype=np.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_bit_pattern_argmax_handles_ties_zeros_subnormals_and_negative_zero(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    p = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0 - tiny, tiny, 0.0],
                  [0.25, 0.25, 0.5], [-0.0, 0.0, 1.0], [0.75, -0.0, 0.25]], dtype=dtype)
    # -0.0 is a valid probability (no error): the float reductions take over
    predicted, confidence, _ = _row_summary(p)
    np.testing.assert_array_equal(predicted, [0, 2, 0, 2, 2, 0])
    np.testing.assert_array_equal(confidence, p.max(1))
    with pytest.raises(ValueError, match="NaN"):
        _row_summary(np.array([[0.5, 0.5], [np.nan, 1.0]], dtype=dtype))


def test_extended_precision_is_checked_as_float64():
    p = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.longdouble)
    assert check_classification([1, 0], p).confidence.dtype == np.float64


@pytest.mark.parametrize("row", [0, 1_100, 2_202])
@pytest.mark.parametrize("defect, message", [
    ("nan", "NaN"), ("inf", "NaN or infinite"), ("negative", "negative"), ("sum", "sum to 1")])
def test_a_single_bad_entry_is_found_in_any_block(row, defect, message):
    p = _probabilities(2_203, 1_000)
    assert p.nbytes >= _validation._THREADED_BYTES  # the threaded path is the one tested
    p[row, 17] = {"nan": np.nan, "inf": np.inf, "negative": -1e-3, "sum": p[row, 17] + 0.01}[
        defect]
    with pytest.raises(ValueError, match=message):
        check_classification(np.zeros(len(p), dtype=int), p)


def test_sum_check_rechecks_flagged_rows_in_float64():
    p = _probabilities(50, 4, dtype=np.float64)
    fast = np.ones(50)
    fast[3] = 1.5  # a fast sum that rounding got wrong: the float64 recheck clears the row
    assert _largest_sum_deviation(p, fast, 1e-4) < 1e-12
    p[7] *= 1.01  # a row that really is off is still reported, with its float64 deviation
    fast[7] = 1.01
    assert _largest_sum_deviation(p, fast, 1e-4) == pytest.approx(0.01)


def test_rows_off_by_less_than_the_tolerance_pass():
    p = _probabilities(100, 1_000)
    p[5] *= np.float32(1 + 5e-5)
    check_classification(np.zeros(100, dtype=int), p)
    with pytest.raises(ValueError, match="largest deviation"):
        check_classification(np.zeros(100, dtype=int), p, sum_tol=1e-5)


@pytest.mark.parametrize("layout", ["fortran", "every_other_row", "float16"])
def test_row_summary_of_non_contiguous_and_half_inputs(layout):
    p = _probabilities(3_001, 40)
    if layout == "fortran":
        p = np.asfortranarray(p)
    elif layout == "every_other_row":
        p = p[::2]
    else:
        p = p.astype(np.float16)
    predicted, confidence, row_sum = _row_summary(p)  # valid input: no error
    np.testing.assert_array_equal(predicted, p.argmax(1))
    np.testing.assert_array_equal(confidence, p.max(1))
    np.testing.assert_allclose(row_sum, p.astype(np.float64).sum(1), rtol=0, atol=2e-3)
