"""A prefork child opens database connections of its own, whatever its parent holds.

The parent of Celery's prefork pool opens connections too (it records a task
that hit its hard time limit in the result backend). When an outage broke the
parent's connection, a child used to keep the parent's psycopg pool, whose
worker threads do not survive a fork, and wait on it until its hard time limit
killed it, child after child (meeting_intel/celery.py).
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest
from django.db import connection, connections

from meeting_intel import celery as worker_app
from tests.support.platform import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's"),
]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _child_queries(as_celery_does: bool = True) -> int:
    """Fork; the child starts as a prefork child does and runs a query. Its exit code."""
    child = os.fork()
    if child == 0:
        code = 3
        try:
            signal.alarm(15)  # a child waiting on a dead pool fails the test, not hangs it
            if as_celery_does:  # Celery's fixup: the inherited socket closed, no I/O
                for conn in connections.all(initialized_only=True):
                    if conn.connection is not None:
                        os.close(conn.connection.fileno())
            worker_app._forget_inherited_connections()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                code = 0 if cursor.fetchone() == (1,) else 2
            connections.close_all()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_of_a_parent_whose_connection_broke_opens_its_own():
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        pytest.skip("the shipped settings pool connections; these do not")
    parent = _backend_pid()
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [parent])  # an outage, for this session
    try:
        assert _child_queries() == 0
        assert _child_queries(as_celery_does=False) == 0
    finally:
        connection.close()  # this process's broken connection: the pool replaces it
    assert _backend_pid() != parent


def test_a_child_leaves_the_parents_session_alone():
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        pytest.skip("the shipped settings pool connections; these do not")
    parent = _backend_pid()
    assert _child_queries(as_celery_does=False) == 0
    assert _backend_pid() == parent  # the same session, still open
