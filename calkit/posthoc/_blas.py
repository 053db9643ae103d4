"""One BLAS thread for the small matrix products of the iterative calibrator fits.

The fits of matrix scaling and Dirichlet calibration are hundreds of
``(N, K) x (K, K)`` products with ``K`` up to a few hundred: too small for BLAS
threads to pay off, and on a loaded machine OpenBLAS threads that wait for
each other made a Dirichlet fit on 5,000 x 100 outputs 2.4 to 11 times slower
in wall time than one thread (measured on the shared 2-core machine, issue 18).
:func:`single_blas_thread` limits BLAS to one thread for the duration of a fit
(``threadpoolctl``, which scikit-learn requires; a no-op without it).
"""

from __future__ import annotations

import contextlib


def single_blas_thread():
    """Context manager limiting BLAS libraries to one thread.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.posthoc._blas import single_blas_thread
    >>> with single_blas_thread():
    ...     float((np.ones((3, 3)) @ np.ones(3)).sum())
    9.0
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
