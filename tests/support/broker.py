"""Brokers no worker consumes.

`private_broker`: a throwaway Redis server of the test's own, so what the code
under test enqueues stays in its lists for the test to read.

`unconsumed_broker` (autouse): every test that runs no platform processes
sends its tasks to a Redis server of its own that nothing consumes, emptied
after each test. Otherwise a task queued by an in-process test (a retry, an
enqueue on commit) would reach the shared broker, where the worker of a
session's `platform` started by an earlier test on the same pytest process
takes it and runs that test's job beside it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import pytest
import redis

from meeting_intel.celery import app as celery_app
from tests.support.services import RedisServer


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping pooled connections to the old one."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def _sink_broker() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def unconsumed_broker(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_workers = request.node.get_closest_marker("e2e") or "platform" in request.fixturenames
    if uses_workers or "private_broker" in request.fixturenames:
        yield
        return
    sink: RedisServer = request.getfixturevalue("_sink_broker")
    shipped = celery_app.conf.broker_url
    use_broker(sink.url)
    try:
        yield
    finally:
        use_broker(shipped)
        redis.Redis.from_url(sink.url).flushdb()


@pytest.fixture
def private_broker() -> Iterator[redis.Redis]:
    server, shipped = RedisServer(), celery_app.conf.broker_url
    use_broker(server.url)
    try:
        yield redis.Redis.from_url(server.url)
    finally:
        use_broker(shipped)
        server.kill()


def run_queued(
    broker: redis.Redis,
    queues: tuple[str, ...],
    stop_after: int | None = None,
    inspect: Callable[[], None] | None = None,
) -> list[tuple[str, list]]:
    """Run the messages on `queues` here, oldest first, as one worker would (eta ignored).

    Returns each task's name and the time limits its message carried; runs
    `inspect` after the first task. The step tasks must be registered
    (import jobs.tasks).
    """
    ran: list[tuple[str, list]] = []
    while stop_after is None or len(ran) < stop_after:
        raw = next((m for q in queues if (m := broker.rpop(q)) is not None), None)
        if raw is None:
            return ran
        message = json.loads(raw)
        headers = message["headers"]
        ran.append((headers["task"], headers["timelimit"]))
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        celery_app.tasks[headers["task"]].apply(args=args, kwargs=kwargs, task_id=headers["id"])
        if inspect is not None and len(ran) == 1:
            inspect()
    return ran
