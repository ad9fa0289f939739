"""Every write to a job's state goes through these functions.

Each one records a `JobEvent`, and pushes the new state to websocket
subscribers only after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.errors import AudioMissing, JobLost
from jobs.failures import public_message
from jobs.models import Job, JobEvent
from jobs.providers import limits as ratelimit
from jobs.usage import live_usage
from jobs.web.broadcast import broadcast_job
from meetings.models import Meeting

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


def _event(job: Job, message: str) -> None:
    JobEvent.objects.create(
        job=job,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        attempt=job.attempts,
        message=message[:500],
    )


def _after_commit_broadcast(job_id: object) -> None:
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
        _event(job, message or f"{job.status}/{job.stage}")
    _after_commit_broadcast(job.id)
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
    _after_commit_broadcast(job.id)


def submit_job(job: Job, *, enqueue: bool = True) -> Job:
    """Save a new job and enqueue its first step once the row is committed.

    `enqueue=False` is for callers that run the pipeline in-process (the CLI).
    """
    with transaction.atomic():
        job.save()
        _event(job, "Queued")
        if enqueue:
            _enqueue_after_commit(job.id)
    _after_commit_broadcast(job.id)
    return job


def _enqueue_after_commit(job_id: object) -> None:
    transaction.on_commit(lambda: enqueue_or_leave_to_sweeper(job_id))


def enqueue_or_leave_to_sweeper(job_id: object) -> None:
    """Enqueue the job's next step; with the broker down, leave it to the sweeper.

    The job is committed (pending, or restarted) before this runs, so a broker
    outage must not turn an accepted request into a 500: the job is marked as
    owed an enqueue (`next_attempt_at`, which a pending job otherwise lacks),
    and the sweeper's next run after the broker is back enqueues it.
    """
    from kombu.exceptions import OperationalError

    from jobs.pipeline.runner import enqueue_next

    try:
        enqueue_next(job_id)
    except (OperationalError, ConnectionError, TimeoutError, OSError):
        Job.objects.filter(id=job_id, status=Status.PENDING).update(next_attempt_at=timezone.now())
        logger.warning(
            "broker unreachable: job %s is saved and the sweeper will enqueue it",
            job_id,
            exc_info=True,
        )


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
    """Fail the job for good and queue its `job.failed` webhook in the same transaction."""
    from webhooks.outbox import record_job_event

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
        record_job_event(fresh, "job.failed")
        _release_slot_after_commit(fresh)


def cancel_job(job: Job) -> bool:
    """Cancel an active job; its running step stops at its next checkpoint."""
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status not in Job.ACTIVE:
            return False
        update_job(
            fresh,
            "Cancelled",
            status=Status.CANCELLED,
            completed_at=timezone.now(),
            next_attempt_at=None,
        )
        _release_slot_after_commit(fresh)
    return True


def _release_slot_after_commit(job: Job) -> None:
    transaction.on_commit(lambda: ratelimit.release_slot(TRANSCRIPTION_SLOTS, str(job.id)))


RESTARTABLE = (Status.FAILED, Status.CANCELLED)


def retry_job(job: Job) -> bool:
    """Run a failed or cancelled job again from its last checkpoint."""
    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status not in RESTARTABLE:
            return False
        _restart(fresh, "Retry requested")
    return True


def reprocess_job(job: Job, start: str, **shaping: Any) -> bool:
    """Run a finished job again from `start` ("transcription" or "analysis").

    From analysis keeps the transcript; from transcription submits the audio
    again (the one case where a job pays for a second transcription). Raises
    AudioMissing, changing nothing, when transcription would need a recording
    the server no longer has. `shaping` sets what the analysis is asked for
    from now on (`template`, `analysis_template`, `instructions`); the
    meeting's sections are cleared as every analysis step runs again.

    """

    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status not in (*RESTARTABLE, Status.COMPLETED):
            return False
        if start == "analysis" and fresh.transcript_saved_at is None:
            return False
        if start == "transcription" and not has_audio(fresh):
            raise AudioMissing(str(fresh.id))
        reset: dict[str, Any] = {
            "analysis_steps_done": [],
            "analysis_steps_failed": [],
            "analysis_partials": {},
            "search_index": "",
            **shaping,
        }
        Meeting.objects.filter(job=fresh).update(sections={}, section_order=[])
        if start == "transcription":
            reset.update(
                transcript_external_id="",
                transcript_submitted_at=None,
                transcript_saved_at=None,
                transcript_polls=0,
            )
        _restart(fresh, f"Reprocess from {start} requested", **reset)
    return True


def has_audio(job: Job) -> bool:
    """Whether the recording can be read again: its file is stored, or its URL can be fetched."""
    if job.audio:
        try:
            return job.audio.storage.exists(job.audio.name)
        except (OSError, ValueError):
            return False
    return bool(job.audio_url)


def _restart(job: Job, message: str, **fields: Any) -> None:
    update_job(
        job,
        message,
        status=Status.PENDING,
        stage=Stage.QUEUED,
        progress=0,
        error_code="",
        error_message="",
        completed_at=None,
        next_attempt_at=None,
        step_retries=0,
        redeliveries=0,
        lease_task="",
        lease_expires=None,
        results_saved_at=None,
        attempts=job.attempts + 1,
        **fields,
    )
    _enqueue_after_commit(job.id)
