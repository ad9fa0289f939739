"""Viewer tokens: signed, scoped to one job, expiring, revocable.

A token carries the job id and the job's `viewer_token_version`; staff revoke
every token of a job by bumping that version.

Only staff and the owning API client (its API answers and webhooks) are
handed freshly signed tokens. A page, poll or socket opened with a viewer
token hands back that same token, so a link never renews itself by being used:
it expires VIEWER_TOKEN_MAX_AGE after it was first issued.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from django.conf import settings
from django.core import signing

from jobs.models import Job

_SALT = "jobs.viewer-token"


def make_viewer_token(job: Job) -> str:
    return signing.dumps({"j": str(job.id), "v": job.viewer_token_version}, salt=_SALT)


class ViewerClaims(NamedTuple):
    """What a valid viewer token says: its job, the version it was signed under, when it expires."""

    job_id: str
    version: int
    expires_at: float


def read_viewer_token(token: str | None) -> ViewerClaims | None:
    """The claims of a well-signed, unexpired token, else None (no database involved)."""
    if not token:
        return None
    max_age = settings.VIEWER_TOKEN_MAX_AGE
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
        signed_at = signing.b62_decode(token.rsplit(":", 2)[1])
    except (signing.BadSignature, ValueError, IndexError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("v"), int):
        return None
    return ViewerClaims(str(data.get("j")), data["v"], signed_at + max_age)


def token_allows(token: str | None, job: Job) -> bool:
    claims = read_viewer_token(token)
    return claims is not None and claims_allow(claims, job.id, job.viewer_token_version)


def claims_allow(claims: ViewerClaims, job_id: object, version: int) -> bool:
    """Whether the claims still open job `job_id` at its current viewer-token `version`."""
    return (
        claims.job_id == str(job_id)
        and claims.version == version
        and time.time() < claims.expires_at
    )


def status_url(job: Job, token: str | None = None) -> str:
    """The live page's link; under `token` when given, else under a freshly signed one."""
    return f"{settings.PUBLIC_BASE_URL}/jobs/{job.id}/?token={token or make_viewer_token(job)}"


def results_url(job: Job, meeting_id: object | None, token: str | None = None) -> str | None:
    """The results page's link; under `token` when given, else under a freshly signed one."""
    if meeting_id is None:
        return None
    return (
        f"{settings.PUBLIC_BASE_URL}/meetings/{meeting_id}/?token={token or make_viewer_token(job)}"
    )
