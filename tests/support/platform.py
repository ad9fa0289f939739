"""Real platform processes for end-to-end tests, started from the Procfile.

Each process gets the test database, Redis, the fake providers' URLs and the
network guard (through ``offline/sitecustomize.py``), so nothing it does can
leave the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_DIR = Path(__file__).resolve().parent / "offline"
LOG_DIR = ROOT / "var" / "test-logs"


def procfile_entries() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """One command running in its own process group, its output in a log file.

    By default the Procfile entry `name`, logged under var/test-logs; the
    benchmark's services (bench/processes.py) pass their own command and log.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        *,
        command: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path or LOG_DIR / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open("wb")
        if command is None:
            command = procfile_entries()[name]
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a warm shutdown for Celery), then SIGKILL if it lingers."""
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker dies mid-task."""
        self.signal(signal.SIGKILL)
        self.popen.wait(10)
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def base_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "ASSEMBLYAI_", "OPENAI_"))
    }
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{venv_bin}:{env.get('PATH', '')}",
        PYTHONPATH=f"{OFFLINE_DIR}:{ROOT}",
        MEETING_INTEL_OFFLINE="1",
        MEETING_INTEL_ROOT=str(ROOT),
        DJANGO_SETTINGS_MODULE="meeting_intel.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        DEBUG="true",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "test-secret-key-not-for-production",
        WEBHOOK_ALLOW_PRIVATE_HOSTS="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_web(env: dict[str, str], port: int) -> Process:
    process = Process("web", {**env, "PORT": str(port)})
    wait_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


WORKER_ENTRIES = ("worker", "worker-analysis")


class Workers:
    """The Procfile's workers as one: `worker` (prefork) and `worker-analysis` (threads).

    `pid` is the prefork worker's main process; kill/stop/alive cover both.
    """

    def __init__(
        self, env: dict[str, str], instance: str = "", entries: tuple[str, ...] = WORKER_ENTRIES
    ) -> None:
        env = {**env, "WORKER_INSTANCE": instance} if instance else env
        self.env = env
        self.processes: list[Process] = []
        try:
            for name in entries:
                self.processes.append(Process(name, env))
            for process in self.processes:
                wait_for_output(process, "ready.")
        except BaseException:
            for process in self.processes:
                process.kill()
            raise

    @property
    def pid(self) -> int:
        return self.processes[0].pid

    def alive(self) -> bool:
        return all(process.alive() for process in self.processes)

    def signal(self, sig: int) -> None:
        for process in self.processes:
            process.signal(sig)

    def restart_exited(self) -> None:
        """Start again each process that exited, leaving the others running, as a
        supervisor restarting services one by one would."""
        for i, process in enumerate(self.processes):
            if not process.alive():
                self.processes[i] = Process(process.name, self.env)
                wait_for_output(self.processes[i], "ready.")

    def stop(self, timeout: float = 20.0) -> None:
        for process in self.processes:
            process.signal(signal.SIGTERM)
        for process in self.processes:
            process.stop(timeout)

    def kill(self) -> None:
        for process in self.processes:
            process.kill()

    def output(self) -> str:
        return "\n".join(process.output() for process in self.processes)


def start_worker(
    env: dict[str, str], instance: str = "", entries: tuple[str, ...] = WORKER_ENTRIES
) -> Workers:
    """The Procfile's workers (all by default), once each says it is ready."""
    return Workers(env, instance, entries)


def wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer:\n{process.output()[-3000:]}")


def wait_for_output(process: Process, marker: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in process.output():
            return
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.output()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} never printed {marker!r}:\n{process.output()[-3000:]}")


def database_url(settings_dict: dict[str, object]) -> str:
    """A DATABASE_URL for the test database pytest-django created."""
    if "sqlite" in str(settings_dict["ENGINE"]):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(str(settings_dict.get("USER") or ""))
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
