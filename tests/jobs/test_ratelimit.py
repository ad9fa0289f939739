"""The global limits in Redis: exact sliding windows and a slot pool."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from jobs.errors import Deferred
from jobs.providers import limits as ratelimit


@pytest.fixture
def resource() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def window(settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 1.0
    settings.RATE_LIMIT_MAX_BLOCK_SECONDS = 0
    return settings


def test_it_grants_up_to_the_limit_then_says_how_long_to_wait(window, resource):
    assert [ratelimit.reserve(resource, 1, 3) for _ in range(3)] == [0, 0, 0]
    wait = ratelimit.reserve(resource, 1, 3)
    assert 0 < wait <= 1.0
    time.sleep(wait + 0.05)
    assert ratelimit.reserve(resource, 1, 3) == 0


def test_it_counts_costs_such_as_tokens(window, resource):
    assert ratelimit.reserve(resource, 700, 1000) == 0
    assert ratelimit.reserve(resource, 400, 1000) > 0
    assert ratelimit.reserve(resource, 300, 1000) == 0


def test_an_oversized_request_passes_when_the_window_is_empty(window, resource):
    assert ratelimit.reserve(resource, 5000, 1000) == 0


def test_concurrent_callers_never_exceed_the_limit(window, resource):
    granted: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(10):
            if ratelimit.reserve(resource, 1, 5) == 0:
                with lock:
                    granted.append(time.time())

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted.sort()
    worst = max(sum(1 for g in granted if s <= g < s + 1.0) for s in granted)
    assert worst <= 5


def test_throttle_defers_instead_of_blocking_a_worker(window, resource):
    ratelimit.throttle(resource, 1, 1)
    with pytest.raises(Deferred) as deferred:
        ratelimit.throttle(resource, 1, 1)
    assert 0 < deferred.value.seconds <= 1.0


def test_the_slot_pool_holds_at_most_its_limit(resource):
    assert ratelimit.acquire_slot(resource, "job-1", 2, ttl=60)
    assert ratelimit.acquire_slot(resource, "job-2", 2, ttl=60)
    assert ratelimit.acquire_slot(resource, "job-1", 2, ttl=60), "holding a slot is idempotent"
    assert not ratelimit.acquire_slot(resource, "job-3", 2, ttl=60)
    ratelimit.release_slot(resource, "job-1")
    assert ratelimit.acquire_slot(resource, "job-3", 2, ttl=60)
    assert ratelimit.slots_in_use(resource) == 2


def test_an_abandoned_slot_expires(resource):
    assert ratelimit.acquire_slot(resource, "crashed", 1, ttl=0.2)
    assert not ratelimit.acquire_slot(resource, "next", 1, ttl=60)
    time.sleep(0.3)
    assert ratelimit.acquire_slot(resource, "next", 1, ttl=60)


def test_windows_use_the_redis_servers_clock_not_the_callers(window, resource, monkeypatch):
    """A host whose clock runs an hour slow still shares the window with the others."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert [ratelimit.reserve(resource, 1, 3) for _ in range(3)] == [0, 0, 0]
    monkeypatch.setattr(time, "time", real)
    assert ratelimit.reserve(resource, 1, 3) > 0, "the slow host's requests still count"


def test_slots_expire_by_the_redis_servers_clock(resource, monkeypatch):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert ratelimit.acquire_slot(resource, "fast-clock", 1, ttl=60)
    monkeypatch.setattr(time, "time", real)
    assert ratelimit.slots_in_use(resource) == 1
    assert not ratelimit.acquire_slot(resource, "other", 1, ttl=60)


def test_a_token_estimate_is_settled_with_the_real_usage(window, resource):
    reservation = ratelimit.throttle(resource, 900, 1000)
    assert ratelimit.reserve(resource, 500, 1000) > 0
    ratelimit.settle(resource, reservation, 300)
    assert ratelimit.reserve(resource, 500, 1000) == 0, "300 + 500 fit in 1000"
    assert ratelimit.reserve(resource, 300, 1000) > 0, "800 used, 300 more do not fit"
