"""Bearer-key authentication and per-client throttling for CMS clients.

The throttle is hand-written rather than DRF's cache-backed one: that one
reads then writes a pickled list (two round trips, racy under concurrency).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from functools import cache
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from jobs.models import ApiClient
from meeting_intel.lib.coalesce import Coalescer

logger = logging.getLogger(__name__)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.user becomes the ApiClient.

    A revoked key is refused exactly like an unknown one.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        client = active_client(key)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return client, None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes ApiKeyAuthentication in the OpenAPI schema as HTTP bearer auth."""

    target_class = "jobs.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API client's key, `Authorization: Bearer mip_…`. Create one with "
                "`python manage.py create_api_client NAME` or in Django admin."
            ),
        }


# A sliding window of request times per client, on Redis's clock (the same
# for every web process), checked and updated in one atomic round trip for
# ARGV[3] requests of the client at once (one, or those of one loop turn of
# the on-loop read; ARGV[4..] are their ids). Returns each request's answer,
# in order: 0 when allowed, else the milliseconds until it would be.
_THROTTLE_SCRIPT = """
local key, limit, window_ms = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
local count = redis.call('ZCARD', key)
local waits, added = {}, false
for i = 1, tonumber(ARGV[3]) do
  if count < limit then
    redis.call('ZADD', key, now, now .. ':' .. ARGV[3 + i])
    count, added, waits[i] = count + 1, true, 0
  else
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    waits[i] = math.max(1, tonumber(oldest[2]) + window_ms - now)
  end
end
if added then
  redis.call('PEXPIRE', key, window_ms)
end
return waits
"""
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# After Redis fails, requests skip the throttle this long instead of each
# waiting for a connection timeout of its own.
OUTAGE_SKIP_SECONDS = 5.0


@cache
def _script(url: str) -> Any:
    """One client per process (and URL); its connection pool is shared by every request thread."""
    client = redis.Redis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
    )
    return client.register_script(_THROTTLE_SCRIPT)


class _Outage:
    """When the throttle last failed, so one warning is logged per outage, not per request."""

    skip_until = 0.0
    warned = False

    @classmethod
    def active(cls) -> bool:
        return time.monotonic() < cls.skip_until

    @classmethod
    def failed(cls) -> None:
        cls.skip_until = time.monotonic() + OUTAGE_SKIP_SECONDS
        if not cls.warned:
            cls.warned = True
            logger.warning(
                "API throttle unavailable (Redis unreachable); letting requests through",
                exc_info=True,
                extra={"event": "throttle.fail_open"},
            )

    @classmethod
    def recovered(cls) -> None:
        if cls.warned:
            cls.warned = False
            logger.warning("API throttle available again", extra={"event": "throttle.recovered"})


class ClientRateThrottle(throttling.BaseThrottle):
    """API_THROTTLE_RATE requests per client in any sliding period, shared by all web processes.

    One Redis round trip per request (an atomic script on a process-wide
    client). If Redis cannot be reached the throttle fails open with a
    warning: the API keeps answering. The rate is read per request, so a
    changed setting takes effect without restarting the class.
    """

    def __init__(self) -> None:
        self._wait_ms = 0

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # the 401 for a missing key comes first
        self._wait_ms = throttle_wait_ms(client)
        return self._wait_ms == 0

    def wait(self) -> float | None:
        return self._wait_ms / 1000 if self._wait_ms else None


def _throttle_call(key_hash: str, requests: int = 1) -> dict[str, list[Any]]:
    """The script's keys and arguments for `requests` requests of the client of `key_hash`."""
    count, _, period = settings.API_THROTTLE_RATE.partition("/")
    # The key's hash, not the row id: ids can be reused (SQLite, test
    # databases) while Redis keeps the old client's history.
    key = f"meeting-intel:throttle:{key_hash[:32]}"
    ids = [uuid.uuid4().hex for _ in range(requests)]
    return {"keys": [key], "args": [int(count), _PERIODS[period[0]] * 1000, requests, *ids]}


def throttle_wait_ms(client: ApiClient) -> int:
    """Count one request of `client`: 0 when allowed, else the milliseconds until it would be.

    0 as well while Redis is unreachable (the throttle fails open, warning once).
    """
    if _Outage.active():
        return 0
    try:
        wait_ms = int(_script(settings.REDIS_URL)(**_throttle_call(client.key_hash))[0])
    except redis.RedisError:
        _Outage.failed()
        return 0
    _Outage.recovered()
    return wait_ms


# The event loop's own client per URL (redis.asyncio connections belong to a
# loop; a web process runs one for its lifetime).
_async_scripts: dict[str, tuple[asyncio.AbstractEventLoop, Any]] = {}


def _async_script(url: str) -> Any:
    loop = asyncio.get_running_loop()
    found = _async_scripts.get(url)
    if found is None or found[0] is not loop:
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        found = _async_scripts[url] = (loop, client.register_script(_THROTTLE_SCRIPT))
    return found[1]


async def athrottle_wait_ms(client: ApiClient) -> int:
    """throttle_wait_ms on the event loop (redis.asyncio): the same script, window and
    fail-open; the requests of one loop turn are counted in one call per client."""
    if _Outage.active():
        return 0
    return await _athrottle.get(client.key_hash) or 0


async def _athrottle_batch(requests: dict[str, int]) -> dict[str, list[int]]:
    """The requests of one loop turn, by client key hash: one script call per client, all at once."""
    hashes = list(requests)
    waits = await asyncio.gather(*(_athrottle_client(h, requests[h]) for h in hashes))
    return dict(zip(hashes, waits, strict=True))


async def _athrottle_client(key_hash: str, requests: int) -> list[int]:
    try:
        answer = await _async_script(settings.REDIS_URL)(**_throttle_call(key_hash, requests))
    except redis.RedisError:
        _Outage.failed()
        return [0] * requests
    _Outage.recovered()
    return [int(wait) for wait in answer]


_athrottle: Coalescer[str, int] = Coalescer(_athrottle_batch)


async def close_async_clients() -> None:
    """Close this loop's throttle clients (tests; a server keeps them until the process ends)."""
    loop = asyncio.get_running_loop()
    for url, (owner, script) in list(_async_scripts.items()):
        del _async_scripts[url]
        if owner is loop:
            await script.registered_client.aclose()


def active_client(key: str) -> ApiClient | None:
    """The unrevoked client holding `key`, or None."""
    client = ApiClient.objects.filter(key_hash=ApiClient.hash_key(key.strip())).first()
    return client if client is not None and client.is_active else None


def _active_key(authorization: str) -> bool:
    scheme, _, key = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip()) and active_client(key) is not None


def _staff_may_add_jobs(cookie_header: str) -> bool:
    from http.cookies import SimpleCookie
    from importlib import import_module

    from django.contrib.auth import get_user_model

    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header is no session
        return False
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    user_id = session.get("_auth_user_id")
    if user_id is None:
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).first()
    return user is not None and user.has_perm("jobs.add_job")


def may_upload(scope: Any) -> bool:
    """Before an upload's body is read: does it carry an active API key (API) or a
    staff session that may add jobs (admin)? A wrong answer here only means the
    body is refused early; the view checks again.

    This runs before Django's request cycle, so nothing else hands its
    connection back: without the close on both sides a connection broken by a
    database outage would stay with this thread and fail every later upload."""
    from django.db import close_old_connections

    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
    close_old_connections()
    try:
        if scope.get("path", "").startswith("/api/"):
            return _active_key(headers.get(b"authorization", ""))
        return _staff_may_add_jobs(headers.get(b"cookie", ""))
    finally:
        close_old_connections()


async def upload_allowed(scope: Any) -> bool:
    from asgiref.sync import sync_to_async

    return await sync_to_async(may_upload, thread_sensitive=True)(scope)


def client_of(request: Any) -> ApiClient:
    return request.user
