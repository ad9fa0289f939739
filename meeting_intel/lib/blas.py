"""One BLAS thread per process for the numpy work of search.

Workers run one process per core (WORKER_CONCURRENCY) and web serves
requests in parallel, so OpenBLAS's own threads only compete with them; on a
busy machine they spin against each other. Measured on 2 cores under load:
a query's embedding p50 24 ms with one thread against 278 ms with two, and a
75,000 × 384 matrix-vector product 0.43 s with two.
"""

from __future__ import annotations

from functools import cache


@cache
def one_thread() -> None:
    """Limit BLAS to one thread in this process (idempotent; call before numpy work)."""
    import numpy  # noqa: F401  (threadpoolctl finds the BLAS numpy loaded)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
