"""The API throttle: exact under concurrency, one Redis round trip, open when Redis is down."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest
import redis

from jobs.api.auth import ClientRateThrottle
from tests.support.api_factories import api_for, make_job, new_client
from tests.support.platform import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_outage_left_over():
    """A test that saw Redis down must not leave later tests' throttle open."""
    yield
    from jobs.api import auth

    auth._Outage.skip_until, auth._Outage.warned = 0.0, False


def hits(client, threads: int, per_thread: int) -> list[bool]:
    """`threads` threads, each asking the throttle `per_thread` times for `client`."""
    request = SimpleNamespace(user=client)
    answers: list[bool] = []
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        for _ in range(per_thread):
            answers.append(ClientRateThrottle().allow_request(request, None))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return answers


def test_concurrent_requests_get_exactly_the_rate_and_no_more(settings):
    settings.API_THROTTLE_RATE = "25/min"
    client, _ = new_client()
    answers = hits(client, threads=10, per_thread=8)
    assert answers.count(True) == 25 and len(answers) == 80


def test_the_throttle_costs_one_redis_round_trip_per_request(settings, monkeypatch):
    settings.API_THROTTLE_RATE = "1000/min"
    client, _ = new_client()
    ClientRateThrottle().allow_request(SimpleNamespace(user=client), None)  # loads the script
    commands: list[tuple] = []
    real = redis.Redis.execute_command

    def counting(self, *args, **options):
        commands.append(args[:1])
        return real(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    for _ in range(5):
        assert ClientRateThrottle().allow_request(SimpleNamespace(user=client), None)
    assert commands == [("EVALSHA",)] * 5


def test_a_throttled_client_waits_until_its_oldest_request_leaves_the_window(settings):
    settings.API_THROTTLE_RATE = "2/hour"
    client, _ = new_client()
    throttle = ClientRateThrottle()
    request = SimpleNamespace(user=client)
    assert throttle.allow_request(request, None) and throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)
    assert 3590 < throttle.wait() <= 3600


def test_with_redis_down_the_api_keeps_answering_and_says_so_in_the_log(settings, caplog):
    client, key = new_client()
    job = make_job(client, title="Still readable")
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REDIS_URL = dead
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": dead},
    }
    api = api_for(key)
    with caplog.at_level(logging.WARNING):
        answers = [api.get(f"/api/v1/jobs/{job.id}/") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["title"] == "Still readable"
    warnings = [r for r in caplog.records if "throttle unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


def test_the_throttle_comes_back_when_redis_does(settings):
    from jobs.api import auth

    assert auth.OUTAGE_SKIP_SECONDS <= 10  # the shipped window skipped below

    settings.API_THROTTLE_RATE = "1/hour"
    client, _ = new_client()
    request = SimpleNamespace(user=client)
    live = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert ClientRateThrottle().allow_request(request, None)  # open: Redis is down
    settings.REDIS_URL = live
    auth._Outage.skip_until = 0  # the outage window (OUTAGE_SKIP_SECONDS) has passed
    assert ClientRateThrottle().allow_request(request, None)
    assert not ClientRateThrottle().allow_request(request, None)
