"""``POST /hooks/assemblyai/{job}/``: AssemblyAI's completion callback."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from jobs.models import Job
from jobs.pipeline.queue import enqueue_next
from jobs.pipeline.runner import CALLBACK_HEADER, callback_token
from jobs.pipeline.steps import POLL, next_step


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
        enqueue_next(job.id, 0, job)  # the row just read: no second read
    return JsonResponse({"ok": True})
