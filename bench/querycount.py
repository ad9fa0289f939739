"""Counting the SQL statements a process runs, without touching app code.

``bench/hooks/sitecustomize.py`` calls :func:`install` at start-up in every
process the bench starts. Each process (and each prefork child, which gets a
new pid) keeps its running total in ``<directory>/<pid>``, rewritten in place
at every statement, so the bench can read totals while the process runs.

With BENCH_QUERY_LOG set to a directory, each process also appends the first
line of every statement (up to 120 characters) to ``<that directory>/<service>-<pid>.sql``,
so the statements of a run can be counted by kind afterwards:
``cat DIR/worker-*.sql | cut -c1-60 | sort | uniq -c | sort -rn``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "fd": None, "count": 0, "log": None}


def install(directory: str) -> None:
    """Count every statement of every Django connection this process opens."""
    from django.db.backends.signals import connection_created

    def counter(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        _bump(directory, sql)
        return execute(sql, params, many, context)

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        # The wrapper list outlives reconnections of the same (per-thread) connection.
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    connection_created.connect(on_connect, weak=False)


def _bump(directory: str, sql: str) -> None:
    with _lock:
        pid = os.getpid()
        if _state["pid"] != pid:  # first statement, or first in a forked child
            path = os.path.join(directory, str(pid))
            log = os.environ.get("BENCH_QUERY_LOG")
            _state.update(
                pid=pid,
                count=0,
                fd=os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                log=os.open(
                    os.path.join(log, f"{os.path.basename(directory)}-{pid}.sql"),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o644,
                )
                if log
                else None,
            )
        _state["count"] += 1
        os.pwrite(_state["fd"], b"%20d" % _state["count"], 0)
        if _state["log"] is not None:
            line = str(sql).split("\n", 1)[0][:120]
            os.write(_state["log"], f"{line}\n".encode())


def total(directory: Path) -> int:
    """Statements counted so far by every process that wrote into `directory`."""
    return sum(int(path.read_bytes() or b"0") for path in directory.iterdir())
