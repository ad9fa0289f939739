"""HTTP load for scenario 6: wrk when installed, else a Python generator (and how fast it is).

wrk (Debian: `apt-get install -y wrk`) is a C load generator: on loopback it
costs the server little CPU and is never the bottleneck. Without it the bench
says so and falls back to keep-alive client threads in the bench process; that
fallback's own ceiling is reported (`generator_ceiling_rps`, measured against
a socket that answers instantly), since a Python client can cap the figures.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from bench.report import percentile

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class Load:
    """What one load run saw: requests per second, latency percentiles (ms), errors."""

    generator: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    """`connections` keep-alive connections GETting `url` for `seconds`."""
    if wrk_path():
        return _wrk(url, headers, connections, seconds)
    return _threads(url, headers, connections, seconds)


def _wrk(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    command = [
        wrk_path() or "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> Load:
    """The figures of wrk's `--latency` report."""

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not match:
            raise ValueError(f"wrk printed no {label}% latency:\n{out}")
        return float(match[1]) * _UNITS[match[2]]

    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise ValueError(f"wrk printed no request count:\n{out}")
    kinds: dict[str, int] = {}
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        for name, value in zip(
            ("connect", "read", "write", "timeout"), sockets.groups(), strict=True
        ):
            if int(value):
                kinds[name] = int(value)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        kinds["non-2xx"] = int(non_2xx[1])
    return Load(
        "wrk",
        int(done[1]),
        float(done[2]) * _UNITS[done[3]] / 1000,
        ms("50"),
        ms("99"),
        sum(kinds.values()),
        kinds,
    )


def _threads(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    host, port, path = _split(url)
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    with lock:
                        kinds["non-2xx"] = kinds.get("non-2xx", 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return Load(
        "python threads",
        len(latencies),
        elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        sum(kinds.values()),
        kinds,
    )


def generator_ceiling(connections: int, seconds: float) -> float:
    """Requests per second the fallback generator reaches against a server that costs nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(connections)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while not stop.is_set():
                try:
                    if not conn.recv(65536):
                        return
                    conn.sendall(reply)
                except OSError:
                    return

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        port = server.getsockname()[1]
        return _threads(f"http://127.0.0.1:{port}/", {}, connections, seconds).rps
    finally:
        stop.set()
        server.close()


def _split(url: str) -> tuple[str, int, str]:
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    if not match:
        raise ValueError(url)
    return match[1], int(match[2]), match[3]
