"""Standard Webhooks signatures, through the `standardwebhooks` library."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks import Webhook


def signer(secret: str) -> Webhook:
    """SPEC's key rule: base64 after a `whsec_` prefix, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return Webhook(secret)
    return Webhook(secret.encode())


def signature_header(secrets: list[str], webhook_id: str, at: datetime, body: str) -> str:
    """One `v1,<sig>` per secret, space-separated, so a rotating CMS accepts either."""
    return " ".join(signer(s).sign(webhook_id, at, body) for s in secrets if s)
