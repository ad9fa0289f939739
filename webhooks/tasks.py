"""Webhook tasks: send one delivery, and sweep deliveries that are due."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from . import sender
from .models import WebhookDelivery

DUE_STATES = (WebhookDelivery.State.PENDING, WebhookDelivery.State.RETRYING)


@shared_task(
    name="webhooks.deliver",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=10,
)
def deliver(delivery_id: int) -> None:
    # Claim: move next_attempt_at forward past the attempt's deadline, so a
    # duplicate message or the sweeper cannot send the same attempt twice.
    now = timezone.now()
    hold = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 4)
    claimed = WebhookDelivery.objects.filter(
        id=delivery_id, state__in=DUE_STATES, next_attempt_at__lte=now
    ).update(next_attempt_at=hold)
    if not claimed:
        return
    delivery = WebhookDelivery.objects.select_related("job").get(id=delivery_id)
    sender.attempt(delivery)
    delivery.refresh_from_db(fields=["state", "next_attempt_at"])
    if delivery.state == WebhookDelivery.State.RETRYING and delivery.next_attempt_at:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if wait <= settings.MAX_COUNTDOWN_SECONDS:
            deliver.apply_async(args=[delivery_id], countdown=max(0.0, wait) + 0.05)
        # Longer waits are picked up by the sweep, so no countdown outlives
        # the broker's visibility timeout.


@shared_task(name="webhooks.sweep")
def sweep() -> int:
    due = WebhookDelivery.objects.filter(
        state__in=DUE_STATES, next_attempt_at__lte=timezone.now()
    ).values_list("id", flat=True)[:500]
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)

