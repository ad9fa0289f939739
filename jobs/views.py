"""Server-rendered job page, the AssemblyAI completion callback, and health."""

from __future__ import annotations

import hmac
import logging

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .access import can_view
from .broadcast import status_message
from .models import Job
from .pipeline import CALLBACK_HEADER, POLL, callback_token, enqueue_next, next_step
from .tokens import make_viewer_token

logger = logging.getLogger(__name__)


def viewable_job(request: HttpRequest, job_id: object) -> tuple[Job, str]:
    job = get_object_or_404(Job.objects.select_related("meeting"), id=job_id)
    token = request.GET.get("token", "")
    if not can_view(request.user, token, job):
        raise PermissionDenied("A valid viewer link or a staff login is needed.")
    return job, token or make_viewer_token(job)


def job_page(request: HttpRequest, job_id: object) -> HttpResponse:
    job, token = viewable_job(request, job_id)
    return render(
        request,
        "jobs/job.html",
        {"job": job, "token": token, "state": status_message(job), "events": job.events.all()},
    )


@csrf_exempt
@require_POST
def assemblyai_callback(request: HttpRequest, job_id: object) -> HttpResponse:
    """AssemblyAI says a transcript finished: check on it now instead of at the next poll.

    Answered at once (AssemblyAI allows 10 s); the poll runs on a worker.
    """
    job = get_object_or_404(Job, id=job_id)
    given = request.headers.get(CALLBACK_HEADER, "")
    if not hmac.compare_digest(given, callback_token(job)):
        return JsonResponse({"error": "bad callback credentials"}, status=401)
    if next_step(job) == POLL:
        enqueue_next(job.id)
    return JsonResponse({"ok": True})


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def job_state(request: HttpRequest, job_id: object) -> HttpResponse:
    """The live page's polling fallback: the same message the websocket sends."""
    job, _ = viewable_job(request, job_id)
    return JsonResponse(dict(status_message(job)))
