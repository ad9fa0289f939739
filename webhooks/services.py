"""Staff and CMS control of deliveries."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import WebhookDelivery


def redeliver(delivery: WebhookDelivery) -> None:
    """Send the same event again (same webhook-id and body) on a fresh schedule."""
    from .tasks import deliver

    WebhookDelivery.objects.filter(id=delivery.id).update(
        state=WebhookDelivery.State.PENDING, attempt_count=0, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: deliver.delay(delivery.id))
