"""``POST /hooks/assemblyai/{job}/``: AssemblyAI's completion callback."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from jobs.pipeline.queue import enqueue_poll
from jobs.pipeline.runner import CALLBACK_HEADER, callback_token


@csrf_exempt
@require_POST
def assemblyai_callback(request: HttpRequest, job_id: object) -> HttpResponse:
    """AssemblyAI says a transcript finished: check on it now instead of at the next poll.

    Answered at once (AssemblyAI allows 10 s), without a query: the secret is
    derived from the job's id, and the poll runs on a worker, whose read of the
    job drops it if the job has moved past its transcript (or is gone).
    """
    given = request.headers.get(CALLBACK_HEADER, "")
    if not hmac.compare_digest(given, callback_token(job_id)):
        return JsonResponse({"error": "bad callback credentials"}, status=401)
    enqueue_poll(job_id)
    return JsonResponse({"ok": True})
