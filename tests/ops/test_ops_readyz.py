"""/healthz says the process is up; /readyz checks the database, the broker and
the channel layer, and names what fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from meeting_intel.devserver import EmbeddedRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(tmp_path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so stopping it disturbs nobody."""
    server = EmbeddedRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _pointed_at(url: str) -> override_settings:
    return override_settings(
        CELERY_BROKER_URL=url,
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url]},
            }
        },
        READYZ_TIMEOUT_SECONDS=1,
    )


def test_healthz_answers_without_checking_anything() -> None:
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/healthz")
    assert response.status_code == 200


def test_readyz_answers_200_when_everything_answers(own_redis: EmbeddedRedis) -> None:
    with _pointed_at(own_redis.url):
        response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "channel_layer": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


def test_readyz_answers_503_naming_redis_parts_when_redis_is_stopped(
    own_redis: EmbeddedRedis,
) -> None:
    with _pointed_at(own_redis.url):
        assert Client().get("/readyz").status_code == 200
        own_redis.stop()
        response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker", "channel_layer"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("failing")


def test_the_healthcheck_probe_sends_a_host_django_accepts() -> None:
    from meeting_intel.ops.health import probe_host

    assert probe_host(["meetings.example.com", "127.0.0.1"]) == "meetings.example.com"
    assert probe_host([".example.com"]) == "example.com"
    assert probe_host(["*"]) == "localhost"
