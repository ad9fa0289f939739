"""Viewer tokens: signed, scoped to one job, expiring, revocable.

A token carries the job id and the job's `viewer_token_version`; staff revoke
every token of a job by bumping that version.
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


def status_url(job: Job) -> str:
    return f"{settings.PUBLIC_BASE_URL}/jobs/{job.id}/?token={make_viewer_token(job)}"


def results_url(job: Job, meeting_id: object | None) -> str | None:
    if meeting_id is None:
        return None
    return f"{settings.PUBLIC_BASE_URL}/meetings/{meeting_id}/?token={make_viewer_token(job)}"
