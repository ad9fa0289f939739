"""Sending one webhook attempt, and deciding what happens next.

An attempt has a total deadline (not only a per-read timeout), reads at most
RESPONSE_EXCERPT_BYTES of the answer, and never follows redirects.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import WebhookAttempt, WebhookDelivery
from .signing import signature_header

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_BYTES = 2048
USER_AGENT = "MeetingIntel-Webhooks/1.0"


@dataclass
class Outcome:
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int
    retry_after: float | None = None


def _post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    status, error, excerpt, retry_after = None, "", "", None
    try:
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(min(5.0, settings.WEBHOOK_TIMEOUT_SECONDS), settings.WEBHOOK_TIMEOUT_SECONDS),
            allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
            retry_after = _parse_retry_after(response.headers.get("retry-after"))
            chunks, size = [], 0
            for chunk in response.iter_content(512):
                chunks.append(chunk)
                size += len(chunk)
                if size >= RESPONSE_EXCERPT_BYTES:
                    break
                if time.monotonic() > deadline:
                    error = "deadline exceeded while reading the response"
                    break
            excerpt = b"".join(chunks)[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")
    except requests.Timeout:
        error = "timed out"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    if time.monotonic() > deadline and not error:
        error = "deadline exceeded"
    duration = int((time.monotonic() - started) * 1000)
    return Outcome(status, error, excerpt, duration, retry_after)


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def attempt(delivery: WebhookDelivery) -> None:
    """Send the delivery once, log the attempt, and schedule a retry or settle it."""
    now = timezone.now()
    secrets = [delivery.job.webhook_secret]
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if any(secrets):
        headers["webhook-signature"] = signature_header(
            secrets, delivery.webhook_id, now, delivery.body
        )
    outcome = _post(delivery.url, delivery.body.encode(), headers)
    succeeded = outcome.status_code is not None and 200 <= outcome.status_code < 300
    succeeded = succeeded and not outcome.error
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            created_at=now,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
        )
        delivery.attempt_count += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if succeeded:
            delivery.state = WebhookDelivery.State.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif outcome.status_code == 410:
            delivery.state = WebhookDelivery.State.GONE
            delivery.next_attempt_at = None
        else:
            delay = next_delay(delivery.attempt_count, outcome.retry_after)
            if delay is None:
                delivery.state = WebhookDelivery.State.EXHAUSTED
                delivery.next_attempt_at = None
            else:
                delivery.state = WebhookDelivery.State.RETRYING
                delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save()
    log = logger.info if succeeded else logger.warning
    log(
        "webhook %s attempt %d to %s: %s %s",
        delivery.webhook_id,
        delivery.attempt_count,
        delivery.url,
        outcome.status_code,
        outcome.error,
    )


def next_delay(attempts_made: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted.

    The schedule's first entry is the first attempt itself; entry N is the
    wait before attempt N+1. Jitter spreads retries by up to 10 %; a
    `Retry-After` is honoured up to the schedule's longest wait.
    """
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made]
    delay += random.uniform(0, delay * 0.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay
