"""Staff and CMS control of webhooks: redelivery, secret rotation, test events."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import ApiClient
from webhooks import sender
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSecret, new_webhook_id


def redeliver(delivery: WebhookDelivery) -> bool:
    """Send the same event again (same webhook-id and body) on a fresh schedule.

    Redelivering is staff's or the client's word that the endpoint is back,
    so it also clears a 410 `gone` mark on the endpoint. While an attempt is
    being sent (claimed, before its deadline) nothing changes and False is
    returned: that attempt is the redelivery, and a second would send twice.
    """
    from webhooks.tasks import deliver

    now = timezone.now()
    with transaction.atomic():
        idle = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        restarted = (
            WebhookDelivery.objects.filter(id=delivery.id)
            .filter(idle)
            .update(
                state=WebhookDelivery.State.PENDING,
                attempt_count=0,
                next_attempt_at=now,
                claimed_until=None,
                last_error="",
            )
        )
        if not restarted:
            return False
        WebhookEndpoint.objects.filter(url=delivery.url).update(gone_at=None, gone_reason="")
        transaction.on_commit(lambda: deliver.delay(delivery.id))
    return True


def rotate_secret(client: ApiClient, overlap_seconds: float | None = None) -> WebhookSecret:
    """Give `client` a new signing secret; the ones it had keep signing for the overlap.

    During the overlap (WEBHOOK_SECRET_OVERLAP_SECONDS unless given) every
    event carries a signature per secret, so the CMS can switch its verifier
    to the new secret whenever it likes. Returns the new secret, which the
    caller shows to the client once.
    """
    if overlap_seconds is None:
        overlap_seconds = settings.WEBHOOK_SECRET_OVERLAP_SECONDS
    now = timezone.now()
    with transaction.atomic():
        # Serialise concurrent rotations of one client.
        ApiClient.objects.select_for_update().filter(id=client.id).first()
        WebhookSecret.objects.filter(client=client, expires_at__isnull=True).update(
            expires_at=now + timedelta(seconds=overlap_seconds)
        )
        return WebhookSecret.objects.create(client=client, created_at=now)


def expire_secret(secret: WebhookSecret) -> None:
    """Stop signing with `secret` now (e.g. it leaked)."""
    WebhookSecret.objects.filter(id=secret.id).update(expires_at=timezone.now())


def send_test_event(url: str, secrets: list[str]) -> tuple[str, sender.Outcome]:
    """POST a signed `test.event` to `url` now, without recording a delivery.

    For checking an endpoint (reachable, allowed by the guard, verifying our
    signatures) before real jobs use it. Returns the webhook-id and outcome.
    """
    webhook_id = new_webhook_id()
    body = json.dumps(
        {
            "type": "test.event",
            "timestamp": timezone.now().isoformat(),
            "data": {"message": "A test event from the Meeting Intelligence Platform."},
        },
        separators=(",", ":"),
    )
    return webhook_id, sender.post(url, webhook_id, body, secrets)
