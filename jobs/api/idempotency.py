"""`Idempotency-Key` for job submission, with Stripe's semantics.

- The same key with the same request answers the first response again (with
  `Idempotent-Replayed: true`), and only one job exists.
- The same key with a different request answers 422.
- Two concurrent requests with one key create one job: the key's row is
  inserted in the job's own transaction under a unique constraint, so the
  second insert waits for the first transaction and then fails; the loser
  answers the winner's response.
- Only successful submissions are remembered (as Stripe: a request that
  failed validation can be corrected and sent again with the same key).
- Keys expire after 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.models import ApiClient, IdempotencyKey, Job
from meeting_intel.http.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def key_from(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 400 when it is malformed."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"{HEADER} must be 1–{MAX_KEY_LENGTH} printable ASCII characters.",
        )
    return key


def fingerprint(fields: dict[str, Any], upload: Any = None) -> str:
    """A SHA-256 over the validated fields and the uploaded file's bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps(fields, sort_keys=True, cls=DjangoJSONEncoder).encode())
    if upload is not None:
        digest.update(b"\0file\0")
        upload.seek(0)
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
    return digest.hexdigest()


def _answer(record: IdempotencyKey, request_fingerprint: str) -> Response:
    if record.fingerprint != request_fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was already used with a different request.",
            {"idempotency_key": record.key},
        )
    if record.status_code is None:
        raise ApiError(
            409,
            "idempotency_in_progress",
            f"A request with this {HEADER} is still being processed; retry shortly.",
        )
    return Response(record.response, status=record.status_code, headers={REPLAYED_HEADER: "true"})


def _live(client: ApiClient, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(
        client=client, key=key, created_at__gte=timezone.now() - TTL
    ).first()


def run_once(
    client: ApiClient,
    key: str,
    request_fingerprint: str,
    create: Callable[[], tuple[Job, dict[str, Any]]],
    status_code: int = 201,
) -> Response:
    """Answer a replay from the stored response, or run `create` once under the key.

    `create` must save the job and return it with the response body; it runs
    inside the transaction that records the key.
    """
    IdempotencyKey.objects.filter(client=client, created_at__lt=timezone.now() - TTL).delete()
    existing = _live(client, key)
    if existing is not None:
        return _answer(existing, request_fingerprint)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    client=client, key=key, fingerprint=request_fingerprint
                )
        except IntegrityError:
            record = None  # another request with this key committed first
        if record is not None:
            job, body = create()
            record.job, record.status_code, record.response = job, status_code, body
            record.save(update_fields=["job", "status_code", "response"])
            return Response(body, status=status_code)
    existing = _live(client, key)
    if existing is None:
        raise ApiError(
            409,
            "idempotency_in_progress",
            f"A request with this {HEADER} is still being processed; retry shortly.",
        )
    return _answer(existing, request_fingerprint)
