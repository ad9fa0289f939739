"""`GET /api/v1/jobs/{id}/` outside DRF's dispatch: the read CMS pollers make by the hundred.

The answer is the one `JobDetail` (the DRF view) gives, byte for byte: the
same body as `JobSerializer` (tests/jobs/test_api_job_read.py compares the two for
every state), the same 404 and 429 error objects and headers. What it skips
is the cost around that answer: DRF's request wrapping, negotiation and
rendering machinery, the ORM compiling the same query for every request, and
a database lookup of the key (key_cache: an active key's client is
remembered for API_KEY_CACHE_SECONDS, which bounds how long a revoked key
keeps working here).

Under a server on PostgreSQL the read never leaves the event loop: the ASGI
handler's on-loop lane (meeting_intel/http/async_middleware.py, for views
with `serves_on_loop`) skips Django's per-request thread, the throttle's one
round trip goes through redis.asyncio (the same script and fail-open), and
the query through the async read pool (meeting_intel/lib/async_db.py); only
a key lookup, once per key per API_KEY_CACHE_SECONDS, takes a thread. The
reads a process takes in one turn of its event loop share one query and count
in one throttle call per client (meeting_intel/lib/coalesce.py), and the polls
of an unchanged job within one second share its rendered body (`_Rendered`).
On
SQLite, with DATABASE_READ_POOL_MAX_SIZE=0, and under Django's test client,
the database work, the throttle and a key lookup happen in one hop to
Django's database thread instead.

Anything unusual goes to `JobDetail` itself, which also keeps describing the
endpoint in the OpenAPI schema: another method, an `Accept` other than JSON, a
`?format=`, a missing, malformed, unknown or revoked key (its 401).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from functools import cache
from typing import Any
from uuid import UUID

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.core import signing
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer

from jobs.api.auth import athrottle_wait_ms, throttle_wait_ms
from jobs.api.key_cache import aactive_client_cached, active_client_cached
from jobs.api.serializers import JobSerializer
from jobs.models import ApiClient, Job
from jobs.tokens import make_viewer_token, results_url, status_url
from jobs.usage import job_usage
from meeting_intel.http.errors import error_body
from meeting_intel.lib import async_db
from meeting_intel.lib.coalesce import Coalescer

# The columns JobSerializer reads: its model fields, and what `template`, `error`,
# `usage` and the viewer links are computed from. Tests prove that reading one
# job costs one query, so none is missing.
_MODEL_FIELDS = {f.name for f in Job._meta.concrete_fields}
COLUMNS = (
    *(name for name in JobSerializer.Meta.fields if name in _MODEL_FIELDS),
    "analysis_template",
    "error_code",
    "transcription_provider",
    "transcribed_seconds",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
    "viewer_token_version",
)
_ACCEPTED = ("", "*/*", "application/json")
_ALLOW = "GET, HEAD, OPTIONS"  # what DRF's RetrieveAPIView answers in `Allow`
_renderer = JSONRenderer()
_datetime = serializers.DateTimeField()


class _Query:
    """The job-and-meeting-id query, written once per database vendor, with Django's converters."""

    def __init__(self) -> None:
        meeting = Job._meta.get_field("meeting").related_model._meta
        quote = connection.ops.quote_name
        job_table, meeting_table = Job._meta.db_table, meeting.db_table
        # In the model's order: Model.from_db fills the other fields as deferred in that order.
        self.fields = [f for f in Job._meta.concrete_fields if f.name in COLUMNS]
        self.attnames = [f.attname for f in self.fields]
        columns = [f"{quote(job_table)}.{quote(f.column)}" for f in self.fields]
        meeting_pk = meeting.pk
        job_fk = meeting.get_field("job")
        job_id = f"{quote(job_table)}.{quote('id')}"
        client_id = f"{quote(job_table)}.{quote(Job._meta.get_field('client').column)}"
        select = f"SELECT {', '.join(columns)}, {quote(meeting_table)}.{quote(meeting_pk.column)}"
        joined = (
            f"FROM {quote(job_table)} LEFT OUTER JOIN {quote(meeting_table)} "
            f"ON {quote(meeting_table)}.{quote(job_fk.column)} = {job_id}"
        )
        self.sql = f"{select} {joined} WHERE {job_id} = %s AND {client_id} = %s"
        # The jobs of one loop turn's reads (PostgreSQL: arrays of ids and of clients);
        # each row also says its client, so a read takes only its own client's job.
        self.batch_sql = (
            f"{select}, {client_id} {joined} WHERE {job_id} = ANY(%s) AND {client_id} = ANY(%s)"
        )
        self.id_index = self.attnames.index("id")
        self.converters: list[tuple[int, Any, list[Callable[..., Any]]]] = []
        for index, field in enumerate([*self.fields, meeting_pk]):
            expression = field.get_col(field.model._meta.db_table)
            found = connection.ops.get_db_converters(expression) + field.get_db_converters(
                connection
            )
            if found:
                self.converters.append((index, expression, found))

    def params(self, pk: UUID, client_id: int, db: BaseDatabaseWrapper) -> list[Any]:
        return [Job._meta.pk.get_db_prep_value(pk, db), client_id]

    def row(self, pk: UUID, client_id: int) -> tuple[Any, ...] | None:
        db = connections[DEFAULT_DB_ALIAS]
        with db.cursor() as cursor:
            cursor.execute(self.sql, self.params(pk, client_id, db))
            return cursor.fetchone()

    def job(self, found: tuple[Any, ...], db: BaseDatabaseWrapper) -> tuple[Job, UUID | None]:
        """The job and its meeting's id from a fetched row."""
        values = list(found)
        for index, expression, converters in self.converters:
            for convert in converters:
                values[index] = convert(values[index], expression, db)
        job = Job.from_db(db.alias, self.attnames, values[:-1])
        return job, values[-1]


@cache
def _query(vendor: str) -> _Query:
    return _Query()


def job_body(job: Job, meeting_id: UUID | None) -> dict[str, Any]:
    """JobSerializer(job).data, field for field, with one viewer token signed instead of two."""
    token = make_viewer_token(job)
    error = job.error
    return {
        "id": str(job.id),
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "message": job.message,
        "title": job.title,
        "language": job.language,
        "summary_language": job.summary_language,
        "speakers_expected": job.speakers_expected,
        "template": job.template_name,
        "instructions": job.instructions,
        "participants": job.participants,
        "vocabulary": job.vocabulary,
        "webhook_payload": job.webhook_payload,
        "external_id": job.external_id,
        "metadata": job.metadata,
        "attempts": job.attempts,
        "error": None if error is None else {"code": error["code"], "message": error["message"]},
        "next_attempt_at": _datetime.to_representation(job.next_attempt_at),
        "created_at": _datetime.to_representation(job.created_at),
        "started_at": _datetime.to_representation(job.started_at),
        "completed_at": _datetime.to_representation(job.completed_at),
        "meeting_id": str(meeting_id) if meeting_id else None,
        "status_url": status_url(job, token),
        "results_url": results_url(job, meeting_id, token),
        "usage": job_usage(job),
    }


def _json(status: int, data: dict[str, Any], **headers: str) -> HttpResponse:
    return _body(status, _renderer.render(data), **headers)


def _body(status: int, body: bytes, **headers: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Allow"] = _ALLOW
    for name, value in headers.items():
        response[name] = value
    return response


def _throttled(wait_ms: int) -> HttpResponse:
    wait = max(1, math.ceil(wait_ms / 1000))
    body = error_body(
        "rate_limited", f"Too many requests; retry in {wait} s.", {"retry_after": wait}
    )
    return _json(429, body, **{"Retry-After": str(wait)})


class _Rendered:
    """The 200 bodies rendered in the current second, by fetched row.

    A body is a function of the row, the settings and the second its viewer
    token is stamped with (TimestampSigner signs whole seconds), so the polls
    of an unchanged job within one second get the same bytes: the first one
    renders them, the others reuse them. A changed row is another key, so a
    state change shows at once. Cleared when the second turns (or a setting
    changes, in tests); at most MAX_ENTRIES rows a second are remembered.
    """

    MAX_ENTRIES = 1024
    second = -1
    bodies: dict[tuple[Any, ...], bytes] = {}

    @classmethod
    def body(cls, query: _Query, row: tuple[Any, ...], db: BaseDatabaseWrapper) -> bytes:
        second = _signing_second()
        if second != cls.second:
            cls.bodies, cls.second = {}, second
        try:
            return cls.bodies[row]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: rendered every time
            return _render(query, row, db)
        body = _render(query, row, db)
        # Only if the token was stamped in the second the key says.
        if _signing_second() == second and len(cls.bodies) < cls.MAX_ENTRIES:
            cls.bodies[row] = body
        return body

    @classmethod
    def forget(cls, **_: object) -> None:
        cls.bodies, cls.second = {}, -1


def _render(query: _Query, row: tuple[Any, ...], db: BaseDatabaseWrapper) -> bytes:
    return _renderer.render(job_body(*query.job(row, db)))


def _signing_second() -> int:
    """The second a viewer token signed now is stamped with (django.core.signing's clock)."""
    return int(signing.time.time())


setting_changed.connect(_Rendered.forget, weak=False)


def _found(query: _Query, row: tuple[Any, ...] | None, db: BaseDatabaseWrapper) -> HttpResponse:
    if row is None:
        return _json(404, error_body("not_found", str(exceptions.NotFound.default_detail)))
    return _body(200, _Rendered.body(query, row, db))


def _answer(key: str, pk: UUID) -> HttpResponse | None:
    """The response, in the database thread; None when DRF must answer (no such active key)."""
    client: ApiClient | None = active_client_cached(key)
    if client is None:
        return None
    wait_ms = throttle_wait_ms(client)
    if wait_ms:
        return _throttled(wait_ms)
    query = _query(connection.vendor)
    return _found(query, query.row(pk, client.pk), connections[DEFAULT_DB_ALIAS])


async def _answer_on_loop(key: str, pk: UUID) -> HttpResponse | None:
    """_answer without leaving the event loop: the remembered key, the throttle on
    redis.asyncio, the query on the async read pool (a key lookup, once per key
    per API_KEY_CACHE_SECONDS, still takes Django's thread). The reads of one loop
    turn share one query and their throttle counts one script call per client
    (meeting_intel/lib/coalesce.py)."""
    client = await aactive_client_cached(key)
    if client is None:
        return None
    # The throttle's round trip and the query's at once, so a request waits for one
    # (on a busy machine each round trip also waits for the other server to be
    # scheduled). A refused request's primary-key read goes unused.
    wait_ms, found = await asyncio.gather(athrottle_wait_ms(client), _reads.get((pk, client.pk)))
    if wait_ms:
        return _throttled(wait_ms)
    db = connections[DEFAULT_DB_ALIAS]  # its converters and features only: no I/O
    return _found(_query(db.vendor), found, db)


async def _read_batch(
    reads: dict[tuple[UUID, int], int],
) -> dict[tuple[UUID, int], list[tuple[Any, ...] | None]]:
    """The rows of one loop turn's reads, by (job id, client id), in one query."""
    db = connections[DEFAULT_DB_ALIAS]  # its converters and features only: no I/O
    query = _query(db.vendor)
    ids = list({Job._meta.pk.get_db_prep_value(pk, db) for pk, _ in reads})
    clients = list({client_id for _, client_id in reads})
    rows = await async_db.fetchall(query.batch_sql, [ids, clients])
    found = {(row[query.id_index], row[-1]): row[:-1] for row in rows}
    return {
        (pk, client_id): [found.get((Job._meta.pk.get_db_prep_value(pk, db), client_id))] * asks
        for (pk, client_id), asks in reads.items()
    }


_reads: Coalescer[tuple[UUID, int], tuple[Any, ...] | None] = Coalescer(_read_batch)


def _on_loop(request: HttpRequest) -> bool:
    """Served by the ASGI handler's on-loop lane (meeting_intel/http/async_middleware.py),
    which takes this view's GETs when `async_db.available()`.

    Django's test client runs each request on a throwaway loop, where a
    process-wide async pool cannot live: its requests take the thread path.
    """
    return getattr(request, "served_on_loop", False)


def _bearer_key(request: HttpRequest) -> str | None:
    """The key of a plain JSON GET with a well-formed Bearer header, else None."""
    meta = request.META  # request.headers would build a map of every header
    if request.method != "GET" or meta.get("HTTP_ACCEPT", "").strip() not in _ACCEPTED:
        return None
    scheme, _, key = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    if meta.get("QUERY_STRING") and "format" in request.GET:
        return None
    return key


def fast_job_detail(drf_view: Callable[..., HttpResponse]) -> Callable[..., Any]:
    """`drf_view` (JobDetail.as_view()) with its plain GETs answered here.

    The function carries the DRF view's `cls` and `initkwargs`, so drf-spectacular
    describes the endpoint from JobDetail exactly as before.
    """
    delegate = sync_to_async(drf_view)
    # Outside Django's request cycle (the on-loop lane), the view's thread cleans up itself.
    delegate_on_loop = sync_to_async(async_db.own_connections(drf_view))

    async def view(request: HttpRequest, pk: UUID) -> HttpResponse:
        on_loop = _on_loop(request)
        key = _bearer_key(request)
        if key is not None:
            if on_loop:
                response = await _answer_on_loop(key, pk)
            else:
                response = await sync_to_async(_answer)(key, pk)
            if response is not None:
                return response
        return await (delegate_on_loop if on_loop else delegate)(request, pk=pk)

    markcoroutinefunction(view)
    view.serves_on_loop = async_db.available  # type: ignore[attr-defined]
    view.cls = drf_view.cls  # type: ignore[attr-defined]
    view.initkwargs = drf_view.initkwargs  # type: ignore[attr-defined]
    view.csrf_exempt = True  # type: ignore[attr-defined]
    view.__name__ = view.__qualname__ = drf_view.__name__
    view.__module__ = drf_view.__module__
    view.__doc__ = drf_view.__doc__
    return view
