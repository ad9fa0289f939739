"""Global provider limits shared by every worker process, kept in Redis.

Celery's `rate_limit` is per worker instance, so it cannot keep a fleet under
a provider's quota. These limits are exact sliding windows (requests or
tokens per window) and a slot pool (concurrent transcriptions), each updated
atomically by a Lua script that reads the Redis server's clock. A window is
charged right before each request is sent (every retry, repair and second
ask included), with an estimate of its tokens that is settled with the usage
the answer reports.

If Redis cannot be reached the limits fail open with a warning: the
providers' own 429s, which the pipeline honours, still protect the quota, and
the CLI can run without a broker.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import cache

import redis
from django.conf import settings

from jobs.errors import Deferred

logger = logging.getLogger(__name__)

# Every script reads the clock of the Redis server (TIME), never the caller's:
# hosts whose clocks drift apart still share one window.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_WINDOW_SCRIPT = (
    _NOW
    + """
local key, window = KEYS[1], tonumber(ARGV[1])
local limit, cost, member = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do used = used + tonumber(string.match(entries[i], ':(%d+)$')) end
if used + cost <= limit or #entries == 0 then
  redis.call('ZADD', key, now, member .. ':' .. cost)
  redis.call('EXPIRE', key, math.ceil(window) + 1)
  return '0'
end
local need, freed = used + cost - limit, 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= need then return tostring(tonumber(entries[i + 1]) + window - now) end
end
return tostring(window)
"""
)

# Replace a granted reservation's cost (an estimate) by what the call really
# used, keeping its place in the window; cost 0 takes it back.
_SETTLE_SCRIPT = """
local key, old, new = KEYS[1], ARGV[1], ARGV[2]
local score = redis.call('ZSCORE', key, old)
if not score then return 0 end
redis.call('ZREM', key, old)
if new ~= '' then redis.call('ZADD', key, score, new) end
return 1
"""

_SLOT_SCRIPT = (
    _NOW
    + """
local key, limit, member, ttl = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) or redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + ttl, member)
  return 1
end
return 0
"""
)

_COUNT_SLOTS_SCRIPT = _NOW + "return redis.call('ZCOUNT', KEYS[1], now, '+inf')"


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _key(name: str) -> str:
    return f"meeting_intel:limit:{name}"


def _observe_wait(resource: str, seconds: float) -> None:
    from meeting_intel.ops import metrics

    metrics.observe_rate_limit_wait(resource, seconds)


class Reservation(str):
    """A granted share of a window ("<id>:<cost>"), to settle once the real cost is known."""


def reserve(resource: str, cost: int, limit: int) -> float:
    """Take `cost` units of `resource` in the current window if they fit.

    Returns 0 when granted, else the seconds until they would fit. A request
    larger than the whole limit is granted when the window is empty, so it
    is slowed down but never refused forever.
    """
    return _reserve(resource, cost, limit)[0]


def _reserve(resource: str, cost: int, limit: int) -> tuple[float, Reservation | None]:
    window = settings.RATE_LIMIT_WINDOW_SECONDS
    member = uuid.uuid4().hex
    cost = max(1, int(cost))
    try:
        wait = _client().eval(_WINDOW_SCRIPT, 1, _key(resource), window, limit, cost, member)
    except redis.RedisError:
        logger.warning("rate limiter unavailable; letting %s through", resource, exc_info=True)
        return 0.0, None
    wait = float(wait)
    return wait, (Reservation(f"{member}:{cost}") if wait <= 0 else None)


def throttle(resource: str, cost: int, limit: int) -> Reservation | None:
    """Wait briefly for capacity, or raise Deferred when the wait would be long.

    Call it right before the request it admits is sent: the window counts
    requests when they reach the provider. Waits of up to
    RATE_LIMIT_MAX_BLOCK_SECONDS are slept through in place; longer ones
    give the worker back by rescheduling the step. Returns the reservation
    (None when the limiter is unavailable and fails open).
    """
    blocked = 0.0
    while True:
        wait, reservation = _reserve(resource, cost, limit)
        if wait <= 0:
            if blocked:
                _observe_wait(resource, blocked)
            return reservation
        if blocked + wait > settings.RATE_LIMIT_MAX_BLOCK_SECONDS:
            _observe_wait(resource, blocked + wait)
            raise Deferred(wait, f"Waiting for {resource} capacity ({wait:.0f}s)")
        time.sleep(wait)
        blocked += wait


def settle(resource: str, reservation: Reservation | None, actual: int) -> None:
    """Replace the reservation's estimated cost by `actual` (0: give it back)."""
    if reservation is None:
        return
    member = reservation.rpartition(":")[0]
    new = f"{member}:{int(actual)}" if actual > 0 else ""
    try:
        _client().eval(_SETTLE_SCRIPT, 1, _key(resource), reservation, new)
    except redis.RedisError:
        logger.warning("could not settle %s on %s; the estimate stands", reservation, resource)


def acquire_slot(pool: str, member: str, limit: int, ttl: float) -> bool:
    """Hold one of `limit` slots in `pool` for `member` (idempotent); it expires after `ttl`."""
    try:
        return bool(_client().eval(_SLOT_SCRIPT, 1, _key(pool), limit, member, ttl))
    except redis.RedisError:
        logger.warning("slot pool %s unavailable; letting %s through", pool, member, exc_info=True)
        return True


def release_slot(pool: str, member: str) -> None:
    try:
        _client().zrem(_key(pool), member)
    except redis.RedisError:
        logger.warning("could not release %s from %s; it will expire", member, pool)


def slots_in_use(pool: str) -> int:
    return int(_client().eval(_COUNT_SLOTS_SCRIPT, 1, _key(pool)))
