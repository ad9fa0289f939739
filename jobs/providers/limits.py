"""Global provider limits shared by every worker process, kept in Redis.

Celery's `rate_limit` is per worker instance, so it cannot keep a fleet under
a provider's quota. These limits are exact sliding windows (requests or
tokens per window) and a slot pool (concurrent transcriptions), each updated
atomically by a Lua script.

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

_WINDOW_SCRIPT = """
local key, now, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, cost, member = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
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

_SLOT_SCRIPT = """
local key, now, limit, member, expires = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) or redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, expires, member)
  return 1
end
return 0
"""


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _key(name: str) -> str:
    return f"meeting_intel:limit:{name}"


def _observe_wait(resource: str, seconds: float) -> None:
    from meeting_intel.ops import metrics

    metrics.observe_rate_limit_wait(resource, seconds)


def reserve(resource: str, cost: int, limit: int) -> float:
    """Take `cost` units of `resource` in the current window if they fit.

    Returns 0 when granted, else the seconds until they would fit. A request
    larger than the whole limit is granted when the window is empty, so it
    is slowed down but never refused forever.
    """
    window = settings.RATE_LIMIT_WINDOW_SECONDS
    try:
        wait = _client().eval(
            _WINDOW_SCRIPT,
            1,
            _key(resource),
            time.time(),
            window,
            limit,
            max(1, cost),
            uuid.uuid4().hex,
        )
    except redis.RedisError:
        logger.warning("rate limiter unavailable; letting %s through", resource, exc_info=True)
        return 0.0
    return float(wait)


def throttle(resource: str, cost: int, limit: int) -> None:
    """Wait briefly for capacity, or raise Deferred when the wait would be long.

    Waits of up to RATE_LIMIT_MAX_BLOCK_SECONDS are slept through in place;
    longer ones give the worker slot back by rescheduling the step.
    """
    blocked = 0.0
    while True:
        wait = reserve(resource, cost, limit)
        if wait <= 0:
            if blocked:
                _observe_wait(resource, blocked)
            return
        if blocked + wait > settings.RATE_LIMIT_MAX_BLOCK_SECONDS:
            _observe_wait(resource, blocked + wait)
            raise Deferred(wait, f"Waiting for {resource} capacity ({wait:.0f}s)")
        time.sleep(wait)
        blocked += wait


def acquire_slot(pool: str, member: str, limit: int, ttl: float) -> bool:
    """Hold one of `limit` slots in `pool` for `member` (idempotent); it expires after `ttl`."""
    now = time.time()
    try:
        return bool(_client().eval(_SLOT_SCRIPT, 1, _key(pool), now, limit, member, now + ttl))
    except redis.RedisError:
        logger.warning("slot pool %s unavailable; letting %s through", pool, member, exc_info=True)
        return True


def release_slot(pool: str, member: str) -> None:
    try:
        _client().zrem(_key(pool), member)
    except redis.RedisError:
        logger.warning("could not release %s from %s; it will expire", member, pool)


def slots_in_use(pool: str) -> int:
    return int(_client().zcount(_key(pool), time.time(), "+inf"))
