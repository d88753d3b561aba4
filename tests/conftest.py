"""Shared test set-up."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Small fits on a busy 2-core machine run many times slower with a BLAS thread pool
    # fighting the test process for cores; one thread keeps the suite fast and deterministic.
    with threadpool_limits(1):
        yield
