"""What staff and API clients do to a job: submit, cancel, retry, reprocess.

Each action is one transaction over the low-level writes in ``jobs.state``;
the job's next step is queued only after it commits.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.errors import AudioMissing
from jobs.models import Job
from jobs.pipeline.queue import enqueue_next_on_commit
from jobs.state import broadcast_after_commit, record_event, release_slot_after_commit, update_job
from meetings.models import Meeting, Passage

Status = Job.Status
Stage = Job.Stage


def submit_job(job: Job, *, enqueue: bool = True) -> Job:
    """Save a new job and enqueue its first step once the row is committed.

    `enqueue=False` is for callers that run the pipeline in-process (the CLI).
    """
    job.due_at = timezone.now()
    with transaction.atomic():
        job.save()
        record_event(job, "Queued")
        if enqueue:
            enqueue_next_on_commit(job.id)
    broadcast_after_commit(job.id)
    return job


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
        release_slot_after_commit(fresh)
    return True


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
        # The search index is built again too: its step starts from no passages.
        Meeting.objects.filter(job=fresh).update(
            sections={}, section_order=[], search_indexed_at=None
        )
        Passage.objects.filter(meeting__job=fresh).delete()
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
    its next fence and hands over, see pipeline.runner.run_step) or its lease
    expires (the sweeper resumes the job)."""
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
    enqueue_next_on_commit(job.id)
