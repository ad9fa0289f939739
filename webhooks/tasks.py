"""Webhook tasks: send one delivery, and sweep deliveries that are due."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from webhooks import sender
from webhooks.models import WebhookDelivery

SWEEP_BATCH = 500


def claim(delivery_id: int) -> bool:
    """Take the right to send a due delivery's next attempt; True for exactly one caller.

    The conditional update moves `next_attempt_at` past the attempt's
    deadline, so a duplicate message, the sweep or a second worker cannot
    send the same attempt. If this worker dies mid-attempt, the delivery is
    due again once the hold passes and the sweep picks it up.
    """
    now = timezone.now()
    hold = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 4)
    return bool(
        WebhookDelivery.objects.filter(
            id=delivery_id, state__in=WebhookDelivery.DUE_STATES, next_attempt_at__lte=now
        ).update(next_attempt_at=hold, claimed_until=hold)
    )


@shared_task(
    name="webhooks.deliver",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=10,
)
def deliver(delivery_id: int) -> None:
    if not claim(delivery_id):
        return
    delivery = WebhookDelivery.objects.select_related("job", "job__client").get(id=delivery_id)
    sender.attempt(delivery)
    if delivery.state == WebhookDelivery.State.RETRYING and delivery.next_attempt_at:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        # Longer waits are left to the sweep, so no countdown outlives the
        # broker's visibility timeout.
        if wait <= settings.MAX_COUNTDOWN_SECONDS:
            deliver.apply_async(args=[delivery_id], countdown=max(0.0, wait) + 0.05)


@shared_task(name="webhooks.sweep")
def sweep() -> int:
    """Queue every delivery that is due: lost enqueues, long waits, dead workers' holds."""
    due = list(
        WebhookDelivery.objects.filter(
            state__in=WebhookDelivery.DUE_STATES, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)
