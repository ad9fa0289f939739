"""The outbox: job events owed to the CMS are written with the job's terminal state."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.tokens import results_url
from jobs.usage import job_usage
from meetings.models import Meeting
from meetings.serializers import meeting_data
from webhooks.models import WebhookDelivery
from webhooks.sender import gone_endpoint, gone_note


def event_body(job: Job, event_type: str) -> str:
    """SPEC's body; with `webhook_payload=thin` the meeting is left out (its id and API
    URL stay), for a CMS that fetches it itself or must keep webhooks small."""
    meeting_id = Meeting.objects.filter(job=job).values_list("id", flat=True).first()
    data: dict[str, object] = {
        "job_id": str(job.id),
        "status": "completed" if event_type == "job.completed" else "failed",
        "external_id": job.external_id,
        "error": job.error if event_type == "job.failed" else None,
        "results_url": results_url(job, meeting_id),
        "usage": job_usage(job),
    }
    if job.webhook_payload == Job.WebhookPayload.THIN:
        data["meeting_id"] = str(meeting_id) if meeting_id else None
        data["job_url"] = f"{settings.PUBLIC_BASE_URL}/api/v1/jobs/{job.id}/"
        data["meeting_url"] = (
            f"{settings.PUBLIC_BASE_URL}/api/v1/meetings/{meeting_id}/" if meeting_id else None
        )
    else:
        data["meeting"] = meeting_data(meeting_id) if meeting_id else None
    payload = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))


def record_job_event(job: Job, event_type: str) -> WebhookDelivery | None:
    """Write the delivery row in the caller's transaction; send it after commit.

    Must run inside the transaction that sets the job's terminal state, so the
    event exists if and only if that state does. If the process dies after
    the commit but before the enqueue, the `webhooks.sweep` task finds the
    row (due since its creation) and sends it; the claim in tasks.deliver
    keeps the enqueue and the sweep from sending it twice. An event for an
    endpoint that answered 410 is recorded as `gone` and not sent.
    """
    if not job.webhook_url:
        return None
    event = {
        "job": job,
        "event_type": event_type,
        "url": job.webhook_url,
        "body": event_body(job, event_type),
    }
    endpoint = gone_endpoint(job.webhook_url)
    if endpoint is not None:
        return WebhookDelivery.objects.create(
            **event, state=WebhookDelivery.State.GONE, last_error=gone_note(endpoint)
        )
    first_wait = (settings.WEBHOOK_RETRY_SCHEDULE or [0])[0]
    delivery = WebhookDelivery.objects.create(
        **event, next_attempt_at=timezone.now() + timedelta(seconds=first_wait)
    )
    if first_wait <= settings.MAX_COUNTDOWN_SECONDS:
        transaction.on_commit(lambda: _enqueue(delivery.id, first_wait))
    return delivery


def on_job_finished(sender: object, job: Job, event: str, **_: object) -> None:
    """``jobs.signals.job_finished`` receiver: the job's event joins the outbox."""
    record_job_event(job, event)


def _enqueue(delivery_id: int, countdown: float) -> None:
    from webhooks.tasks import deliver

    deliver.apply_async(args=[delivery_id], countdown=countdown or None)
