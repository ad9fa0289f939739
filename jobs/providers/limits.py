"""Global provider limits shared by every worker process, kept in Redis.

Celery's `rate_limit` is per worker instance, so it cannot keep a fleet under
a provider's quota. These limits are exact sliding windows (requests or
tokens per window) and a slot pool (concurrent transcriptions), each updated
atomically by a Lua script that reads the Redis server's clock.

A request is admitted into all its windows at once (its request and its
estimated tokens, or nothing) right before it is sent, and settled when its
answer is in: from admission until a full window after the answer, it
counts. The provider counts it somewhere in between, so however late a
loaded host delivers a request, no window at the provider holds more than
the limit. Settling also replaces the token estimate by the usage the answer
reports. jobs.providers.openai.client does this for every OpenAI request.

If Redis cannot be reached, nothing is admitted: the Redis error propagates
and the step is retried as an infrastructure error (a timed-out admission
may or may not have counted, so letting it through could exceed the limit).
Only `manage.py process_meeting`, a fleet of one, fails open (`fail_open`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

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

# An entry is "<member>:<cost>", scored by the last moment the provider may
# count it. While its request is in flight that moment is not known yet: the
# entry is scored `hold` seconds ahead (the longest the request may take), so
# it cannot expire; settling re-scores it at the answer's arrival. An entry
# counts while its score is within the window behind now.
_COST = "local function cost_of(entry) return tonumber(string.match(entry, ':(%d+)$')) end\n"

# Admit one request into every window it needs, or into none: KEYS are the
# windows; ARGV are window, hold, member, poll, then limit, cost and whether
# the cost is an estimate (1/0) for each key. Returns '0' when admitted, else
# "<seconds until all would fit> <index of the key that waits longest>".
_ADMIT_SCRIPT = (
    _NOW
    + _COST
    + """
local window, hold, member, poll = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local wait, waiting = 0, 0
for k = 1, #KEYS do
  local limit, cost = tonumber(ARGV[2 + 3 * k]), tonumber(ARGV[3 + 3 * k])
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - window)
  local entries = redis.call('ZRANGE', KEYS[k], 0, -1, 'WITHSCORES')
  local used = 0
  for i = 1, #entries, 2 do used = used + cost_of(entries[i]) end
  if used + cost > limit and #entries > 0 then
    -- Answered entries leave in score order, a window after their answer.
    -- One in flight leaves no sooner than a window from now, but an
    -- estimate may shrink when it is settled: look again after `poll`.
    local need, freed, free_in = used + cost - limit, 0, window
    for i = 1, #entries, 2 do
      freed = freed + cost_of(entries[i])
      if freed >= need then
        local score = tonumber(entries[i + 1])
        if score <= now then
          free_in = score + window - now
        elseif ARGV[4 + 3 * k] == '1' then
          free_in = poll
        end
        break
      end
    end
    if free_in > wait then wait, waiting = free_in, k end
  end
end
if wait > 0 then return tostring(wait) .. ' ' .. waiting end
local ttl = math.ceil(hold + window) + 1
for k = 1, #KEYS do
  redis.call('ZADD', KEYS[k], now + hold, member .. ':' .. ARGV[3 + 3 * k])
  if redis.call('TTL', KEYS[k]) < ttl then redis.call('EXPIRE', KEYS[k], ttl) end
end
return '0'
"""
)

# Settle an admitted request: its entries count from now (the answer came,
# so the provider has counted it) with their real cost; an empty cost takes
# the entry back (the request was never sent). ARGV are member, window, then
# the admitted and the settled cost for each key.
_SETTLE_SCRIPT = (
    _NOW
    + """
local member, window = ARGV[1], tonumber(ARGV[2])
for k = 1, #KEYS do
  redis.call('ZREM', KEYS[k], member .. ':' .. ARGV[1 + 2 * k])
  local cost = ARGV[2 + 2 * k]
  if cost ~= '' then
    redis.call('ZADD', KEYS[k], now, member .. ':' .. cost)
    if redis.call('TTL', KEYS[k]) < window + 1 then
      redis.call('EXPIRE', KEYS[k], math.ceil(window) + 1)
    end
  end
end
return 1
"""
)

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


_fail_open = False


def fail_open() -> None:
    """Let requests through, with a warning, when Redis cannot be reached.

    For a process that is the whole fleet (`manage.py process_meeting`, which
    runs without a broker): there is no other process to share a window with.
    Everywhere else a Redis error is raised, so nothing is sent unadmitted.
    """
    global _fail_open
    _fail_open = True


def _unavailable(what: str, exc: redis.RedisError) -> None:
    """Log a Redis failure; re-raise it unless this process fails open."""
    if not _fail_open:
        logger.warning("rate limiter unavailable; %s waits for it", what)
        raise exc
    logger.warning("rate limiter unavailable; letting %s through", what, exc_info=True)


# How soon a caller looks again when only a settlement can make room.
ESTIMATE_POLL_SECONDS = 1.0


class Window(NamedTuple):
    """`cost` units of `resource`, of which a window may hold `limit`.

    `estimated`: the cost is an estimate that settling may lower (tokens),
    so room can appear before any entry leaves the window.
    """

    resource: str
    cost: int
    limit: int
    estimated: bool = False


@dataclass(frozen=True)
class Permit:
    """One request's admitted entries, to settle when its answer comes (or it is not sent)."""

    member: str
    windows: tuple[Window, ...]


def try_admit(windows: Sequence[Window], hold: float) -> tuple[float, Permit | None]:
    """Admit one request into all of `windows` at once, or into none.

    Returns (0, permit) when admitted, else (seconds until all would fit,
    None). Until the permit is settled its entries count in their windows
    (at most `hold` seconds: the longest the request may be in flight). A
    cost larger than a whole limit is admitted when its window is empty, so
    it is slowed down but never refused forever.
    """
    return _try_admit(windows, hold)[:2]


def _try_admit(windows: Sequence[Window], hold: float) -> tuple[float, Permit | None, str]:
    """try_admit, and the resource that waits longest ("" when admitted)."""
    windows = tuple(w._replace(cost=max(0, int(w.cost))) for w in windows)
    member = uuid.uuid4().hex
    args: list[object] = [
        settings.RATE_LIMIT_WINDOW_SECONDS,
        hold,
        member,
        ESTIMATE_POLL_SECONDS,
    ]
    for w in windows:
        args += [w.limit, w.cost, int(w.estimated)]
    keys = [_key(w.resource) for w in windows]
    try:
        answer = _client().eval(_ADMIT_SCRIPT, len(keys), *keys, *args)
    except redis.RedisError as exc:
        _unavailable(", ".join(w.resource for w in windows), exc)
        return 0.0, None, ""
    wait, _, index = answer.decode().partition(" ")
    if float(wait) <= 0:
        return 0.0, Permit(member, windows), ""
    return float(wait), None, windows[int(index) - 1].resource


def admit(windows: Sequence[Window], hold: float) -> Permit | None:
    """Wait briefly for room in every window, or raise Deferred when the wait would be long.

    Call it right before the request is sent and settle the permit once the
    answer is in (see Permit). Waits of up to RATE_LIMIT_MAX_BLOCK_SECONDS are
    slept through in place; longer ones give the worker back by rescheduling
    the step. Returns None only when the limiter fails open.
    """
    blocked = 0.0
    while True:
        wait, permit, resource = _try_admit(windows, hold)
        if wait <= 0:
            if blocked:
                _observe_wait(windows[0].resource, blocked)
            return permit
        if blocked + wait > settings.RATE_LIMIT_MAX_BLOCK_SECONDS:
            _observe_wait(resource, blocked + wait)
            raise Deferred(wait, f"Waiting for {resource} capacity ({wait:.0f}s)")
        time.sleep(wait)
        blocked += wait


def settle(permit: Permit | None, costs: Mapping[str, int] | None = None) -> None:
    """The permit's request was answered (or failed): its entries count from now,
    for a full window, with the real cost where `costs` (by resource) knows it."""
    _settle(
        permit,
        {w.resource: str(int((costs or {}).get(w.resource, w.cost))) for w in permit.windows}
        if permit
        else {},
    )


def release(permit: Permit | None) -> None:
    """The permit's request was never sent: take its entries back."""
    _settle(permit, {w.resource: "" for w in permit.windows} if permit else {})


def _settle(permit: Permit | None, new: dict[str, str]) -> None:
    if permit is None:
        return
    args: list[object] = [permit.member, settings.RATE_LIMIT_WINDOW_SECONDS]
    for w in permit.windows:
        args += [w.cost, new[w.resource]]
    keys = [_key(w.resource) for w in permit.windows]
    try:
        _client().eval(_SETTLE_SCRIPT, len(keys), *keys, *args)
    except redis.RedisError:
        # The entries stay as admitted: counted until their hold runs out.
        logger.warning("could not settle a request on %s", keys, exc_info=True)


def acquire_slot(pool: str, member: str, limit: int, ttl: float) -> bool:
    """Hold one of `limit` slots in `pool` for `member` (idempotent); it expires after `ttl`."""
    try:
        return bool(_client().eval(_SLOT_SCRIPT, 1, _key(pool), limit, member, ttl))
    except redis.RedisError as exc:
        _unavailable(f"{member} ({pool})", exc)
        return True


def release_slot(pool: str, member: str) -> None:
    try:
        _client().zrem(_key(pool), member)
    except redis.RedisError:
        logger.warning("could not release %s from %s; it will expire", member, pool)


def slots_in_use(pool: str) -> int:
    return int(_client().eval(_COUNT_SLOTS_SCRIPT, 1, _key(pool)))
