"""Scenarios 5–7: the web process alone (upload, API reads, websocket fan-out).

The baseline design shares these code paths, so they have platform figures only.
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

from bench.audio import MultipartUpload
from bench.harness import Harness
from bench.processes import Service
from bench.report import Result, Row, percentile
from jobs.models import Job
from jobs.state import cancel_job, update_job
from jobs.web.tokens import make_viewer_token

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
    """6. Many clients reading one job: GET latency p50/p99 and errors."""
    clients, per_client = h.sizes.s6_clients, h.sizes.s6_requests_per_client
    job = Job.objects.filter(client_id=h.client_id, status=Job.Status.COMPLETED).first()
    if job is None:
        job = Job.objects.create(client_id=h.client_id, title="api probe")
    path = f"/api/v1/jobs/{job.id}/"
    headers = {"Authorization": f"Bearer {h.api_key}"}
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
        barrier.wait()
        for _ in range(per_client):
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
            latencies.append(time.perf_counter() - started)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return Result(
        6,
        "API under load",
        [
            Row("GET job p50 (ms)", percentile(latencies, 50) * 1000),
            Row("GET job p99 (ms)", percentile(latencies, 99) * 1000),
            Row("errors", len(errors)),
            Row("requests per second", len(latencies) / seconds, better="higher"),
        ],
        [
            f"{clients} concurrent keep-alive clients (threads in the bench process) on loopback, "
            f"{per_client} GET /api/v1/jobs/{{id}}/ each with an API key; one uvicorn process as in "
            "the Procfile; throttling set out of the way (API_THROTTLE_RATE=1000000/s).",
            SHARED,
        ],
        {"requests": len(latencies), "seconds": seconds, "errors": sorted(set(errors))},
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
