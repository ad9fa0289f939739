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

from jobs import shaping
from jobs.errors import Deferred, JobLost, PermanentError, TransientError
from jobs.failures import public_message
from jobs.models import Job
from jobs.pipeline import download as downloads
from jobs.pipeline import index as search_index
from jobs.pipeline.analyze import analyze
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
from jobs.providers.base import AudioSource
from jobs.signals import job_finished
from jobs.state import (
    TRANSCRIPTION_SLOTS,
    claim,
    fail_job,
    lock_for_write,
    release,
    touch,
    update_job,
)
from meetings import results as meeting_services
from meetings.models import Meeting
from meetings.transcript import Transcript

logger = logging.getLogger(__name__)

Status, Stage = Job.Status, Job.Stage


def callback_token(job: Job) -> str:
    """The secret AssemblyAI sends back with its completion callback for this job."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"assemblyai-callback:{job.id}".encode(), "sha256"
    ).hexdigest()


CALLBACK_HEADER = "X-Meeting-Intel-Callback"
SLOT_TTL_SECONDS = 6 * 3600


# --- Running a step -----------------------------------------------------------


def run_step(job_id: object, step: str, task_id: str, seq: int | None = None) -> float | None:
    """Run `step` for the job if it is still the job's next step.

    Returns the delay before the job's next step, or None when there is
    nothing to schedule (stale message, lost claim, terminal job).
    """
    job = Job.objects.filter(id=job_id).first()
    if job is None or next_step(job) != step:
        return None
    if step == POLL and seq is not None and seq != job.transcript_polls:
        return None  # an older poll chain; the current one carries on
    if job.next_attempt_at and job.next_attempt_at > timezone.now():
        return (job.next_attempt_at - timezone.now()).total_seconds()
    job = claim(job_id, task_id)
    if job is None:
        return None
    try:
        delay = STEP_FUNCTIONS[step](job, task_id)
        if job.step_retries:
            Job.objects.filter(id=job.id).update(step_retries=0)
        return delay
    except Deferred as exc:
        touch(job, exc.reason)
        return max(exc.seconds, 0.05)
    except TransientError as exc:
        return schedule_retry(job, task_id, exc)
    except PermanentError as exc:
        fail_job(job, exc.code, exc.message)
    except JobLost:
        logger.info("job %s changed under step %s; leaving it", job_id, step)
    except Exception as exc:
        # A bug or an unexpected vendor error: retry like a transient error so
        # a blip heals, and fail visibly once retries run out.
        logger.exception("step %s of job %s crashed", step, job_id)
        return schedule_retry(
            job, task_id, TransientError("internal_error", f"{type(exc).__name__}: {exc}")
        )
    finally:
        release(job, task_id)
    return None


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
        delay = run_step(job_id, step, task_id, seq=job.transcript_polls)
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
        header = (CALLBACK_HEADER, callback_token(job))
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
    if not job.audio and job.audio_url:
        job = downloads.fetch_audio(job, task_id)
    transcriber = get_transcriber()
    if transcriber.name == "assemblyai" and not ratelimit.acquire_slot(
        TRANSCRIPTION_SLOTS, str(job.id), settings.ASSEMBLYAI_MAX_CONCURRENT, SLOT_TTL_SECONDS
    ):
        raise Deferred(15, "Waiting for a free transcription slot")
    update_job(job, "Sending audio for transcription", stage=Stage.TRANSCRIBING)
    result = transcriber.submit(_audio_source(job))
    if isinstance(result, Transcript):
        _save_transcript(job, task_id, result, transcriber.name)
        return 0
    with transaction.atomic():
        job = lock_for_write(job, task_id)
        update_job(
            job,
            "Transcription submitted",
            transcript_external_id=result,
            transcription_provider=transcriber.name,
            transcript_submitted_at=timezone.now(),
            transcript_polls=0,
            progress=15,
        )
    return poll_delay(0)


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
        # Polls are routine: refresh the heartbeat and progress without an event each time.
        Job.objects.filter(id=job.id, lease_task=task_id).update(
            transcript_polls=polls,
            heartbeat_at=timezone.now(),
            progress=min(45, 15 + polls * 2),
        )
        return poll_delay(polls)
    _save_transcript(job, task_id, result, transcriber.name)
    return 0


def _save_transcript(job: Job, task_id: str, transcript: Transcript, provider: str) -> None:
    with transaction.atomic():
        job = lock_for_write(job, task_id)
        meeting_services.save_transcript(job, transcript, provider)
        update_job(
            job,
            f"Transcript saved: {len(transcript.utterances)} turns",
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
        )
        transaction.on_commit(lambda: ratelimit.release_slot(TRANSCRIPTION_SLOTS, str(job.id)))


def finalize(job: Job, task_id: str) -> float | None:
    with transaction.atomic():
        fresh = lock_for_write(job, task_id)
        meeting = Meeting.objects.get(job=fresh)
        meeting.degraded = [*fresh.analysis_steps_failed, *search_index.degraded(fresh)]
        meeting.save(update_fields=["degraded", "updated_at"])
        update_job(fresh, "Saving results", stage=Stage.SAVING, results_saved_at=timezone.now())
    with transaction.atomic():
        fresh = lock_for_write(job, task_id)
        update_job(fresh, "Notifying", stage=Stage.NOTIFYING)
        job_finished.send(sender=Job, job=fresh, event="job.completed")
        degraded = f" (without {', '.join(meeting.degraded)})" if meeting.degraded else ""
        update_job(
            fresh,
            f"Completed{degraded}",
            status=Status.COMPLETED,
            stage=Stage.DONE,
            progress=100,
            completed_at=timezone.now(),
            error_code="",
            error_message="",
        )
    return None


STEP_FUNCTIONS: dict[str, Callable[[Job, str], float | None]] = {
    TRANSCRIBE: transcribe,
    POLL: poll,
    INDEX: search_index.index,
    ANALYZE: analyze,
    FINALIZE: finalize,
}
