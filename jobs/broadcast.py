"""The one place that pushes job status to websocket subscribers."""

from __future__ import annotations

import hashlib
import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from jobs.models import Job
from jobs.tokens import results_url

logger = logging.getLogger(__name__)


class JobStatusMessage(TypedDict):
    type: str
    job_id: str
    status: str
    stage: str
    progress: int
    message: str
    results_url: str | None


class JobStatusEvent(TypedDict):
    """What the channel layer carries to each subscriber's consumer.

    `payload` goes to the client as it is (its results_url re-pointed at a
    viewer's own token); the other fields let the consumer decide access
    without a query: a socket opened under an older viewer-token version is
    closed. New fields may be added; the consumer ignores what it does not know.
    """

    type: str
    payload: JobStatusMessage
    meeting_id: str | None
    viewer_token_version: int


def group_name(job_id: object) -> str:
    return f"job_{job_id}"


def status_event(job: Job) -> JobStatusEvent:
    """The channel-layer event for the job's current state (no query beyond `job.meeting`)."""
    return {
        "type": "job.status",
        "payload": status_message(job),
        "meeting_id": _str_or_none(meeting_id_of(job)),
        "viewer_token_version": job.viewer_token_version,
    }


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
    # Channels routes on "type"; the consumer forwards `payload`.
    try:
        async_to_sync(layer.group_send)(group_name(job.id), dict(status_event(job)))
    except Exception:
        logger.warning("could not broadcast status of job %s", job.id, exc_info=True)


def staff_user_group(user_id: object) -> str:
    return f"staff_user_{user_id}"


def staff_session_group(session_key: str) -> str:
    # A hash: the session key is a credential and group names are stored in Redis.
    return f"staff_session_{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"


def close_staff_sockets(group: str) -> None:
    """Close the websockets a staff user (or one of their sessions) holds open; never raises.

    The consumers also re-check their session every STAFF_SOCKET_RECHECK_SECONDS,
    so a message lost here delays the close, it does not prevent it.
    """
    layer = get_channel_layer()
    if layer is None or not _enabled:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "staff.revoked"})
    except Exception:
        logger.warning("could not close the staff sockets of %s", group, exc_info=True)
