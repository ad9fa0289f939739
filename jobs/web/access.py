"""Who may see a job's pages and live status: staff, or a holder of its viewer token."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from jobs.broadcast import close_staff_sockets, staff_session_group, staff_user_group
from jobs.models import Job
from jobs.tokens import make_viewer_token, token_allows


def is_staff(user: Any) -> bool:
    """An active staff account (an anonymous user or None is not)."""
    return bool(
        user is not None and getattr(user, "is_active", False) and getattr(user, "is_staff", False)
    )


def can_view(user: Any, token: str | None, job: Job) -> bool:
    """Staff see every job; anyone else needs a valid, unrevoked token for this job."""
    return is_staff(user) or token_allows(token, job)


def staff_logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    """user_logged_out: the websockets opened with that session close now."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        close_staff_sockets(staff_session_group(session_key))


def user_saved(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    """post_save of a user: a user no longer active staff loses their websockets once committed."""
    if update_fields is not None and not {"is_staff", "is_active"} & set(update_fields):
        return  # e.g. the last_login written at every login
    if not is_staff(instance):
        user_id = instance.pk
        transaction.on_commit(lambda: close_staff_sockets(staff_user_group(user_id)))


def viewable_job(request: HttpRequest, job_id: object) -> tuple[Job, str]:
    """The job and a viewer token for it, or 403 unless staff or holding its token.

    A viewer gets back the token it came with (never a renewed one); staff get
    a freshly signed token, so the page's websocket and polling work the same
    way for everyone.
    """
    job = get_object_or_404(Job.objects.select_related("meeting"), id=job_id)
    token = request.GET.get("token", "")
    if token_allows(token, job):
        return job, token
    if not can_view(request.user, None, job):
        raise PermissionDenied("A valid viewer link or a staff login is needed.")
    return job, make_viewer_token(job)
