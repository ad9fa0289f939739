"""A broker of the test's own: a throwaway Redis server no worker consumes, so
what the code under test enqueues stays in its lists for the test to read."""

from __future__ import annotations

from collections.abc import Iterator

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
