"""GET /api/v1/jobs/{id}/ as a server runs it: on one long-lived event loop, never in a thread.

The ASGI application uvicorn serves runs here on a loop of its own (as in a web
process), so the read takes its on-loop path: the async read pool, the throttle
on redis.asyncio, the lean /api/ middleware chain. Each answer is compared with
the DRF view's (the test client, fast path off) by status, headers and bytes.
PostgreSQL only: on SQLite the read keeps Django's thread (tests/jobs/test_api_job_read.py).
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest
from asgiref import sync
from django.core import signing
from django.db import connection
from django.utils import timezone

from jobs.api import auth, job_read, key_cache
from meeting_intel.lib import async_db
from tests.jobs.test_api_job_read import SIGNED_AT, STATES
from tests.support.api_factories import api_for, make_job, new_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the async read pool is PostgreSQL's"
    ),
]


class Server:
    """The ASGI application on an event loop in a thread, for the whole test."""

    def __init__(self) -> None:
        from meeting_intel.asgi import application

        self.app = application
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def get(self, path: str, key: str | None, **headers: str):
        """(status, headers with lower-case names, body) of one GET."""
        if key:
            headers.setdefault("Authorization", f"Bearer {key}")
        return self.run(self._get(path, headers))

    async def _get(self, path: str, headers: dict[str, str]):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        inbox: asyncio.Queue = asyncio.Queue()
        await inbox.put({"type": "http.request", "body": b"", "more_body": False})
        sent: list[dict] = []
        done = asyncio.Event()

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()
                await inbox.put({"type": "http.disconnect"})

        await self.app(scope, inbox.get, send)
        start = sent[0]
        head = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], head, body

    def close(self) -> None:
        async def closing():
            await async_db.close()
            await auth.close_async_clients()

        self.run(closing())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(monkeypatch):
    key_cache.forget()
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: SIGNED_AT))
    running = Server()
    yield running
    running.close()
    key_cache.forget()
    auth._Outage.skip_until, auth._Outage.warned = 0.0, False


def record_calls(monkeypatch, owner: object, name: str, argument: int) -> list[object]:
    """Wrap the coroutine function `owner.name`; the list of each call's `argument`-th argument."""
    calls: list[object] = []
    real = getattr(owner, name)

    async def recording(*args):
        calls.append(args[argument])
        return await real(*args)

    monkeypatch.setattr(owner, name, recording)
    return calls


@pytest.fixture
def on_loop_calls(monkeypatch):
    """How often the on-loop path answered (it, not the thread path, is under test)."""
    return record_calls(monkeypatch, job_read, "_answer_on_loop", 1)


def drf(monkeypatch, key: str | None, path: str):
    """The DRF view's answer (test client, fast path off), as (status, headers, body)."""
    with monkeypatch.context() as m:
        m.setattr(job_read, "_bearer_key", lambda request: None)
        response = api_for(key).get(path)
    return (
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        response.content,
    )


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_reads_byte_for_byte_as_the_drf_view(server, on_loop_calls, monkeypatch, state):
    client, key = new_client()
    job = STATES[state](client)
    path = f"/api/v1/jobs/{job.id}/"
    fast = server.get(path, key)
    assert fast[0] == 200
    assert fast == drf(monkeypatch, key, path)
    assert server.get(path, key) == fast  # the key remembered now; the same answer
    assert len(on_loop_calls) == 2


def test_another_clients_job_and_a_missing_one_answer_the_same_404(
    server, on_loop_calls, monkeypatch
):
    other, _ = new_client()
    theirs = make_job(other)
    _, key = new_client()
    for path in (
        f"/api/v1/jobs/{theirs.id}/",
        "/api/v1/jobs/00000000-0000-4000-8000-000000000000/",
    ):
        fast = server.get(path, key)
        assert fast[0] == 404
        assert fast == drf(monkeypatch, key, path)
    assert len(on_loop_calls) == 2


def test_a_warm_read_never_leaves_the_event_loop(server, monkeypatch):
    """Once the key is remembered: no thread (not even Django's per-request one)."""
    client, key = new_client()
    job = make_job(client, title="Polled")
    path = f"/api/v1/jobs/{job.id}/"
    assert server.get(path, key)[0] == 200
    hops: list[str] = []
    real = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", None) or type(self.func).__qualname__)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    status, headers, _ = server.get(path, key)
    assert status == 200
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    threads: list[str] = []
    real_start = threading.Thread.start

    def starting(self):
        threads.append(self.name)
        return real_start(self)

    monkeypatch.setattr(threading.Thread, "start", starting)
    status, headers, _ = server.get(path, key)
    assert status == 200
    assert hops == [] and threads == []


def test_a_revoked_key_stops_working_within_the_documented_bound(server, monkeypatch, settings):
    assert settings.API_KEY_CACHE_SECONDS == 5  # the shipped bound, README "Performance"
    client, key = new_client()
    job = make_job(client)
    path = f"/api/v1/jobs/{job.id}/"
    assert server.get(path, key)[0] == 200
    # Revoked from another process (no signal reaches this one).
    client.__class__.objects.filter(id=client.id).update(revoked_at=timezone.now())
    # Remembered for API_KEY_CACHE_SECONDS from its lookup:
    ((expires, _),) = key_cache._entries.values()
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: expires - 0.1)
    assert server.get(path, key)[0] == 200  # inside the bound
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: expires)
    fast = server.get(path, key)
    assert fast[0] == 401 and b'"unauthenticated"' in fast[2]
    assert fast == drf(monkeypatch, key, path)


def test_concurrent_reads_of_a_new_key_share_one_lookup(server, monkeypatch):
    client, key = new_client()
    job = make_job(client)
    lookups: list[str] = []
    real = key_cache.active_client_cached

    def counting(k):
        lookups.append(k)
        return real(k)

    monkeypatch.setattr(key_cache, "active_client_cached", counting)
    path = f"/api/v1/jobs/{job.id}/"
    headers = {"Authorization": f"Bearer {key}"}

    async def many():
        return await asyncio.gather(*(server._get(path, dict(headers)) for _ in range(20)))

    answers = server.run(many())
    assert [a[0] for a in answers] == [200] * 20
    assert lookups == [key]


def test_the_throttle_answers_the_same_429_and_is_shared_with_drf(server, monkeypatch, settings):
    settings.API_THROTTLE_RATE = "3/hour"
    client, key = new_client()
    job = make_job(client)
    path = f"/api/v1/jobs/{job.id}/"
    assert server.get(path, key)[0] == 200
    assert api_for(key).get("/api/v1/jobs/").status_code == 200  # DRF counts in the same window
    assert server.get(path, key)[0] == 200
    fast = server.get(path, key)
    wait = fast[1]["retry-after"]
    assert fast[0] == 429 and 3590 < int(wait) <= 3600
    status, headers, body = drf(monkeypatch, key, path)
    # DRF answers a moment later: its wait may be a second shorter.
    assert int(wait) - 1 <= int(headers["retry-after"]) <= int(wait)
    same = body.replace(headers["retry-after"].encode(), wait.encode())  # message and details
    assert fast == (status, {**headers, "retry-after": wait}, same)


def test_with_redis_down_the_read_still_answers(server, settings, caplog):
    from tests.support.platform import free_port

    client, key = new_client()
    job = make_job(client, title="Readable")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    answers = [server.get(f"/api/v1/jobs/{job.id}/", key) for _ in range(2)]
    assert [a[0] for a in answers] == [200, 200]
    assert b'"Readable"' in answers[1][2]
    assert [r.event for r in caplog.records if hasattr(r, "event")].count("throttle.fail_open") == 1


def test_the_api_chain_answers_other_endpoints_as_the_full_chain_does(server, monkeypatch):
    """The lean /api/v1/ chain leaves every header the full MIDDLEWARE sets (test client)."""
    client, key = new_client()
    job = make_job(client)
    for path, with_key in (
        ("/api/v1/jobs/", True),
        (f"/api/v1/jobs/{job.id}/events/", True),
        ("/api/v1/jobs/", False),
        ("/api/v1/nothing-here/", True),
        ("/api/v1/jobs", True),  # CommonMiddleware's APPEND_SLASH redirect
        (f"/api/v1/jobs/{job.id}/", False),
    ):
        used = key if with_key else None
        fast = server.get(path, used)
        response = api_for(used).get(path)
        assert fast[0] == response.status_code, path
        assert fast[1] == {k.lower(): v for k, v in response.headers.items()}, path
        assert fast[2] == response.content, path


def test_the_reads_of_one_loop_turn_share_one_query_and_one_throttle_call_per_client(
    server, monkeypatch
):
    mine, my_key = new_client()
    theirs, their_key = new_client()
    my_job, their_job = make_job(mine, title="Mine"), make_job(theirs, title="Theirs")
    asks = [(my_key, my_job)] * 8 + [(their_key, their_job)] * 4 + [(my_key, their_job)] * 3
    for key, job in asks[:1] + asks[8:9]:  # both keys remembered; the script loaded
        assert server.get(f"/api/v1/jobs/{job.id}/", key)[0] == 200
    queries = record_calls(monkeypatch, async_db, "fetchall", 0)
    calls = record_calls(monkeypatch, auth, "_athrottle_client", 1)

    async def at_once():
        return await asyncio.gather(
            *(
                server._get(f"/api/v1/jobs/{job.id}/", {"Authorization": f"Bearer {key}"})
                for key, job in asks
            )
        )

    answers = server.run(at_once())
    assert len(queries) == 1 and sorted(calls) == [4, 11]
    for (key, job), (status, _, body) in zip(asks, answers, strict=True):
        if job.client_id == (mine.id if key == my_key else theirs.id):
            assert status == 200 and f'"id":"{job.id}"'.encode() in body
        else:  # another client's job, asked in the same query: still their 404
            assert status == 404 and b'"not_found"' in body
    # Each answer is the one a read of its own gets.
    alone = server.get(f"/api/v1/jobs/{my_job.id}/", my_key)
    assert answers[0] == alone


def test_reads_of_one_loop_turn_get_exactly_the_rate(server, settings):
    settings.API_THROTTLE_RATE = "5/hour"
    client, key = new_client()
    job = make_job(client)
    assert server.get(f"/api/v1/jobs/{job.id}/", key)[0] == 200  # the key remembered
    headers = {"Authorization": f"Bearer {key}"}

    async def at_once():
        return await asyncio.gather(
            *(server._get(f"/api/v1/jobs/{job.id}/", dict(headers)) for _ in range(10))
        )

    statuses = [status for status, _, _ in server.run(at_once())]
    assert statuses.count(200) == 4 and statuses.count(429) == 6


def test_a_state_change_shows_at_once_within_the_same_second(server):
    """Bodies are reused within a second for an unchanged row only."""
    client, key = new_client()
    job = make_job(client, title="Before")
    path = f"/api/v1/jobs/{job.id}/"
    assert b'"Before"' in server.get(path, key)[2]
    job.__class__.objects.filter(id=job.id).update(title="After", progress=40)
    answer = server.get(path, key)
    assert b'"After"' in answer[2] and b'"progress":40' in answer[2]
