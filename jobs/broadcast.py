"""The one place that pushes job status to websocket subscribers.

Workers send many updates a second, so state changes go out through one
event loop on one daemon thread per process, with one channel layer (and so
one Redis connection pool) that lives as long as the process (`broadcast_status`):
`async_to_sync` would start a thread, a loop and a connection per message.
The event is built from the job row in memory, without a re-read. Sending
is fire and forget; a lost live update is covered by the pages' polling.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from typing import Any, TypedDict

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
    """The job's meeting id; without a query unless the meeting is not loaded and
    the job has completed (only then do subscribers get a results link)."""
    cached = job._state.fields_cache
    if "meeting" in cached:
        return getattr(cached["meeting"], "id", None)
    if not job.pk or job.status != Job.Status.COMPLETED:
        return None
    return getattr(getattr(job, "meeting", None), "id", None)


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


class _Sender:
    """One loop thread and one channel layer per process (rebuilt after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._layer: Any = None
        self._order: asyncio.Lock | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="job-broadcast", daemon=True).start()
                self._layer = get_channel_layer()
                self._loop, self._pid, self._order = loop, os.getpid(), None
            return self._loop

    def send(self, group: str, message: dict[str, Any]) -> None:
        loop = self._start()
        if self._layer is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._send(group, message), loop)
        future.add_done_callback(_log_failure)

    async def _send(self, group: str, message: dict[str, Any]) -> None:
        # One send at a time, in the order they were made: a subscriber never
        # sees an older state after a newer one (asyncio.Lock is first come,
        # first served).
        if self._order is None:
            self._order = asyncio.Lock()
        async with self._order:
            await self._layer.group_send(group, message)


def _log_failure(future: Any) -> None:
    if future.exception() is not None:
        logger.warning("could not broadcast a job status: %s", future.exception())


_sender = _Sender()


def broadcast_status(event: JobStatusEvent) -> None:
    """Send an already built status event to the job's subscribers; never raises or waits."""
    if not _enabled:
        return
    try:
        _sender.send(group_name(event["payload"]["job_id"]), dict(event))
    except Exception:
        logger.warning("could not broadcast status of job %s", event["payload"]["job_id"])


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
