"""The server-rendered job page, its polling fallback, and the staff actions on it."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from jobs.actions import reprocess_job, retry_job
from jobs.broadcast import status_message
from jobs.errors import AudioMissing
from jobs.failures import public_message
from jobs.models import Job
from jobs.web.access import is_staff, viewable_job
from meeting_intel.http.csp import with_csp
from meeting_intel.lib.admin_permissions import permission_label, refusal

logger = logging.getLogger(__name__)

STATUS_LABELS = {
    "pending": "Waiting to start",
    "processing": "Processing",
    "retrying": "Retrying after a problem",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
STAGE_LABELS = {stage.value: stage.label for stage in Job.Stage}

NO_AUDIO_TO_TRANSCRIBE = (
    "The recording is no longer on the server, so the job cannot be transcribed again; "
    "reprocess from analysis instead."
)
_CHUNK = re.compile(r"chunk (\d+)\s*/\s*(\d+)", re.IGNORECASE)


def failure_explanation(code: str) -> str:
    return public_message(code)


def chunk_progress(message: str) -> tuple[int, int] | None:
    """(2, 5) from a message such as "Analyzing chunk 2/5"."""
    match = _CHUNK.search(message or "")
    return (int(match[1]), int(match[2])) if match else None


def page_state(job: Job, token: str) -> dict[str, Any]:
    """The live page's state: the websocket message plus the error in plain words."""
    state: dict[str, Any] = dict(status_message(job, token))
    state["error"] = (
        {**job.error, "explanation": failure_explanation(job.error_code)} if job.error else None
    )
    return state


@with_csp
def job_page(request: HttpRequest, job_id: object) -> HttpResponse:
    job, token = viewable_job(request, job_id)
    state = page_state(job, token)
    chunk = chunk_progress(job.message) if job.stage == Job.Stage.ANALYZING else None
    # The newest events, oldest first: a job with many retries stays readable.
    events = list(job.events.order_by("-created_at", "-id")[:50])[::-1]
    return render(
        request,
        "jobs/job.html",
        {
            "job": job,
            "token": token,
            "state": state,
            "events": events,
            "stages": STAGE_LABELS,
            "chunk": chunk,
            "status_label": STATUS_LABELS.get(job.status, job.status),
            "labels": {"status": STATUS_LABELS, "stage": STAGE_LABELS},
            "is_staff": is_staff(request.user),
            "can_retry": is_staff(request.user) and request.user.has_perm("jobs.retry_job"),
        },
    )


@never_cache
def job_state(request: HttpRequest, job_id: object) -> HttpResponse:
    """The live page's polling fallback: the websocket's message, plus `error`."""
    job, token = viewable_job(request, job_id)
    return JsonResponse(page_state(job, token))


def _staff_job(request: HttpRequest, job_id: object) -> Job:
    if not is_staff(request.user):
        raise PermissionDenied("Only staff can do this.")
    return get_object_or_404(Job, id=job_id)


def _refused(request: HttpRequest, job: Job, codename: str, what: str) -> HttpResponse | None:
    """A redirect explaining the missing permission, or None when the user has it."""
    if request.user.has_perm(f"jobs.{codename}"):
        return None
    messages.error(request, refusal(permission_label("jobs", codename), what))
    return HttpResponseRedirect(reverse("job-page", args=[job.id]))


@require_POST
def job_retry(request: HttpRequest, job_id: object) -> HttpResponse:
    """Staff with the retry permission: run a failed or cancelled job again from its last checkpoint."""
    job = _staff_job(request, job_id)
    if refused := _refused(request, job, "retry_job", "retry jobs"):
        return refused
    if retry_job(job):
        messages.success(request, "Retry queued: the job resumes from its last completed step.")
    else:
        messages.warning(request, "Only a failed or cancelled job can be retried.")
    return HttpResponseRedirect(reverse("job-page", args=[job.id]))


@require_POST
def job_reprocess(request: HttpRequest, job_id: object) -> HttpResponse:
    """Staff with the reprocess permission: run a finished job again from analysis
    (the default) or transcription."""
    job = _staff_job(request, job_id)
    if refused := _refused(request, job, "reprocess_job", "reprocess jobs"):
        return refused
    start = request.POST.get("from", "analysis")
    if start not in ("analysis", "transcription"):
        return HttpResponse("`from` must be analysis or transcription.", status=400)
    try:
        started = reprocess_job(job, start)
    except AudioMissing:
        messages.warning(request, NO_AUDIO_TO_TRANSCRIBE)
        return HttpResponseRedirect(reverse("job-page", args=[job.id]))
    if started:
        messages.success(request, f"Reprocessing from {start}: follow it here.")
    else:
        messages.warning(request, "This job cannot be reprocessed in its current state.")
    return HttpResponseRedirect(reverse("job-page", args=[job.id]))
