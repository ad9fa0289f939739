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


@signals.worker_init.connect
def _preload_providers(**_: object) -> None:
    """Import the configured providers' SDKs before the pool starts (jobs.providers.preload)."""
    from jobs.providers import preload

    preload()
