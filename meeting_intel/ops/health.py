"""GET /healthz: the process answers. GET /readyz: whether this web process can serve, part by part; and the
container healthcheck that probes it (`python -m meeting_intel.ops.health URL`).

``/healthz`` only says the process answers. ``/readyz`` checks
what serving needs: the database, the Celery broker and the channel layer
(live status), each within READYZ_TIMEOUT_SECONDS. 200 when all answer; 503
naming the failing parts otherwise. Details of a failure go to the log, not
to the (unauthenticated) caller.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    timeout = settings.READYZ_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_channel_layer() -> None:
    """A message sent to a fresh channel comes back: the layer works end to end."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel("readyz.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "readyz.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("the channel layer answered with another message")

    async def bounded() -> None:
        await asyncio.wait_for(round_trip(), settings.READYZ_TIMEOUT_SECONDS)

    async_to_sync(bounded)()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers; nothing is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            logger.warning("readyz: %s is not ready: %s: %s", name, type(exc).__name__, exc)
            results[name] = f"failing ({type(exc).__name__})"
        else:
            results[name] = "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": results}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def probe_host(allowed_hosts: list[str]) -> str:
    """A Host header Django accepts: the first concrete ALLOWED_HOSTS entry."""
    for host in allowed_hosts:
        host = host.lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def probe(url: str) -> int:
    """Container healthcheck: exit status 0 when `url` answers 200.

    Sends a Host that ALLOWED_HOSTS accepts, so probing 127.0.0.1 works
    whatever names production serves.
    """
    import os
    import urllib.error
    import urllib.request

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")
    request = urllib.request.Request(url, headers={"Host": probe_host(settings.ALLOWED_HOSTS)})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own URL
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"probe {url}: {exc}")
        return 1


if __name__ == "__main__":
    import sys

    sys.exit(probe(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/readyz"))
