"""`python -m tests.support.test_workers`: how many pytest-xdist workers `make test` runs.

Three, so that stack tests that mostly wait leave no core idle; two against a
PostgreSQL server with fewer than 200 connections: three whole stacks at once
(web, workers and beat, each with its pooled connections) peak at about 100,
PostgreSQL's default `max_connections` (measured on CI's server: 99 of 100).
"""

from __future__ import annotations

import os

WORKERS, FEWER, CONNECTIONS_FOR_THREE = 3, 2, 200


def workers(database_url: str) -> int:
    if not database_url.startswith(("postgres://", "postgresql://")):
        return WORKERS
    try:
        import psycopg

        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
    except Exception:  # unreachable: the suite will say so; run the safer count
        return FEWER
    return WORKERS if row and int(row[0]) >= CONNECTIONS_FOR_THREE else FEWER


if __name__ == "__main__":
    print(workers(os.environ.get("DATABASE_URL", "")))
