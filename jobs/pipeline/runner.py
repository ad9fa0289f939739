"""The pipeline as checkpointed steps.

A job's next step is derived from its saved checkpoints (``steps.next_step``),
so a retry, a redelivery, a sweep or a reprocess all resume at the first
step without a saved result. Each step runs under the job's lease (see
``jobs.state.claim``), writes its checkpoint, and returns how long to wait
before the next step (``jobs.tasks`` queues it). No step waits
on a provider: a transcription in progress is checked by short poll tasks.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import leases, shaping
from jobs.errors import INFRASTRUCTURE_ERRORS, Deferred, JobLost, PermanentError, TransientError
from jobs.failures import public_message
from jobs.models import Job
from jobs.pipeline import download as downloads
from jobs.pipeline import index as search_index
from jobs.pipeline.analyze import analyze
from jobs.pipeline.finalize import finalize
from jobs.pipeline.queue import queue_of
from jobs.pipeline.steps import (
    ANALYZE,
    FINALIZE,
    INDEX,
    POLL,
    TRANSCRIBE,
    backoff_seconds,
    next_step,
    poll_delay,
)
from jobs.providers import get_transcriber
from jobs.providers import limits as ratelimit
from jobs.providers.base import AudioSource, guarded
from jobs.signals import job_read
from jobs.state import (
    TRANSCRIPTION_SLOTS,
    fail_job,
    fence_after_write,
    lease_holder,
    lock_for_write,
    release,
    released,
    touch,
    update_job,
)
from jobs.step_claim import read_for_step
from meetings import results as meeting_services
from meetings.transcript import Transcript

logger = logging.getLogger(__name__)

Status, Stage = Job.Status, Job.Stage


def callback_token(job_id: object) -> str:
    """The secret AssemblyAI sends back with its completion callback for this job."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"assemblyai-callback:{job_id}".encode(), "sha256"
    ).hexdigest()


CALLBACK_HEADER = "X-Meeting-Intel-Callback"
SLOT_TTL_SECONDS = 6 * 3600


# --- Running a step -----------------------------------------------------------


def run_step(
    job_id: object,
    step: str,
    task_id: str,
    seq: int | None = None,
    celery_retries: int = 0,
    follow: Callable[[str, Job], str | None] | None = None,
) -> tuple[float | None, Job | None]:
    """Run `step` for the job if it is still the job's next step.

    Returns the delay before the job's next step, or None when there is
    nothing to schedule (stale message, lost claim, terminal job), and the
    job's row as the step left it in memory (None when it must be read again).

    `follow(step, job)` names a step to run next in this task, under the same
    lease (no release, read or claim in between), when a step succeeded with
    nothing to wait for; None ends the chain.

    Database, broker and Redis outages (INFRASTRUCTURE_ERRORS) are not the
    job's fault: they propagate to the task, which Celery retries with
    backoff, without using up JOB_MAX_RETRIES or counting as a redelivery
    (`celery_retries` is part of the lease token).
    """
    holder = lease_holder(task_id, celery_retries)
    # On PostgreSQL the read claims the job too when the step is due (one statement).
    read = read_for_step(
        job_id, step, holder, OPENING_NOTES.get(step, ""), seq, OPENING_STAGES.get(step)
    )
    job = read.job
    if job is None:
        return None, job
    job_read.send(sender=Job, job=job)
    if next_step(job) != step:
        read.give_back()
        return None, job
    if step == POLL and seq is not None and seq != job.transcript_polls:
        read.give_back()
        return None, job  # an older poll chain; the current one carries on
    if job.next_attempt_at and job.next_attempt_at > timezone.now():
        read.give_back()
        return (job.next_attempt_at - timezone.now()).total_seconds(), job
    if read.claim() is None:
        return None, None
    leases.hold(holder)
    try:
        while True:
            delay, outcome = _attempt(job, step, holder)
            following = None
            if (
                follow is not None
                and delay == 0
                and outcome == SUCCEEDED
                and job.lease_task == holder
                and job.step_retries == 0
            ):
                following = follow(step, job)
            if following is None:
                return _released(job, holder, delay, outcome)
            # The lease is kept: a crash mid-chain lets it lapse, and the
            # sweeper resumes the job at the step that was running.
            step = following
    finally:
        leases.drop(holder)


SUCCEEDED, CURRENT, STALE, LOST = "succeeded", "current", "stale", "lost"

# A step's opening message and the stage it works in, written by its claim (no
# statement of the step's own).
OPENING_NOTES = {INDEX: search_index.OPENING_NOTE, TRANSCRIBE: "Sending audio for transcription"}
OPENING_STAGES = {TRANSCRIBE: Stage.TRANSCRIBING}


def _attempt(job: Job, step: str, holder: str) -> tuple[float | None, str]:
    """Run one claimed step; the delay before the next, and how the row in memory stands.

    SUCCEEDED and CURRENT (a wait) leave the row in memory as it is in the
    database; after a retry or a failure it may be STALE (they write a fresh
    copy); LOST: the step no longer holds the job.
    """
    job_id = job.id
    try:
        return STEP_FUNCTIONS[step](job, holder), SUCCEEDED
    except Deferred as exc:
        try:
            touch(job, exc.reason, holder=holder)
        except JobLost:
            return None, LOST
        return max(exc.seconds, 0.05), CURRENT
    except TransientError as exc:
        return schedule_retry(job, holder, exc), STALE
    except PermanentError as exc:
        fail_job(job, exc.code, exc.message)
        return None, STALE
    except JobLost:
        logger.info("job %s changed under step %s; leaving it", job_id, step)
        return None, LOST
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        # A bug or an unexpected vendor error: retry like a transient error so
        # a blip heals, and fail visibly once retries run out.
        logger.exception("step %s of job %s crashed", step, job_id)
        error = TransientError("internal_error", f"{type(exc).__name__}: {exc}")
        return schedule_retry(job, holder, error), STALE


def _released(
    job: Job, holder: str, delay: float | None, outcome: str
) -> tuple[float | None, Job | None]:
    """Give the lease back (unless the step's last write did) and say what follows."""
    lost = outcome == LOST
    if job.lease_task == holder:
        # A step that succeeded clears its retry count in the same UPDATE that releases the lease.
        release(
            job,
            holder,
            delay,
            set_due=not lost,
            clear_retries=outcome == SUCCEEDED and job.step_retries > 0,
        )
    if lost and Job.objects.filter(id=job.id, status=Status.PENDING).exists():
        # Retried or reprocessed while this step ran: the new attempt's
        # message found the lease taken and was dropped; hand over now.
        return 0, None
    # After a retry or a failure the row in memory may be stale (they write a fresh copy).
    return delay, job if outcome in (SUCCEEDED, CURRENT) else None


def schedule_retry(job: Job, task_id: str, exc: TransientError) -> float | None:
    with transaction.atomic():
        try:
            job = lock_for_write(job, task_id)
        except JobLost:
            return None
        if job.step_retries >= settings.JOB_MAX_RETRIES:
            fail_job(
                job, exc.code, f"{exc.message} (gave up after {job.step_retries + 1} attempts)"
            )
            return None
        delay = backoff_seconds(job.step_retries)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        logger.info("job %s retries in %.0fs (%s): %s", job.id, delay, exc.code, exc.message)
        update_job(
            job,
            f"Retrying in {delay:.0f}s: {public_message(exc.code)}",
            status=Status.RETRYING,
            step_retries=job.step_retries + 1,
            attempts=job.attempts + 1,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
    return delay


def run_inline(job_id: object, on_change: Callable[[Job], None] | None = None) -> Job:
    """Run every step in this process until the job is terminal (the CLI's path)."""
    task_id = f"inline-{job_id}"
    while True:
        job = Job.objects.get(id=job_id)
        if on_change:
            on_change(job)
        step = next_step(job)
        if step is None:
            return job
        delay, _ = run_step(job_id, step, task_id, seq=job.transcript_polls)
        if delay:
            time.sleep(delay)


# --- The steps ------------------------------------------------------------------


def _audio_source(job: Job) -> AudioSource:
    if not job.audio:
        raise PermanentError("no_audio", "The job has no audio file")
    path = Path(job.audio.path)
    if not path.exists():
        raise PermanentError("audio_missing", "The job's audio file is missing from storage")
    callback_url, header = "", None
    if settings.TRANSCRIPT_CALLBACKS:
        callback_url = f"{settings.PUBLIC_BASE_URL}/hooks/assemblyai/{job.id}/"
        header = (CALLBACK_HEADER, callback_token(job.id))
    return AudioSource(
        path=path,
        language=job.language,
        # Known participants say how many voices to expect unless the client did.
        speakers_expected=job.speakers_expected or len(job.participants) or None,
        vocabulary=shaping.hints(job),
        callback_url=callback_url,
        callback_header=header,
    )


def transcribe(job: Job, task_id: str) -> float | None:
    # The claim entered the transcribing stage and said "Sending audio" (or, for a
    # run that starts, "Attempt N started").
    downloaded = False
    if not job.audio and job.audio_url:
        job, downloaded = downloads.fetch_audio(job, task_id), True
    transcriber = get_transcriber()
    if transcriber.name == "assemblyai" and not ratelimit.acquire_slot(
        TRANSCRIPTION_SLOTS, str(job.id), settings.ASSEMBLYAI_MAX_CONCURRENT, SLOT_TTL_SECONDS
    ):
        raise Deferred(15, "Waiting for a free transcription slot")
    if downloaded:
        update_job(job, OPENING_NOTES[TRANSCRIBE], holder=task_id)
    # The last write (the claim, or that note) was conditional on the lease: it is
    # the check before the first paid request.
    with guarded(fence_after_write(job, task_id)):
        result = transcriber.submit(_audio_source(job))
    if isinstance(result, Transcript):
        _save_transcript(job, task_id, result, transcriber.name, TRANSCRIBE)
        return 0
    # Conditional on the lease: a step that lost the job meanwhile keeps
    # nothing (the next attempt submits again, which a fence made rare).
    delay = 0 if _works_in_fetch(transcriber) else poll_delay(0)
    update_job(
        job,
        "Transcription submitted",
        holder=task_id,
        transcript_external_id=result,
        transcription_provider=transcriber.name,
        transcript_submitted_at=timezone.now(),
        transcript_polls=0,
        progress=15,
        **released(job, delay),
    )
    return delay


def _works_in_fetch(transcriber: object) -> bool:
    """The local transcriber recognises one window per `fetch`: poll it again at once."""
    return getattr(transcriber, "works_in_fetch", False)


def poll(job: Job, task_id: str) -> float | None:
    transcriber = get_transcriber(job.transcription_provider or None)
    result = transcriber.fetch(job.transcript_external_id)
    if result is None:
        if transcriber.name == "assemblyai":  # keep our slot while AssemblyAI works
            ratelimit.acquire_slot(
                TRANSCRIPTION_SLOTS,
                str(job.id),
                settings.ASSEMBLYAI_MAX_CONCURRENT,
                SLOT_TTL_SECONDS,
            )
        polls = job.transcript_polls + 1
        if _works_in_fetch(transcriber):
            # A window recognised: say how far along, live, and poll again at once.
            share = transcriber.progress(job.transcript_external_id)  # type: ignore[attr-defined]
            touch(
                job,
                f"Transcribing offline: {share:.0%} of the recording",
                holder=task_id,
                transcript_polls=polls,
                progress=15 + round(30 * share),
            )
            return 0
        # Polls are routine: refresh the heartbeat and progress without an event
        # each time, and give the lease back in the same statement.
        delay = poll_delay(polls)
        fields = {
            "transcript_polls": polls,
            "heartbeat_at": timezone.now(),
            "progress": min(45, 15 + polls * 2),
            **released(job, delay),
        }
        kept = Job.objects.filter(id=job.id, lease_task=task_id).update(**fields)
        job.transcript_polls, job.progress = polls, fields["progress"]
        if kept:
            job.lease_task, job.lease_expires, job.due_at = "", None, fields["due_at"]
            job.step_retries = fields.get("step_retries", job.step_retries)
        return delay
    _save_transcript(job, task_id, result, transcriber.name, POLL)
    if _works_in_fetch(transcriber):
        transcriber.forget(job.transcript_external_id)  # type: ignore[attr-defined]
    return 0


def _save_transcript(
    job: Job, task_id: str, transcript: Transcript, provider: str, step: str
) -> None:
    """Save the transcript and its checkpoint in one transaction (no row lock: the
    conditional state write rolls the transcript back if the step lost the job).

    When the index step that follows runs on another queue (it cannot be chained
    in this task), the same write gives the lease back, the index step due now.
    """
    handover = released(job, 0) if queue_of(INDEX) != queue_of(step) else {}
    with transaction.atomic():
        meeting_services.save_transcript(job, transcript, provider)
        update_job(
            job,
            f"Transcript saved: {len(transcript.utterances)} turns",
            holder=task_id,
            stage=Stage.ANALYZING,
            progress=50,
            transcript_saved_at=timezone.now(),
            transcription_provider=provider,
            audio_duration_seconds=transcript.duration_seconds,
            transcribed_seconds=job.transcribed_seconds
            + (transcript.duration_seconds or job.audio_duration_seconds or 0),
            analysis_steps_done=[],
            analysis_steps_failed=[],
            analysis_partials={},
            search_index="",
            **handover,
        )
        transaction.on_commit(lambda: ratelimit.release_slot(TRANSCRIPTION_SLOTS, str(job.id)))


STEP_FUNCTIONS: dict[str, Callable[[Job, str], float | None]] = {
    TRANSCRIBE: transcribe,
    POLL: poll,
    INDEX: search_index.index,
    ANALYZE: analyze,
    FINALIZE: finalize,
}
