"""Who may see a job's pages and live status: staff, or a holder of its viewer token."""

from __future__ import annotations

from typing import Any

from .models import Job
from .tokens import token_allows


def can_view(user: Any, token: str | None, job: Job) -> bool:
    if user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False):
        return True
    return token_allows(token, job)
