"""Sending one webhook attempt, and deciding what happens next.

Every POST goes through the SSRF guard (meeting_intel.lib.safe_http): a total deadline of
WEBHOOK_TIMEOUT_SECONDS over connecting, sending and reading, at most
RESPONSE_EXCERPT_BYTES of the answer read, redirects never followed.
2xx settles the delivery; 410 marks the endpoint gone; a refused URL is not
retried; anything else is retried on WEBHOOK_RETRY_SCHEDULE until it is
exhausted (the dead letter).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meeting_intel.lib import safe_http as ssrf
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import secrets_for, signed_headers

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_BYTES = 2048
USER_AGENT = "MeetingIntel-Webhooks/1.0"
State = WebhookDelivery.State


@dataclass
class Outcome:
    """What one POST came to. `refused`: the guard refused the URL for good."""

    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int
    retry_after: float | None = None
    refused: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


def post(url: str, webhook_id: str, body: str, secrets: list[str]) -> Outcome:
    """POST one signed event (fresh timestamp) and report what happened; never raises."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(webhook_id, body, secrets, timezone.now()),
    }
    deadline = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = ssrf.safe_request(
            "POST",
            url,
            timeout=deadline,
            max_bytes=RESPONSE_EXCERPT_BYTES,
            headers=headers,
            data=body.encode(),
        )
    except ssrf.UnsafeURL as exc:
        return Outcome(None, f"refused: {exc.reason}"[:500], "", took(), refused=not exc.transient)
    except ssrf.DeadlineExceeded as exc:
        partial = exc.response
        return Outcome(
            partial.status_code if partial else None,
            f"deadline of {deadline:g}s exceeded",
            _excerpt(partial.content if partial else b""),
            took(),
        )
    except ssrf.FetchError as exc:
        return Outcome(None, str(exc)[:500], "", took())
    return Outcome(
        response.status_code,
        "",
        _excerpt(response.content),
        took(),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def _excerpt(content: bytes) -> str:
    # Postgres text cannot hold NUL, and a receiver may send anything.
    return content.decode("utf-8", "replace").replace("\x00", "\ufffd")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def next_delay(attempts_made: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted.

    The schedule's first entry is the wait before the first attempt; entry N
    is the wait before attempt N+1. Jitter adds up to 10 %, so endpoints that
    failed together are not retried together. A `Retry-After` lengthens the
    wait, up to WEBHOOK_RETRY_AFTER_MAX_SECONDS.
    """
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made]
    delay += random.uniform(0, delay * 0.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return delay


def gone_endpoint(url: str) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(url=url, gone_at__isnull=False).first()


def attempt(delivery: WebhookDelivery) -> WebhookAttempt | None:
    """Send a claimed delivery once, log the attempt, and settle or reschedule it.

    A delivery to an endpoint already marked gone is settled as `gone`
    without a request (and returns None).
    """
    endpoint = gone_endpoint(delivery.url)
    if endpoint is not None:
        _save(
            delivery,
            state=State.GONE,
            next_attempt_at=None,
            claimed_until=None,
            last_error=gone_note(endpoint),
        )
        return None
    started_at = timezone.now()
    outcome = post(delivery.url, delivery.webhook_id, delivery.body, secrets_for(delivery.job))
    number = delivery.attempt_count + 1
    fields: dict[str, Any] = {
        "attempt_count": number,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "next_attempt_at": None,
        "claimed_until": None,
    }
    with transaction.atomic():
        logged = WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            created_at=started_at,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
        )
        if outcome.succeeded:
            fields.update(state=State.SUCCEEDED, delivered_at=timezone.now())
        elif outcome.refused:
            fields.update(state=State.REFUSED)
        elif outcome.status_code == 410:
            fields.update(state=State.GONE, last_error="the endpoint answered 410 Gone")
            _mark_gone(delivery)
        else:
            delay = next_delay(number, outcome.retry_after)
            if delay is None:
                fields.update(state=State.EXHAUSTED)
            else:
                fields.update(
                    state=State.RETRYING, next_attempt_at=timezone.now() + timedelta(seconds=delay)
                )
        _save(delivery, **fields)
    log = logger.info if outcome.succeeded else logger.warning
    log(
        "webhook %s attempt %d to %s: %s %s -> %s",
        delivery.webhook_id,
        number,
        delivery.url,
        outcome.status_code,
        outcome.error,
        delivery.state,
    )
    return logged


def _save(delivery: WebhookDelivery, **fields: Any) -> None:
    WebhookDelivery.objects.filter(id=delivery.id).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)


def gone_note(endpoint: WebhookEndpoint) -> str:
    return f"not sent: the endpoint has been gone since {endpoint.gone_at:%Y-%m-%d %H:%M} UTC"


def _mark_gone(delivery: WebhookDelivery) -> None:
    """410 stops retries for the whole endpoint, not only this event."""
    now = timezone.now()
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        url=delivery.url,
        defaults={"gone_at": now, "gone_reason": f"410 Gone answering {delivery.webhook_id}"},
    )
    WebhookDelivery.objects.filter(url=delivery.url, state__in=WebhookDelivery.DUE_STATES).exclude(
        id=delivery.id
    ).update(state=State.GONE, next_attempt_at=None, last_error=gone_note(endpoint))
