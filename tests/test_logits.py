"""softmax / log_softmax: stability, dtype, agreement with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax

from calkit import log_softmax, softmax


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_scipy_and_keeps_dtype(dtype):
    z = np.random.default_rng(0).normal(size=(50, 7)).astype(dtype) * 10
    p = softmax(z)
    assert p.dtype == dtype
    np.testing.assert_allclose(p, scipy_softmax(z.astype(np.float64), axis=1),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-30)
    np.testing.assert_allclose(log_softmax(z), scipy_log_softmax(z.astype(np.float64), axis=1),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_extreme_logits_do_not_overflow():
    z = np.array([[1e4, 0.0, -1e4], [-3e38, 3e38, 0.0]], dtype=np.float32)
    p = softmax(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    assert np.isfinite(log_softmax(z)[0, 0]) and log_softmax(z)[0, 0] == 0.0


def test_bad_logits():
    with pytest.raises(ValueError, match="NaN"):
        softmax(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        softmax(np.zeros(3))
    with pytest.raises(ValueError, match="floating-point"):
        softmax(np.array([[1, 2]]))
