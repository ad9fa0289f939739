"""A process-wide async PostgreSQL pool for reads that must not leave the event loop.

Django's ORM is sync-only: under ASGI each query costs a hop to Django's one
database thread, and the requests of a process queue for it. The hot read of
`GET /api/v1/jobs/{id}/` (jobs/api/job_read.py) runs its query here instead
(one for the reads of a loop turn), on psycopg's AsyncConnectionPool, opened
on the default database's own connection parameters (Django's adapters, so
values load as the ORM's do; its time zone; autocommit, so no transaction is left open). It holds at most
DATABASE_READ_POOL_MAX_SIZE connections per web process, beside Django's pool
(README "Sizing"); 0 turns it off and the read goes back to Django's thread.

A pool belongs to the event loop it was opened on. A web process runs one loop
for its lifetime; code running a throwaway loop per request (Django's test
client) must not use this pool (`available()` says no for it in
job_read), and tests that use it close it on their loop (`close()`).

Hand-written glue only: the pooling is psycopg_pool's; this opens it lazily
from Django's settings and retries a query once on a connection that turned
out broken (a PostgreSQL restart leaves every idle connection dead, and the
pool only learns so when one is used).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import cache, wraps
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.utils import load_backend
from psycopg import AsyncConnection, OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

logger = logging.getLogger(__name__)
T = TypeVar("T")

# (the loop, the task opening the pool on it): one pool per process in a server.
_current: tuple[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] | None = None


def available() -> bool:
    """Whether the default database is PostgreSQL and the read pool is not turned off."""
    return settings.DATABASE_READ_POOL_MAX_SIZE > 0 and _postgresql(
        settings.DATABASES["default"]["ENGINE"]
    )


@cache
def _postgresql(engine: str) -> bool:
    return load_backend(engine).DatabaseWrapper.vendor == "postgresql"


async def _open() -> AsyncConnectionPool:
    wrapper = connections["default"]
    params = wrapper.get_connection_params()
    params.pop(
        "cursor_factory", None
    )  # Django's sync cursor class; the async default binds server-side
    params["autocommit"] = True
    time_zone = wrapper.timezone_name

    async def configure(conn: AsyncConnection[Any]) -> None:
        if time_zone and conn.info.parameter_status("TimeZone") != time_zone:
            await conn.execute(wrapper.ops.set_time_zone_sql(), [time_zone])

    size = settings.DATABASE_READ_POOL_MAX_SIZE
    pool = AsyncConnectionPool(
        "",
        kwargs=params,
        min_size=1,
        max_size=size,
        timeout=settings.DATABASE_READ_POOL_TIMEOUT,
        max_idle=300,
        configure=configure,
        name="read",
        open=False,
    )
    await pool.open()
    return pool


async def _pool() -> AsyncConnectionPool:
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current[0] is not loop:
        _current = (loop, loop.create_task(_open()))
    return await asyncio.shield(_current[1])


async def fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of `sql` (Django's %s placeholders) with `params`, or None."""
    rows = await _fetch(sql, params, all_rows=False)
    return rows[0] if rows else None


async def fetchall(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every row of `sql` (Django's %s placeholders) with `params`."""
    return await _fetch(sql, params, all_rows=True)


async def _fetch(sql: str, params: Sequence[Any], all_rows: bool) -> list[tuple[Any, ...]]:
    pool = await _pool()
    for attempt in (1, 2):
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql, params)
                if all_rows:
                    return await cursor.fetchall()
                row = await cursor.fetchone()
                return [] if row is None else [row]
        except PoolTimeout:
            raise
        except OperationalError:
            # The pool drops the broken connection as it comes back; one retry
            # gets a fresh one (or the same error, if the server is down).
            if attempt == 2:
                raise
            logger.info("read pool: retrying on a fresh connection", exc_info=True)
    raise AssertionError("unreachable")


def own_connections(func: Callable[..., T]) -> Callable[..., T]:
    """`func`, for a thread outside Django's request cycle: it closes the thread's
    obsolete or broken connections before and after (handing pooled ones back),
    as the request_started and request_finished receivers do for a request."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> T:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return run


async def close() -> None:
    """Close this loop's pool (tests; a server keeps it until the process ends)."""
    global _current
    if _current is None:
        return
    loop, task = _current
    _current = None
    if loop is asyncio.get_running_loop():
        pool = await task
        await pool.close()
