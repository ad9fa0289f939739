"""Low-level writes to a job's state: update, touch, claim, release, lock, fail.

Every write to a job's row goes through these functions (the business
actions in ``jobs.actions`` and the pipeline's steps build on them). Each
one records a `JobEvent`, and pushes the new state to websocket subscribers
only after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.broadcast import broadcast_job
from jobs.errors import JobLost
from jobs.failures import public_message
from jobs.models import Job, JobEvent
from jobs.providers import limits as ratelimit
from jobs.signals import job_finished
from jobs.usage import live_usage

logger = logging.getLogger(__name__)


Status = Job.Status
Stage = Job.Stage

# The pool of concurrent AssemblyAI transcriptions (see jobs.providers.limits).
TRANSCRIPTION_SLOTS = "assemblyai:transcriptions"

STAGE_PROGRESS = {
    Stage.QUEUED: 0,
    Stage.TRANSCRIBING: 5,
    Stage.ANALYZING: 50,
    Stage.SAVING: 90,
    Stage.NOTIFYING: 95,
    Stage.DONE: 100,
}


def record_event(job: Job, message: str) -> None:
    """Add a line to the job's timeline with its current status, stage and progress."""
    JobEvent.objects.create(
        job=job,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        attempt=job.attempts,
        message=message[:500],
    )


def broadcast_after_commit(job_id: object) -> None:
    transaction.on_commit(lambda: broadcast_job(job_id))


def update_job(job: Job, message: str = "", **fields: Any) -> Job:
    """Set fields on a job, record the change, and broadcast it.

    Runs inside the caller's transaction when there is one. `message` becomes
    the job's last message and the event's text.
    """
    if "stage" in fields and "progress" not in fields:
        fields["progress"] = max(STAGE_PROGRESS[fields["stage"]], job.progress)
    if message:
        fields["message"] = message[:300]
    fields["heartbeat_at"] = fields["updated_at"] = timezone.now()
    for name, value in fields.items():
        setattr(job, name, value)
    if fields.get("status") in Job.TERMINAL:
        # The bill of an ended job is priced once, from its final counters.
        fields["usage"] = job.usage = live_usage(job)
    with transaction.atomic():
        Job.objects.filter(id=job.id).update(**fields)
        record_event(job, message or f"{job.status}/{job.stage}")
    broadcast_after_commit(job.id)
    return job


def touch(job: Job, message: str, **fields: Any) -> None:
    """Refresh the job's heartbeat, last message and `fields` without a timeline event.

    For routine waits and progress (a rate limit, a slot pool, chunks of one
    step) that would flood the timeline.
    """
    now = timezone.now()
    Job.objects.filter(id=job.id).update(
        message=message[:300], heartbeat_at=now, updated_at=now, **fields
    )
    broadcast_after_commit(job.id)


def lease_seconds() -> int:
    """No task outlives its hard time limit, so neither does its lease."""
    return settings.CELERY_TASK_TIME_LIMIT + 5


def claim(job_id: object, task_id: str) -> Job | None:
    """Take the job's lease for one step, or return None if someone else holds it.

    A conditional update is the claim: of two deliveries of the same step only
    one wins. The same task id finding its own lease means the message was
    delivered again after its worker died; that is counted, and past
    JOB_MAX_REDELIVERIES the job fails instead of looping forever.
    """
    now = timezone.now()
    free = Q(lease_task="") | Q(lease_expires__lt=now) | Q(lease_task=task_id)
    active = Job.objects.filter(id=job_id, status__in=Job.ACTIVE)
    redelivered = active.filter(lease_task=task_id).exists()
    updated = active.filter(free).update(
        lease_task=task_id,
        lease_expires=now + timedelta(seconds=lease_seconds()),
        heartbeat_at=now,
        redeliveries=F("redeliveries") + (1 if redelivered else 0),
    )
    if updated != 1:
        return None
    with transaction.atomic():
        try:
            # Under the row lock, so a cancel that raced the claim wins.
            job = lock_for_write(Job(id=job_id), task_id)
        except JobLost:
            return None
        if job.redeliveries > settings.JOB_MAX_REDELIVERIES:
            fail_job(
                job,
                "redelivery_limit",
                f"The job's task was delivered {job.redeliveries + 1} times without finishing; "
                "it may be crashing its worker.",
            )
            return None
        if job.status != Status.PROCESSING or job.started_at is None:
            update_job(
                job,
                f"Attempt {job.attempts or 1} started",
                status=Status.PROCESSING,
                started_at=job.started_at or now,
                attempts=job.attempts or 1,
                next_attempt_at=None,
            )
    return job


def release(job: Job, task_id: str) -> None:
    Job.objects.filter(id=job.id, lease_task=task_id).update(lease_task="", lease_expires=None)


def lock_for_write(job: Job, task_id: str | None) -> Job:
    """Inside a transaction: re-read the job and check it is still ours to change.

    Raises JobLost when the job was cancelled, finished, or claimed by
    another task, so a stale step never overwrites newer state.
    """
    fresh = Job.objects.select_for_update().get(id=job.id)
    if fresh.status not in Job.ACTIVE or (task_id is not None and fresh.lease_task != task_id):
        raise JobLost(str(job.id))
    return fresh


def fail_job(job: Job, code: str, message: str) -> None:
    """Fail the job for good; `job_finished` is sent in the same transaction (its webhook)."""
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status in Job.TERMINAL:
            return
        logger.warning("job %s failed (%s): %s", fresh.id, code, message)
        update_job(
            fresh,
            f"Failed: {public_message(code)}",
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            completed_at=timezone.now(),
            next_attempt_at=None,
            lease_task="",
            lease_expires=None,
        )
        job_finished.send(sender=Job, job=fresh, event="job.failed")
        release_slot_after_commit(fresh)


def release_slot_after_commit(job: Job) -> None:
    transaction.on_commit(lambda: ratelimit.release_slot(TRANSCRIPTION_SLOTS, str(job.id)))
