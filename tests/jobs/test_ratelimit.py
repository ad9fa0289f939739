"""The global limits in Redis: exact sliding windows, counted from admission until a
window after the answer, and a slot pool."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from jobs.errors import Deferred
from jobs.providers import limits as ratelimit
from jobs.providers.limits import Window

WINDOW = 0.5  # seconds; the shipped 60 behaves the same, only slower to watch


@pytest.fixture
def resource() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def window(settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = WINDOW
    settings.RATE_LIMIT_MAX_BLOCK_SECONDS = 0
    return settings


def admitted(resource: str, cost: int, limit: int, hold: float = 5.0) -> ratelimit.Permit | None:
    wait, permit = ratelimit.try_admit([Window(resource, cost, limit)], hold)
    assert (wait == 0) == (permit is not None)
    return permit


def answered(resource: str, cost: int, limit: int) -> bool:
    """Admit one request and settle it at once, as an instant answer would."""
    permit = admitted(resource, cost, limit)
    ratelimit.settle(permit)
    return permit is not None


def test_it_grants_up_to_the_limit_then_says_how_long_to_wait(window, resource):
    assert [answered(resource, 1, 3) for _ in range(3)] == [True, True, True]
    wait, permit = ratelimit.try_admit([Window(resource, 1, 3)], 5)
    assert permit is None and 0 < wait <= WINDOW
    time.sleep(wait + 0.02)
    assert answered(resource, 1, 3)


def test_an_answer_counts_for_a_whole_window_after_it_arrived(window, resource):
    assert answered(resource, 1, 1)
    time.sleep(WINDOW * 0.8)
    assert not admitted(resource, 1, 1), "still inside the window"
    time.sleep(WINDOW * 0.3)
    assert admitted(resource, 1, 1), "a window after the answer, it no longer counts"


def test_a_request_in_flight_counts_until_its_answer_plus_a_window(window, resource):
    """However late the provider sees a request, it sees it before the answer
    leaves: so the entry counts from admission until a window after the answer."""
    slow = admitted(resource, 1, 1)
    time.sleep(WINDOW * 1.5)
    wait, permit = ratelimit.try_admit([Window(resource, 1, 1)], 5)
    assert permit is None, "unanswered after more than a window: it still counts"
    assert wait == pytest.approx(WINDOW, abs=0.05), "it frees no sooner than a window from now"
    ratelimit.settle(slow)
    time.sleep(WINDOW * 0.8)
    assert not admitted(resource, 1, 1)
    time.sleep(WINDOW * 0.3)
    assert admitted(resource, 1, 1)


def test_an_estimate_in_flight_is_looked_at_again_soon(window, resource):
    """Settling may shrink a token estimate: room can appear before anything leaves."""
    window.RATE_LIMIT_WINDOW_SECONDS = 60
    estimate = ratelimit.try_admit([Window(resource, 900, 1000, estimated=True)], 5)[1]
    wait, _ = ratelimit.try_admit([Window(resource, 500, 1000, estimated=True)], 5)
    assert wait == ratelimit.ESTIMATE_POLL_SECONDS
    ratelimit.settle(estimate, {resource: 300})
    assert ratelimit.try_admit([Window(resource, 500, 1000, estimated=True)], 5)[1]


def test_an_unanswered_request_of_a_dead_worker_frees_its_share_after_its_hold(window, resource):
    assert admitted(resource, 1, 1, hold=0.2)
    time.sleep(0.2 + WINDOW * 0.5)
    assert not admitted(resource, 1, 1)
    time.sleep(WINDOW * 0.6)
    assert admitted(resource, 1, 1)


def test_a_request_never_sent_is_taken_back(window, resource):
    ratelimit.release(admitted(resource, 1, 1))
    assert admitted(resource, 1, 1)


def test_it_counts_costs_such_as_tokens(window, resource):
    assert answered(resource, 700, 1000)
    assert not admitted(resource, 400, 1000)
    assert answered(resource, 300, 1000)


def test_an_oversized_request_passes_when_the_window_is_empty(window, resource):
    assert answered(resource, 5000, 1000)
    assert not admitted(resource, 1, 1000)


def test_a_request_takes_room_in_all_its_windows_or_in_none(window, resource):
    requests, tokens = f"{resource}:requests", f"{resource}:tokens"
    assert answered(tokens, 900, 1000)
    wait, permit = ratelimit.try_admit([Window(requests, 1, 1), Window(tokens, 200, 1000)], 5)
    assert permit is None and 0 < wait <= WINDOW
    with pytest.raises(Deferred, match=f"{tokens} capacity"):
        ratelimit.admit([Window(requests, 1, 1), Window(tokens, 200, 1000)], 5)
    assert answered(requests, 1, 1), "the refused request took no room in the request window"
    time.sleep(WINDOW + 0.02)
    assert ratelimit.admit([Window(requests, 1, 1), Window(tokens, 200, 1000)], 5)
    assert not admitted(requests, 1, 1), "admitted: it took room in the request window"
    assert not admitted(tokens, 900, 1000), "and in the token window"


def test_a_token_estimate_is_settled_with_the_real_usage(window, resource):
    permit = admitted(resource, 900, 1000)
    assert not admitted(resource, 500, 1000)
    ratelimit.settle(permit, {resource: 300})
    assert answered(resource, 500, 1000), "300 + 500 fit in 1000"
    assert not admitted(resource, 300, 1000), "800 used, 300 more do not fit"


def test_concurrent_callers_never_exceed_the_limit(window, resource):
    granted: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(10):
            permit = admitted(resource, 1, 5)
            if permit is not None:
                with lock:
                    granted.append(time.time())
                ratelimit.settle(permit)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted.sort()
    assert len(granted) >= 5
    assert max(sum(1 for g in granted if s <= g < s + WINDOW) for s in granted) <= 5


def test_admit_defers_instead_of_blocking_a_worker(window, resource):
    ratelimit.settle(ratelimit.admit([Window(resource, 1, 1)], 5))
    with pytest.raises(Deferred) as deferred:
        ratelimit.admit([Window(resource, 1, 1)], 5)
    assert 0 < deferred.value.seconds <= WINDOW


def test_admit_sleeps_through_a_short_wait(window, resource):
    window.RATE_LIMIT_MAX_BLOCK_SECONDS = 2
    ratelimit.settle(ratelimit.admit([Window(resource, 1, 1)], 5))
    started = time.monotonic()
    assert ratelimit.admit([Window(resource, 1, 1)], 5) is not None
    assert WINDOW * 0.8 <= time.monotonic() - started <= WINDOW + 1


def test_windows_use_the_redis_servers_clock_not_the_callers(window, resource, monkeypatch):
    """A host whose clock runs an hour slow still shares the window with the others."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert [answered(resource, 1, 3) for _ in range(3)] == [True, True, True]
    monkeypatch.setattr(time, "time", real)
    assert not admitted(resource, 1, 3), "the slow host's requests still count"


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    ratelimit._client.cache_clear()
    yield
    ratelimit._client.cache_clear()


def test_without_redis_nothing_is_sent_unadmitted(window, resource, redis_down):
    with pytest.raises(redis.ConnectionError):
        ratelimit.admit([Window(resource, 1, 1)], 5)
    with pytest.raises(redis.ConnectionError):
        ratelimit.acquire_slot(resource, "job-1", 1, ttl=60)


def test_the_command_line_fleet_of_one_runs_without_redis(
    window, resource, redis_down, monkeypatch
):
    monkeypatch.setattr(ratelimit, "_fail_open", True)
    assert ratelimit.admit([Window(resource, 1, 1)], 5) is None
    assert ratelimit.acquire_slot(resource, "job-1", 1, ttl=60)


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


def test_slots_expire_by_the_redis_servers_clock(resource, monkeypatch):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert ratelimit.acquire_slot(resource, "fast-clock", 1, ttl=60)
    monkeypatch.setattr(time, "time", real)
    assert ratelimit.slots_in_use(resource) == 1
    assert not ratelimit.acquire_slot(resource, "other", 1, ttl=60)
