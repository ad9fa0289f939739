"""The processes a benchmark runs, and what /proc says about them.

Each service runs in its own process group (``start_new_session``), so the
group is the whole tree: uvicorn, or a Celery parent with its prefork
children. CPU time and memory are summed over the group.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.platform import (
    ROOT,
    WORKER_ENTRIES,
    Process,
    procfile_entries,
    wait_for_output,
    wait_http,
)

LOG_DIR = ROOT / "var" / "bench" / "logs"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class Service(Process):
    """One long-running command in its own process group, logging to var/bench/logs/<name>.log.

    The test harness's Process, plus what a benchmark measures: pausing the
    group, and its CPU time and memory.
    """

    def __init__(self, name: str, command: str, env: dict[str, str]) -> None:
        super().__init__(name, env, command=command, log_path=LOG_DIR / f"{name}.log")

    def pause(self) -> None:
        """Freeze the whole group (SIGSTOP): queued work waits until resume()."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, timeout: float = 20.0) -> None:
        """Resume a paused group first, so SIGTERM reaches it as a warm shutdown."""
        self.signal(signal.SIGCONT)
        super().stop(timeout)

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process in the group, plus children it has reaped."""
        total = 0
        for fields in _group(self.pid).values():
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return total / _TICKS

    def rss_bytes(self) -> int:
        """Resident memory of every process in the group."""
        total = 0
        for pid in _group(self.pid):
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
            except (OSError, IndexError):
                continue
        return total


class ServiceGroup:
    """Several services seen as one (the platform's prefork and threads workers):
    CPU, memory, pausing and stopping cover every member."""

    def __init__(self, name: str, members: list[Service]) -> None:
        self.name, self.members = name, members

    @property
    def pid(self) -> int:
        return self.members[0].pid

    def alive(self) -> bool:
        return all(member.alive() for member in self.members)

    def output(self) -> str:
        return "\n".join(member.output() for member in self.members)

    def signal(self, sig: int) -> None:
        for member in self.members:
            member.signal(sig)

    def pause(self) -> None:
        for member in self.members:
            member.pause()

    def resume(self) -> None:
        for member in self.members:
            member.resume()

    def stop(self, timeout: float = 20.0) -> None:
        for member in self.members:
            member.stop(timeout)

    def kill(self) -> None:
        for member in self.members:
            member.kill()

    def cpu_seconds(self) -> float:
        return sum(member.cpu_seconds() for member in self.members)

    def rss_bytes(self) -> int:
        return sum(member.rss_bytes() for member in self.members)


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on: the command name may contain spaces."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _group(pgid: int) -> dict[int, list[str]]:
    """The stat fields of every live process whose process group is `pgid`."""
    group = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except OSError:  # exited while we looked
            continue
        if int(fields[2]) == pgid:
            group[int(entry.name)] = fields
    return group


def start_web(env: dict[str, str], port: int) -> Service:
    """The Procfile's `web` on `port`, once /healthz answers (a loaded machine may take a minute)."""
    service = Service("web", procfile_entries()["web"], {**env, "PORT": str(port)})
    wait_http(f"http://127.0.0.1:{port}/healthz", service, timeout=120)
    return service


def start_worker(name: str, command: str, env: dict[str, str]) -> Service:
    """A Celery worker, once it says it is ready."""
    service = Service(name, command, env)
    wait_for_output(service, "ready.")
    return service


def start_platform_workers(env: dict[str, str]) -> ServiceGroup:
    """Every worker entry of the Procfile (prefork `worker`, threads `worker-analysis`)."""
    members = [Service(name, procfile_entries()[name], env) for name in WORKER_ENTRIES]
    for member in members:
        wait_for_output(member, "ready.")  # type: ignore[arg-type]
    return ServiceGroup("worker", members)
