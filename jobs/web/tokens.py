"""Viewer tokens: signed, scoped to one job, expiring, revocable.

A token carries the job id and the job's `viewer_token_version`; staff revoke
every token of a job by bumping that version.

Only staff and the owning API client (its API answers and webhooks) are
handed freshly signed tokens. A page, poll or socket opened with a viewer
token hands back that same token, so a link never renews itself by being used:
it expires VIEWER_TOKEN_MAX_AGE after it was first issued.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from jobs.models import Job

_SALT = "jobs.viewer-token"


def make_viewer_token(job: Job) -> str:
    return signing.dumps({"j": str(job.id), "v": job.viewer_token_version}, salt=_SALT)


def token_allows(token: str | None, job: Job) -> bool:
    if not token:
        return False
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.VIEWER_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return False
    return data.get("j") == str(job.id) and data.get("v") == job.viewer_token_version


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
