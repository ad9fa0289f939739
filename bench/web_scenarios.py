"""Scenarios 5–7: the web process alone (upload, API reads, websocket fan-out).

The baseline design shares these code paths, so scenarios 5 and 7 have platform
figures only; scenario 6 compares the API with the framework's floor instead.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import load
from bench.audio import MultipartUpload
from bench.harness import Harness
from bench.processes import Service
from bench.report import Result, Row, percentile
from jobs.actions import cancel_job
from jobs.models import Job
from jobs.state import update_job
from jobs.tokens import make_viewer_token
from tests.support.platform import free_port, procfile_entries, wait_http

MB = 1_000_000
SHARED = "Both designs share this code, so there are platform figures only."


def upload(h: Harness) -> Result:
    """5. One large upload: peak memory growth of the web process and MB/s."""
    body = MultipartUpload(h.sizes.s5_bytes)
    h.worker.pause()  # the job is cancelled and its file removed before any worker sees it
    try:
        with RssSampler(h.web) as rss:
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=600)
            conn.putrequest("POST", "/api/v1/jobs/")
            conn.putheader("Authorization", f"Bearer {h.api_key}")
            conn.putheader("Content-Type", body.content_type)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            for chunk in body.chunks():
                conn.send(chunk)
            response = conn.getresponse()
            payload = response.read()
            seconds = time.perf_counter() - started
            conn.close()
        if response.status != 201:
            raise RuntimeError(f"upload failed: {response.status} {payload[:300]!r}")
        job = Job.objects.get(id=json.loads(payload)["id"])
        cancel_job(job)
        Path(job.audio.path).unlink()
    finally:
        h.worker.resume()
    return Result(
        5,
        f"Upload of {h.sizes.s5_bytes // MB} MB",
        [
            Row("peak RSS growth of the web process (MB)", rss.growth / MB),
            Row("upload rate (MB/s)", len(body) / seconds / MB, better="higher"),
        ],
        [
            "A generated WAV streamed by the client (nothing held in its memory) to POST /api/v1/jobs/ "
            "on loopback; the web process's resident memory sampled every 20 ms. The time includes "
            "storing the file.",
            SHARED,
        ],
        {"bytes": len(body), "seconds": seconds, "rss_before": rss.before, "rss_peak": rss.peak},
    )


class RssSampler:
    """Samples a service's resident memory in a thread while the `with` block runs."""

    def __init__(self, service: Service, interval: float = 0.02) -> None:
        self.service, self.interval = service, interval
        self.before = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.before = self.peak = self.service.rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.service.rss_bytes())


def api_load(h: Harness) -> Result:
    """6. 100 connections reading one job, against a bare Django view served the same way."""
    clients, seconds, rounds = h.sizes.s6_clients, h.sizes.s6_seconds, h.sizes.s6_rounds
    job = Job.objects.filter(client_id=h.client_id, status=Job.Status.COMPLETED).first()
    if job is None:
        job = Job.objects.create(client_id=h.client_id, title="api probe")
    api = (f"{h.web_url}/api/v1/jobs/{job.id}/", {"Authorization": f"Bearer {h.api_key}"})
    bare_port = free_port()
    command = procfile_entries()["web"].replace(
        "meeting_intel.asgi:application", "bench.bare:application"
    )
    bare_service = Service("bare", command, {**h.env, "PORT": str(bare_port)})
    try:
        wait_http(f"http://127.0.0.1:{bare_port}/healthz", bare_service)
        floor = (f"http://127.0.0.1:{bare_port}/job/{job.id}/", {})
        for url, headers in (floor, api):  # warm both: imports, pools, caches
            load.run(url, headers, clients, 3)
        platform_runs, bare_runs = [], []
        cpu = {"platform": 0.0, "bare": 0.0}
        for _ in range(rounds):  # alternating, so drifting load on the machine hits both
            for name, service, target, runs in (
                ("bare", bare_service, floor, bare_runs),
                ("platform", h.web, api, platform_runs),
            ):
                before = service.cpu_seconds()
                runs.append(load.run(*target, clients, seconds))
                cpu[name] += service.cpu_seconds() - before
        healthz = load.run(f"{h.web_url}/healthz", {}, clients, seconds)
    finally:
        bare_service.stop()
    ceiling = load.generator_ceiling(clients, 5) if not load.wrk_path() else None
    mine, floor_load = _merge(platform_runs), _merge(bare_runs)
    generator = mine.generator + (
        "" if ceiling is None else f" (its own ceiling: {ceiling:.0f} requests/s; install wrk)"
    )
    return Result(
        6,
        "API under load vs the bare Django floor",
        [
            Row("GET job requests per second", mine.rps, floor_load.rps, better="higher"),
            Row("GET job p50 (ms)", mine.p50_ms, floor_load.p50_ms),
            Row("GET job p99 (ms)", mine.p99_ms, floor_load.p99_ms),
            Row("errors", mine.errors, floor_load.errors),
            Row(
                "web CPU ms per GET (all workers)",
                cpu["platform"] * 1000 / max(1, mine.requests),
                cpu["bare"] * 1000 / max(1, floor_load.requests),
            ),
            Row("/healthz requests per second", healthz.rps, better="higher"),
        ],
        [
            f"{clients} keep-alive connections on loopback ({generator}), GET /api/v1/jobs/{{id}}/ "
            f"with an API key, {rounds} rounds of {seconds:.0f} s alternating with the baseline "
            "column: a bare Django ASGI app (bench/bare.py: no middleware, one JSON view of the "
            "same size) served by the same Procfile `web` command (same uvicorn flags, same "
            "WEB_CONCURRENCY workers) in the same run. Goals: ratio ≥ 0.5×, p99 ≤ 250 ms, 0 errors. "
            "The throttle runs (API_THROTTLE_RATE=1000000/s keeps it from refusing). CPU per GET "
            "(user + system of the web process tree over the measured rounds) depends less on "
            "other load on the machine than requests per second do.",
        ],
        {
            "platform_rounds": [vars(r) for r in platform_runs],
            "bare_rounds": [vars(r) for r in bare_runs],
            "healthz": vars(healthz),
            "generator_ceiling_rps": ceiling,
        },
    )


def _merge(runs: list[load.Load]) -> load.Load:
    """Rounds as one: summed requests and time, the mean of each round's percentiles."""
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, count in run.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return load.Load(
        runs[0].generator,
        sum(r.requests for r in runs),
        sum(r.seconds for r in runs),
        sum(r.p50_ms for r in runs) / len(runs),
        sum(r.p99_ms for r in runs) / len(runs),
        sum(r.errors for r in runs),
        kinds,
    )


def fanout(h: Harness) -> Result:
    """7. Websocket fan-out: from a job's state change to each subscriber's message."""
    subscribers, changes = h.sizes.s7_subscribers, h.sizes.s7_changes
    job = Job.objects.create(
        client_id=h.client_id, title="fan-out"
    )  # never queued: only the bench changes it
    url = f"ws://127.0.0.1:{h.port}/ws/jobs/{job.id}/?token={make_viewer_token(job)}"
    board = Arrivals(subscribers)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    sockets = asyncio.run_coroutine_threadsafe(
        _subscribe(url, h.web_url, subscribers, board), loop
    ).result(120)
    try:
        for change in range(changes):
            update_job(job, f"fanout {change} {time.time():.6f}")
            board.wait_for(change, timeout=30)
    finally:
        board.closing = True
        asyncio.run_coroutine_threadsafe(_close(sockets), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
    latencies = board.latencies()
    last = board.slowest_per_change()
    return Result(
        7,
        "Websocket fan-out",
        [
            Row("state change → message p50 (ms)", percentile(latencies, 50) * 1000),
            Row("state change → message p95 (ms)", percentile(latencies, 95) * 1000),
            Row("state change → last subscriber p95 (ms)", percentile(last, 95) * 1000),
            Row("subscribers disconnected by the server", board.dropped),
        ],
        [
            f"{subscribers} websocket subscribers to one job (viewer token, Origin = the site) in the "
            f"bench process; {changes} changes made with jobs.state.update_job, one after the other "
            "once every subscriber had the previous one. Measured from just before update_job to each "
            "message's arrival.",
            SHARED,
        ],
        {"messages": len(latencies)},
    )


class Arrivals:
    """Arrival times of each change's message, shared with the event loop's thread.

    A subscriber the server disconnects is counted in `dropped` and no longer waited for.
    """

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.dropped = 0
        self.closing = False
        self.listeners: list[asyncio.Task[None]] = []  # held so the tasks are not collected
        self._sent: dict[int, float] = {}
        self._arrived: dict[int, list[float]] = {}
        self._cond = threading.Condition()

    def record(self, message: str, arrived: float) -> None:
        _, change, sent = message.split()
        with self._cond:
            self._sent[int(change)] = float(sent)
            self._arrived.setdefault(int(change), []).append(arrived)
            self._cond.notify_all()

    def drop(self) -> None:
        with self._cond:
            self.dropped += 1
            self._cond.notify_all()

    def wait_for(self, change: int, timeout: float) -> None:
        def everyone() -> bool:
            return len(self._arrived.get(change, [])) >= self.subscribers - self.dropped

        with self._cond:
            if not self._cond.wait_for(everyone, timeout):
                got = len(self._arrived.get(change, []))
                raise TimeoutError(
                    f"change {change} reached {got} of {self.subscribers - self.dropped} subscribers"
                )

    def latencies(self) -> list[float]:
        return [t - self._sent[c] for c, times in self._arrived.items() for t in times]

    def slowest_per_change(self) -> list[float]:
        return [max(times) - self._sent[c] for c, times in self._arrived.items()]


async def _subscribe(url: str, origin: str, count: int, board: Arrivals) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    while len(sockets) < count:  # connect in waves of 20, like a crowd arriving
        wave = min(20, count - len(sockets))
        sockets += await asyncio.gather(
            *(connect(url, origin=origin, open_timeout=60) for _ in range(wave))
        )
    for ws in sockets:
        await ws.recv()  # the current state, sent on connect
    board.listeners = [asyncio.create_task(_listen(ws, board)) for ws in sockets]
    return sockets


async def _listen(ws: ClientConnection, board: Arrivals) -> None:
    try:
        async for raw in ws:
            message = json.loads(raw).get("message", "")
            if message.startswith("fanout "):
                board.record(message, time.time())
    except ConnectionClosed:
        pass
    if not board.closing:
        board.drop()


async def _close(sockets: list[ClientConnection]) -> None:
    for start in range(0, len(sockets), 20):  # in waves, as they connected
        await asyncio.gather(*(ws.close() for ws in sockets[start : start + 20]))
