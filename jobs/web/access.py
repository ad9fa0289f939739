"""Who may see a job's pages and live status: staff, or a holder of its viewer token."""

from __future__ import annotations

from typing import Any

from jobs.models import Job
from jobs.web.tokens import token_allows


def is_staff(user: Any) -> bool:
    """An active staff account (an anonymous user or None is not)."""
    return bool(
        user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False)
    )


def can_view(user: Any, token: str | None, job: Job) -> bool:
    """Staff see every job; anyone else needs a valid, unrevoked token for this job."""
    return is_staff(user) or token_allows(token, job)
