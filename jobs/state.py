"""Every write to a job's state goes through these functions.

Each one records a `JobEvent`, and pushes the new state to websocket
subscribers only after the transaction commits.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.errors import AudioMissing, JobLost
from jobs.leases import lease_seconds
from jobs.models import Job, JobEvent
from jobs.providers import limits as ratelimit
from jobs.usage import live_usage
from jobs.web.broadcast import broadcast_status, status_event
from meeting_intel.ops import metrics

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


def _after_commit_broadcast(job: Job) -> None:
    """Push the row as it is now in memory once the transaction commits (no re-read)."""
    event = status_event(job)
    transaction.on_commit(lambda: broadcast_status(event))


def update_job(job: Job, message: str = "", *, holder: str | None = None, **fields: Any) -> Job:
    """Set fields on a job, record the change, and broadcast it.

    With `holder` (the lease token of the step making the change) the write
    is conditional: it lands only while that step still holds the job's
    lease and the job is processing, else JobLost is raised and nothing is
    written. One UPDATE and one JobEvent, inside the caller's transaction
    when there is one. `message` becomes the job's last message and the
    event's text.
    """
    if "stage" in fields and "progress" not in fields:
        fields["progress"] = max(STAGE_PROGRESS[fields["stage"]], job.progress)
    if message:
        fields["message"] = message[:300]
    now = fields["heartbeat_at"] = fields["updated_at"] = timezone.now()
    ended = _durations_ended(job, fields, now)
    rows = Job.objects.filter(id=job.id)
    if holder is not None:
        rows = rows.filter(lease_task=holder, status=Status.PROCESSING)
    if fields.get("status") in Job.TERMINAL:
        # The bill of an ended job is priced once, from its final counters.
        final = copy.copy(job)
        for name, value in fields.items():
            setattr(final, name, value)
        fields["usage"] = live_usage(final)
    with transaction.atomic(savepoint=False):
        if rows.update(**fields) != 1 and holder is not None:
            raise JobLost(str(job.id))
        for name, value in fields.items():
            setattr(job, name, value)
        _event(job, message or f"{job.status}/{job.stage}")
        if ended:
            transaction.on_commit(ended)
    _after_commit_broadcast(job)
    return job


def _durations_ended(job: Job, fields: dict[str, Any], now: Any) -> Callable[[], None] | None:
    """What the change ends, from the job's columns: its stage, and maybe its run.

    Sets `stage_started_at` (and `run_started_at` on a restart) in `fields`;
    returns the observation to make once committed. A change to a job that has
    already ended (a restart, a note) ends nothing.
    """
    if job.status in Job.TERMINAL:
        if fields.get("status") in Job.ACTIVE:
            fields["stage_started_at"] = fields["run_started_at"] = now
        return None
    terminal = fields.get("status") in Job.TERMINAL
    if not terminal and fields.get("stage", job.stage) == job.stage:
        return None
    fields["stage_started_at"] = now
    stage, stage_start, run_start = job.stage, job.stage_started_at, job.run_started_at
    status = fields.get("status")

    def observe() -> None:
        metrics.observe_stage_ended(stage, stage_start, now)
        if terminal:
            metrics.observe_run_ended(status, run_start, now)

    return observe


def touch(job: Job, message: str, *, holder: str | None = None, **fields: Any) -> None:
    """Refresh the job's heartbeat, last message and `fields` without a timeline event.

    For routine waits and progress (a rate limit, a slot pool, chunks of one
    step) that would flood the timeline. With `holder`, conditional like
    update_job.
    """
    now = timezone.now()
    rows = Job.objects.filter(id=job.id)
    if holder is not None:
        rows = rows.filter(lease_task=holder, status=Status.PROCESSING)
    if not rows.update(message=message[:300], heartbeat_at=now, updated_at=now, **fields):
        if holder is not None:
            raise JobLost(str(job.id))
        return
    job.message = message[:300]
    for name, value in fields.items():
        setattr(job, name, value)
    _after_commit_broadcast(job)


def submit_job(job: Job, *, enqueue: bool = True) -> Job:
    """Save a new job and enqueue its first step once the row is committed.

    `enqueue=False` is for callers that run the pipeline in-process (the CLI).
    """
    job.due_at = job.stage_started_at = job.run_started_at = timezone.now()
    with transaction.atomic():
        job.save()
        _event(job, "Queued")
        if enqueue:
            _enqueue_after_commit(job.id)
    _after_commit_broadcast(job)
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


def lease_holder(task_id: str, celery_retries: int = 0) -> str:
    """The lease token of one run of a task.

    Celery keeps a task's id when it retries it (after a database or broker
    error), so the retry number is part of the token: a second run with the
    same token is a redelivery after a crash, a higher retry number is not.
    """
    return f"{task_id}#{celery_retries}" if celery_retries else task_id


def _same_task(holder: str) -> Q:
    task_id = holder.partition("#")[0]
    return Q(lease_task=task_id) | Q(lease_task__startswith=f"{task_id}#")


def claim(job: Job, holder: str) -> Job | None:
    """Take the job's lease for one step, or return None if someone else holds it.

    One conditional UPDATE is the claim (of two deliveries of the same step
    only one wins, and a cancel committed before it wins over it); it also
    marks the job processing. `job` is the row as read just before, so the
    result is built in memory. The same token finding its own lease means the
    message was delivered again after its worker died: that is counted, and
    past JOB_MAX_REDELIVERIES the job fails instead of looping forever.
    """
    now = timezone.now()
    redelivered = job.lease_task == holder
    free = Q(lease_task="") | Q(lease_expires__lt=now) | _same_task(holder)
    fields: dict[str, Any] = {
        "lease_task": holder,
        "lease_expires": now + timedelta(seconds=lease_seconds()),
        "heartbeat_at": now,
        "status": Status.PROCESSING,
        "next_attempt_at": None,
        "started_at": job.started_at or now,
        "attempts": job.attempts or 1,
        "updated_at": now,
    }
    starting = job.status != Status.PROCESSING
    if starting:
        fields["message"] = f"Attempt {fields['attempts']} started"
    if redelivered:
        fields["redeliveries"] = F("redeliveries") + 1
    updated = Job.objects.filter(id=job.id, status__in=Job.ACTIVE).filter(free).update(**fields)
    if updated != 1:
        return None
    fields["redeliveries"] = job.redeliveries + (1 if redelivered else 0)
    for name, value in fields.items():
        setattr(job, name, value)
    if job.redeliveries > settings.JOB_MAX_REDELIVERIES:
        fail_job(
            job,
            "redelivery_limit",
            f"The job's task was delivered {job.redeliveries + 1} times without finishing; "
            "it may be crashing its worker.",
        )
        return None
    if starting:
        _event(job, job.message)
        _after_commit_broadcast(job)
    return job


def release(job: Job, holder: str, due_in: float | None, *, set_due: bool = True) -> None:
    """Give the lease back and record when the job's next step is due (None: not at all)."""
    fields: dict[str, Any] = {"lease_task": "", "lease_expires": None}
    if set_due:
        fields["due_at"] = (
            timezone.now() + timedelta(seconds=due_in) if due_in is not None else None
        )
    Job.objects.filter(id=job.id, lease_task=holder).update(**fields)


def fence(job: Job, holder: str) -> None:
    """Right before a paid call: check the step still owns the job, and renew its lease.

    Raises JobLost when the job was cancelled, retried, reprocessed or claimed
    by another task meanwhile, so a stale step never pays for anything.
    """
    now = timezone.now()
    renewed = Job.objects.filter(id=job.id, lease_task=holder, status=Status.PROCESSING).update(
        lease_expires=now + timedelta(seconds=lease_seconds()), heartbeat_at=now
    )
    if renewed != 1:
        raise JobLost(str(job.id))


def lock_for_write(job: Job, task_id: str | None) -> Job:
    """Inside a transaction: re-read the job and check it is still ours to change.

    Raises JobLost when the job was cancelled, restarted, finished, or claimed
    by another task, so a stale step never overwrites newer state.
    """
    fresh = Job.objects.select_for_update().get(id=job.id)
    if task_id is None:
        if fresh.status not in Job.ACTIVE:
            raise JobLost(str(job.id))
    elif fresh.status != Status.PROCESSING or fresh.lease_task != task_id:
        raise JobLost(str(job.id))
    return fresh


def fail_job(job: Job, code: str, message: str) -> None:
    """Fail the job for good and queue its `job.failed` webhook in the same transaction."""
    from webhooks.outbox import record_job_event

    with transaction.atomic():
        fresh = Job.objects.select_for_update().get(id=job.id)
        if fresh.status in Job.TERMINAL:
            return
        update_job(
            fresh,
            f"Failed: {message}",
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


def reprocess_job(job: Job, start: str) -> bool:
    """Run a finished job again from `start` ("transcription" or "analysis").

    From analysis keeps the transcript; from transcription submits the audio
    again (the one case where a job pays for a second transcription). Raises
    AudioMissing, changing nothing, when transcription would need a recording
    the server no longer has.
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
            "search_index": "",
        }
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
    """Queue the job again. A step of the previous attempt that still holds the
    lease keeps it: the new attempt starts once that step lets go (it stops at
    its next fence and hands over, see pipeline.run_step) or its lease expires
    (the sweeper resumes the job)."""
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
        due_at=timezone.now(),
        results_saved_at=None,
        attempts=job.attempts + 1,
        **fields,
    )
    _enqueue_after_commit(job.id)
