"""Queueing a job's next step, by task name.

The one place that knows which Celery task runs which step. It sends by
name (``jobs.tasks`` registers the tasks under these names), so nothing in
the pipeline or the state writes imports the task module back.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from jobs.models import Job
from jobs.pipeline.steps import ANALYZE, FINALIZE, INDEX, POLL, TRANSCRIBE, next_step

logger = logging.getLogger(__name__)

# Providers whose `submit` returns the finished transcript (no polling). The
# local transcriber is not one: it works one window per poll task.
SYNCHRONOUS_TRANSCRIBERS = ("openai",)

STEP_TASK_NAMES = {
    TRANSCRIBE: "jobs.transcribe",
    POLL: "jobs.poll_transcript",
    INDEX: "jobs.index",
    ANALYZE: "jobs.analyze",
    FINALIZE: "jobs.finalize",
}


def queue_of(step: str) -> str:
    """The queue the step's task is routed to (CELERY_TASK_ROUTES)."""
    route = settings.CELERY_TASK_ROUTES.get(STEP_TASK_NAMES[step], {})
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def enqueue_next(job_id: object, delay: float | None = None, job: Job | None = None) -> None:
    """Queue the job's next step as a Celery task (after `delay` seconds).

    `job` is the row as the step that just ran left it (in memory), saving a
    re-read; without it the row is read.
    """
    if job is None:
        job = Job.objects.filter(id=job_id).first()
    step = next_step(job) if job else None
    if step is None:
        return
    countdown = min(delay or 0, settings.MAX_COUNTDOWN_SECONDS)
    limits: dict[str, int] = {}
    if step == TRANSCRIBE and settings.TRANSCRIPTION_PROVIDER in SYNCHRONOUS_TRANSCRIBERS:
        # The whole transcription happens inside this task: its limits must
        # outlast the provider's own timeout, or a soft limit would cut a paid
        # request short and the retry would pay again.
        limits = {
            "soft_time_limit": settings.SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT,
            "time_limit": settings.SYNC_TRANSCRIPTION_TIME_LIMIT,
        }
    # A signature by name runs through the registered task when this process
    # has it (its options, eager mode in tests) and is sent by name otherwise.
    current_app.signature(
        STEP_TASK_NAMES[step],
        args=[str(job_id)],
        kwargs={"seq": job.transcript_polls} if step == POLL else {},
    ).apply_async(countdown=countdown or None, **limits)


def enqueue_poll(job_id: object) -> None:
    """Check on the job's transcript now, outside its poll chain (no `seq`): a
    completion callback. The poll task drops it if the job is past polling."""
    current_app.signature(STEP_TASK_NAMES[POLL], args=[str(job_id)]).apply_async()


def enqueue_next_on_commit(job_id: object) -> None:
    """Queue the job's next step once the current transaction commits."""
    transaction.on_commit(lambda: enqueue_or_leave_to_sweeper(job_id))


def enqueue_or_leave_to_sweeper(job_id: object) -> None:
    """Enqueue the job's next step; with the broker down, leave it to the sweeper.

    The job is committed (pending, or restarted) before this runs, so a broker
    outage must not turn an accepted request into a 500: the job is marked as
    owed an enqueue (`next_attempt_at`, which a pending job otherwise lacks),
    and the sweeper's next run after the broker is back enqueues it.
    """
    try:
        enqueue_next(job_id)
    except (OperationalError, ConnectionError, TimeoutError, OSError):
        Job.objects.filter(id=job_id, status=Job.Status.PENDING).update(
            next_attempt_at=timezone.now()
        )
        logger.warning(
            "broker unreachable: job %s is saved and the sweeper will enqueue it",
            job_id,
            exc_info=True,
        )
