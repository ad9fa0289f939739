"""The Celery application: configuration comes from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")

app = Celery("meeting_intel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _keep_database_connections(**_: object) -> None:
    """A worker keeps its database connection (one per process, or per thread on
    the threads pool) across tasks instead of opening one per task.

    Celery's Django fixup closes every connection around every task unless
    CELERY_DB_REUSE_MAX is set (it is: it then recycles them every so many
    tasks); here unpooled connections live WORKER_DB_CONN_MAX_AGE seconds
    (pooled ones are the pool's), and
    `_drop_broken_connections` closes one that broke (an outage) before the
    next task uses it. Web processes keep Django's per-request connections.
    """
    from django.conf import settings
    from django.db import connections

    for options in connections.settings.values():
        # A pooled connection (PostgreSQL, DATABASE_POOL_MAX_SIZE) goes back to
        # its pool when closed: nothing to keep, and Django refuses both at once.
        if "pool" not in (options.get("OPTIONS") or {}):
            options["CONN_MAX_AGE"] = settings.WORKER_DB_CONN_MAX_AGE
    # Workers only: a task run eagerly in another process (a test, the CLI)
    # must not close the connection its caller is using.
    signals.task_prerun.connect(_drop_broken_connections, weak=False)


def _drop_broken_connections(**_: object) -> None:
    from django.db import close_old_connections

    close_old_connections()


# What a prefork child inherited of its parent's database connections, kept
# referenced so that it is never closed (or collected) in the child: closing it
# there would end the parent's session on the server.
_inherited: list[object] = []


@signals.worker_process_init.connect
def _forget_inherited_connections(**_: object) -> None:
    """A prefork child starts with no database connection and no pool of its parent's.

    The parent (MainProcess) opens connections of its own, e.g. to record a
    task that hit its hard time limit in the result backend. Celery's Django
    fixup closes what a child inherits, but when the parent's connection broke
    in an outage, its close raises ("the connection is lost") before it drops
    the pool (`close_pool`): the child then keeps a psycopg pool whose worker
    threads did not survive the fork, waits on it until the hard time limit
    kills it, and the next child inherits the same (reproduced by
    tests/stack/test_durability.py's four outages; tests/ops/test_worker_fork.py).
    Here the child forgets both without any I/O, and opens its own.
    """
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _inherited.append(conn.connection)
            conn.connection = None
    pools = getattr(type(connections["default"]), "_connection_pools", None)
    if pools:
        _inherited.append(dict(pools))
        pools.clear()


@signals.worker_init.connect
def _preload_providers(**_: object) -> None:
    """Import the configured providers' SDKs before the pool starts (jobs.providers.preload)."""
    from jobs.providers import preload

    preload()
