"""The webhook outbox: one delivery per event, every attempt logged, endpoints
that answered 410, and per-client signing secrets that can rotate."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookDelivery(models.Model):
    """An event owed to an endpoint.

    Written in the same transaction as the job's terminal state (the outbox),
    then sent by a separate task. `webhook_id` and `body` never change, so every
    retry carries the same event; only the signature timestamp is fresh.
    `next_attempt_at` doubles as the sending claim: a task that claims the
    delivery moves it past the attempt's deadline (see tasks.deliver).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        # Dead letter: the retry schedule ran out. Kept, visible, redeliverable.
        EXHAUSTED = "exhausted"
        # The endpoint answered 410 Gone (now or for an earlier event).
        GONE = "gone"
        # The URL is refused by the SSRF guard (e.g. it resolves to a private address).
        REFUSED = "refused"

    DUE_STATES = (State.PENDING, State.RETRYING)

    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id)
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="webhook_deliveries")
    event_type = models.CharField(max_length=40)
    url = models.URLField("endpoint", max_length=2000)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Set while an attempt is being sent (until its deadline): a redelivery
    # asked for meanwhile does not start a second, concurrent send.
    claimed_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("redeliver_webhookdelivery", "Can redeliver webhooks and send test events")]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["job", "-created_at"], name="delivery_job"),
            models.Index(fields=["url", "state"], name="delivery_url_state"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.url} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, what came back, how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(default=0, help_text="Attempt number within its schedule.")
    created_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"#{self.number}: {self.status_code or self.error}"


class WebhookEndpoint(models.Model):
    """What we know about a URL across events: whether it told us it is gone.

    A 410 answer marks the endpoint gone; later events to it are recorded as
    `gone` without being sent, until staff re-enable it or redeliver to it.
    """

    url = models.URLField(max_length=2000, unique=True)
    gone_at = models.DateTimeField(null=True, blank=True)
    gone_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url


class WebhookSecretQuerySet(models.QuerySet["WebhookSecret"]):
    def in_effect(self, at: datetime | None = None) -> QuerySet[WebhookSecret]:
        """Secrets that still sign: the current one and any still inside their overlap."""
        at = at or timezone.now()
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))


class WebhookSecret(models.Model):
    """A client-wide signing secret. Rotating adds a new one and gives the old
    one an `expires_at`; until then deliveries carry both signatures."""

    client = models.ForeignKey(
        "jobs.ApiClient", on_delete=models.CASCADE, related_name="webhook_secrets"
    )
    secret = models.CharField(max_length=100, default=new_signing_secret, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Blank: the current secret. Set when rotated out."
    )

    objects = WebhookSecretQuerySet.as_manager()

    class Meta:
        ordering = ["client", "-created_at", "-id"]
        permissions = [("expire_webhooksecret", "Can expire webhook signing secrets")]

    def __str__(self) -> str:
        return f"{self.client}: {self.secret[:10]}…"
