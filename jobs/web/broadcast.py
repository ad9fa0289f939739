"""The one place that pushes job status to websocket subscribers."""

from __future__ import annotations

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from jobs.models import Job
from jobs.web.tokens import results_url

logger = logging.getLogger(__name__)


class JobStatusMessage(TypedDict):
    type: str
    job_id: str
    status: str
    stage: str
    progress: int
    message: str
    results_url: str | None


def group_name(job_id: object) -> str:
    return f"job_{job_id}"


def meeting_id_of(job: Job) -> object | None:
    return getattr(getattr(job, "meeting", None), "id", None) if job.pk else None


def status_message(job: Job, token: str | None = None) -> JobStatusMessage:
    """The state a subscriber sees; `results_url` carries `token` when one is given
    (a viewer's own token, so using a link never renews it), else a fresh one."""
    meeting_id = meeting_id_of(job)
    return {
        "type": "job.status",
        "job_id": str(job.id),
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "message": job.message,
        "results_url": results_url(job, meeting_id, token),
    }


def _str_or_none(value: object | None) -> str | None:
    return None if value is None else str(value)


_enabled = True


def disable() -> None:
    """Stop broadcasting in this process (the CLI runs jobs with no subscribers)."""
    global _enabled
    _enabled = False


def broadcast_job(job_id: object) -> None:
    """Send the job's current state to its subscribers; never raises.

    Called after commit, so subscribers never see a state that was rolled back.
    A broker outage loses a live update, not the job: pages fall back to polling.
    """
    if not _enabled:
        return
    try:
        job = Job.objects.select_related("meeting").get(id=job_id)
    except Job.DoesNotExist:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    payload = dict(status_message(job))
    # Channels routes on "type"; the consumer forwards `payload` unchanged.
    try:
        async_to_sync(layer.group_send)(
            group_name(job.id),
            {
                "type": "job.status",
                "payload": payload,
                "meeting_id": _str_or_none(meeting_id_of(job)),
            },
        )
    except Exception:
        logger.warning("could not broadcast status of job %s", job.id, exc_info=True)
