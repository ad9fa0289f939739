"""The web tier's database connections come from a pool per process, sized from settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from django.db import close_old_connections, connection

from tests.support.platform import ROOT


def settings_in_a_fresh_process(**env: str) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'options': db.get('OPTIONS', {}), 'max_age': db['CONN_MAX_AGE'], "
        "'checks': db['CONN_HEALTH_CHECKS'], 'read_pool': settings.DATABASE_READ_POOL_MAX_SIZE}))"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "meeting_intel.settings", **env}
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_postgresql_gets_a_pool_sized_from_the_environment():
    db = settings_in_a_fresh_process(
        DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        DATABASE_POOL_MAX_SIZE="5",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_TIMEOUT="3",
    )
    assert db["options"]["pool"] == {"min_size": 1, "max_size": 5, "timeout": 3.0, "max_idle": 300}
    assert db["max_age"] == 0 and db["checks"] is True  # checked on checkout


def test_the_shipped_pool_size_and_turning_it_off():
    shipped = settings_in_a_fresh_process(DATABASE_URL="postgres://u@127.0.0.1:5432/x")
    assert shipped["options"]["pool"]["max_size"] == 8
    assert shipped["options"]["pool"]["min_size"] == 2
    off = settings_in_a_fresh_process(
        DATABASE_URL="postgres://u@127.0.0.1:5432/x", DATABASE_POOL_MAX_SIZE="0"
    )
    assert "pool" not in off["options"]


def test_the_async_read_pool_is_sized_from_the_environment_on_postgresql_only():
    shipped = settings_in_a_fresh_process(DATABASE_URL="postgres://u@127.0.0.1:5432/x")
    assert shipped["read_pool"] == 4
    sized = settings_in_a_fresh_process(
        DATABASE_URL="postgres://u@127.0.0.1:5432/x", DATABASE_READ_POOL_MAX_SIZE="0"
    )
    assert sized["read_pool"] == 0
    assert settings_in_a_fresh_process(DATABASE_URL="")["read_pool"] == 0  # the embedded SQLite


@pytest.mark.django_db(transaction=True)
def test_requests_in_fresh_threads_reuse_the_pools_connections():
    """Under ASGI every request runs in a new thread; each must not open a new connection."""
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's")
    backends: list[int] = []

    def one_request() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
        close_old_connections()  # what request_finished does
        connection.close()

    for _ in range(12):
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert len(backends) == 12
    # The pool's connections, taken in turn; without a pool, one per request.
    assert len(set(backends)) <= connection.settings_dict["OPTIONS"]["pool"]["max_size"] < 12
