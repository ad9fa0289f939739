"""A broker of the test's own: a throwaway Redis server no worker consumes, so
what the code under test enqueues stays in its lists for the test to read."""

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
