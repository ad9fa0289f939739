"""API key → client, remembered in process for a few seconds, for the hot read path.

`GET /api/v1/jobs/{id}/` (jobs/api/job_read.py) is what CMS pollers call by the
hundred per second, and a database lookup of the key cost as much as reading
the job itself. This map remembers an *active* key's client for
API_KEY_CACHE_SECONDS (default 5 s; 0 turns it off). The bound on revocation
is therefore that many seconds: a key revoked in admin, with
`create_api_client --revoke`, or by another process stops working on that path
within API_KEY_CACHE_SECONDS; every other endpoint looks the key up per request
and refuses it at once. Saving or deleting an ApiClient through the ORM in this
process forgets its entries at once. Unknown and revoked keys are never
remembered, so they always reach the database (and DRF's 401).

Hand-written (a dict of expiries) rather than cachetools' TTLCache: that one
needs a lock around every read from request threads, this needs none (each
dict operation is atomic under the GIL), and it is a dozen lines.
"""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models.signals import post_delete, post_save

from jobs.models import ApiClient
from meeting_intel.lib.async_db import own_connections

# The most keys remembered; past it, expired entries go, then everything.
MAX_ENTRIES = 4096

_entries: dict[str, tuple[float, ApiClient]] = {}


def active_client_cached(key: str) -> ApiClient | None:
    """The unrevoked client holding `key`, from memory when looked up in the last few seconds."""
    from jobs.api.auth import active_client

    key_hash = ApiClient.hash_key(key.strip())
    now = time.monotonic()
    entry = _entries.get(key_hash)
    if entry is not None and entry[0] > now:
        return entry[1]
    client = active_client(key)
    ttl = settings.API_KEY_CACHE_SECONDS
    if client is None or ttl <= 0:
        _entries.pop(key_hash, None)
        return client
    if len(_entries) >= MAX_ENTRIES:
        for stale in [h for h, (expires, _) in list(_entries.items()) if expires <= now]:
            _entries.pop(stale, None)
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
    _entries[key_hash] = (now + ttl, client)
    return client


# Key hash → the lookup under way for it on the event loop, so a hundred
# requests arriving as an entry expires share one query instead of a hundred.
_lookups: dict[str, asyncio.Future[ApiClient | None]] = {}


async def aactive_client_cached(key: str) -> ApiClient | None:
    """active_client_cached on the event loop: a remembered key costs no thread hop; a
    lookup (once per key per API_KEY_CACHE_SECONDS) is shared by the requests awaiting it."""
    key_hash = ApiClient.hash_key(key.strip())
    entry = _entries.get(key_hash)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    lookup = _lookups.get(key_hash)
    if lookup is None or lookup.get_loop() is not asyncio.get_running_loop():
        lookup = _lookups[key_hash] = asyncio.ensure_future(
            sync_to_async(own_connections(active_client_cached))(key)
        )
        lookup.add_done_callback(
            lambda done: _lookups.pop(key_hash, None) if _lookups.get(key_hash) is done else None
        )
    return await asyncio.shield(lookup)


def forget(key_hash: str | None = None) -> None:
    """Drop one key's entry (a client saved or deleted here), or every entry."""
    if key_hash is None:
        _entries.clear()
    else:
        _entries.pop(key_hash, None)


def _client_changed(instance: ApiClient, **_: object) -> None:
    # Its old hash too: issue_key() may just have replaced it on this instance.
    for key_hash, (_, client) in list(_entries.items()):
        if client.pk == instance.pk:
            _entries.pop(key_hash, None)


post_save.connect(_client_changed, sender=ApiClient, weak=False)
post_delete.connect(_client_changed, sender=ApiClient, weak=False)
