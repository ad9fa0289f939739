"""Standard Webhooks signatures, through the `standardwebhooks` library.

Which secrets sign a job's events: the job's own `webhook_secret` (SPEC), then
the client's secrets in effect (see models.WebhookSecret), newest first. Each
secret adds one `v1,<sig>` to `webhook-signature`, space-separated, so during
a rotation's overlap a receiver holding either the old or the new secret
verifies the event.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from standardwebhooks import Webhook

from jobs.models import ApiClient, Job
from webhooks.models import WebhookSecret


def signer(secret: str) -> Webhook:
    """SPEC's key rule: base64 after a `whsec_` prefix, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return Webhook(secret)
    return Webhook(secret.encode())


def signature_header(secrets: list[str], webhook_id: str, at: datetime, body: str) -> str:
    """One `v1,<sig>` per secret, space-separated."""
    return " ".join(signer(s).sign(webhook_id, at, body) for s in secrets if s)


def client_secrets(client: ApiClient | None) -> list[str]:
    if client is None:
        return []
    in_effect = WebhookSecret.objects.filter(client=client).in_effect()
    return list(in_effect.values_list("secret", flat=True))


def secrets_for(job: Job) -> list[str]:
    found = [job.webhook_secret] if job.webhook_secret else []
    return list(dict.fromkeys([*found, *client_secrets(job.client)]))


def signed_headers(webhook_id: str, body: str, secrets: list[str], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (fresh timestamp each time).

    Without any secret the event goes unsigned. The seed's `X-Webhook-Secret`
    header (the first secret in clear) is added only when
    WEBHOOK_LEGACY_SECRET_HEADER is on, for a CMS that was built for it.
    """
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
    }
    if secrets:
        headers["webhook-signature"] = signature_header(secrets, webhook_id, at, body)
        if settings.WEBHOOK_LEGACY_SECRET_HEADER:
            headers["x-webhook-secret"] = secrets[0]
    return headers
