"""The one place that pushes job status to websocket subscribers.

Workers send many updates a second, so they go through one event loop on one
daemon thread per process, with one channel layer (and so one Redis
connection pool) that lives as long as the process: `async_to_sync` would
start a thread, a loop and a connection for every message. Sending is fire
and forget; a lost live update is covered by the pages' polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .models import Job
from .tokens import results_url

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


def _meeting_id(job: Job) -> object | None:
    """The job's meeting id without a query unless the job has just completed."""
    cached = job._state.fields_cache
    if "meeting" in cached:
        return getattr(cached["meeting"], "id", None)
    if not job.pk or job.status != Job.Status.COMPLETED:
        return None
    return getattr(getattr(job, "meeting", None), "id", None)


def status_message(job: Job) -> JobStatusMessage:
    meeting_id = _meeting_id(job)
    return {
        "type": "job.status",
        "job_id": str(job.id),
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "message": job.message,
        "results_url": results_url(job, meeting_id),
    }


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

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="job-broadcast", daemon=True).start()
                self._layer = get_channel_layer()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def send(self, group: str, message: dict[str, Any]) -> None:
        loop = self._start()
        if self._layer is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._layer.group_send(group, message), loop)
        future.add_done_callback(_log_failure)


def _log_failure(future: Any) -> None:
    if future.exception() is not None:
        logger.warning("could not broadcast a job status: %s", future.exception())


_sender = _Sender()


def broadcast_status(payload: JobStatusMessage) -> None:
    """Send an already built status to the job's subscribers; never raises or waits."""
    if not _enabled:
        return
    try:
        _sender.send(
            group_name(payload["job_id"]), {"type": "job.status", "payload": dict(payload)}
        )
    except Exception:
        logger.warning("could not broadcast status of job %s", payload["job_id"], exc_info=True)


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
            group_name(job.id), {"type": "job.status", "payload": payload}
        )
    except Exception:
        logger.warning("could not broadcast status of job %s", job.id, exc_info=True)
