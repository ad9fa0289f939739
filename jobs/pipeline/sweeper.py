"""Repairs what a crash or a lost message left behind; run by beat every
SWEEP_INTERVAL_SECONDS (15 s).

Every active job records when its next step is due (`due_at`). A job whose
due time passed more than JOB_STALE_SECONDS (30 s) ago while no step holds
its lease (free, or expired because its worker died: see jobs.leases) has
lost its message, whatever happened to it: the enqueue after commit never
ran, Redis restarted, or the message sits unacknowledged with a dead worker
until the visibility timeout. The sweeper sends it again.

A job that is merely waiting its turn is left alone: its message is still
in a broker queue, or held (reserved, or on countdown) by a living worker.
Both are looked up only when there are candidates, so an idle sweep is one
indexed query. Re-sending is safe anyway: every step checks the job's
checkpoints, its poll sequence and its lease.

A job whose enqueue failed because the broker was down is marked as owed
one (`next_attempt_at` on a pending job, see state.enqueue_or_leave_to_sweeper)
and is enqueued by the first sweep once the broker is back, without waiting
for JOB_STALE_SECONDS.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job
from jobs.pipeline.queue import enqueue_or_leave_to_sweeper
from jobs.state import update_job

logger = logging.getLogger(__name__)

BATCH = 500
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# kombu's Redis transport keeps a queue's priorities in separate lists.
_PRIORITY_SEPARATOR, _PRIORITY_STEPS = "\x06\x16", (3, 6, 9)


def overdue() -> Q:
    now = timezone.now()
    late = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    lease_free = Q(lease_task="") | Q(lease_expires__lt=now)
    due = Q(due_at__lt=late) | Q(due_at__isnull=True, updated_at__lt=late)
    owed = Q(status=Job.Status.PENDING, next_attempt_at__lte=now)
    return Q(status__in=Job.ACTIVE) & lease_free & (due | owed)


def sweep() -> dict[str, int]:
    candidates = list(Job.objects.filter(overdue()).values_list("id", flat=True)[:BATCH])
    if not candidates:
        return {"resumed": 0}
    waiting = waiting_job_ids()
    resumed = 0
    for job_id in candidates:
        if str(job_id) in waiting:
            continue
        now = timezone.now()
        # Move the due time first, so the next sweep does not send it again.
        touched = Job.objects.filter(overdue(), id=job_id).update(
            due_at=now, heartbeat_at=now, next_attempt_at=None
        )
        if not touched:
            continue
        update_job(Job.objects.get(id=job_id), "Resumed by the sweeper after its step was lost")
        enqueue_or_leave_to_sweeper(job_id)
        resumed += 1
    if resumed:
        logger.warning(
            "sweeper resumed %d jobs whose next step was lost (%d more were queued or held)",
            resumed,
            len(candidates) - resumed,
        )
    return {"resumed": resumed}


def waiting_job_ids() -> set[str]:
    """Ids of the jobs with a step message in a broker queue or held by a living worker."""
    return _queued_job_ids() | _held_job_ids()


def _queued_job_ids() -> set[str]:
    from meeting_intel.celery import app

    found: set[str] = set()
    try:
        with app.connection_for_read() as conn:
            client = conn.default_channel.client
            for queue in settings.WORKER_QUEUES:
                for key in (queue, *(f"{queue}{_PRIORITY_SEPARATOR}{p}" for p in _PRIORITY_STEPS)):
                    found |= _job_ids(client.lrange(key, 0, -1))
    except Exception:
        logger.warning("could not read the broker's queues", exc_info=True)
    return found


def _job_ids(messages: Iterable[bytes]) -> set[str]:
    found: set[str] = set()
    for raw in messages:
        try:
            headers = json.loads(raw).get("headers") or {}
        except (ValueError, AttributeError):
            continue
        if str(headers.get("task", "")).startswith("jobs."):
            found.update(_UUID.findall(str(headers.get("argsrepr", ""))))
    return found


def _held_job_ids() -> set[str]:
    """Tasks living workers have reserved or scheduled (countdowns), by `inspect`."""
    from meeting_intel.celery import app

    found: set[str] = set()
    try:
        inspect = app.control.inspect(timeout=1.0)
        replies = [inspect.reserved() or {}, inspect.scheduled() or {}, inspect.active() or {}]
    except Exception:
        logger.warning("could not ask the workers what they hold", exc_info=True)
        return found
    for reply in replies:
        for tasks in reply.values():
            for task in tasks:
                request = task.get("request", task)
                if str(request.get("name", "")).startswith("jobs."):
                    found.update(_UUID.findall(json.dumps(request.get("args", []))))
    return found
