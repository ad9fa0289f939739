"""Celery tasks: ids in, the pipeline does the work.

Each step task runs one checkpointed step and queues the next. Database or
broker outages raise out of the step and are retried by Celery with backoff;
provider errors are handled by the pipeline itself.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db import DatabaseError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.pipeline import runner as pipeline
from jobs.pipeline import sweeper

INFRASTRUCTURE_ERRORS = (DatabaseError, KombuOperationalError, RedisConnectionError)
STEP_OPTIONS = {
    "bind": True,
    "autoretry_for": INFRASTRUCTURE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 30,
}


def _run(task: Task, job_id: str, step: str, seq: int | None) -> None:
    delay = pipeline.run_step(job_id, step, task.request.id, seq=seq)
    if delay is not None:
        pipeline.enqueue_next(job_id, delay)


@shared_task(name="jobs.transcribe", **STEP_OPTIONS)
def transcribe(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, pipeline.TRANSCRIBE, seq)


@shared_task(name="jobs.poll_transcript", **STEP_OPTIONS)
def poll_transcript(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, pipeline.POLL, seq)


@shared_task(name="jobs.index", **STEP_OPTIONS)
def index(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, pipeline.INDEX, seq)


@shared_task(name="jobs.analyze", **STEP_OPTIONS)
def analyze(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, pipeline.ANALYZE, seq)


@shared_task(name="jobs.finalize", **STEP_OPTIONS)
def finalize(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, pipeline.FINALIZE, seq)


@shared_task(name="jobs.sweep", autoretry_for=INFRASTRUCTURE_ERRORS, max_retries=3)
def sweep() -> dict[str, int]:
    return sweeper.sweep()


STEP_TASKS = {
    pipeline.TRANSCRIBE: transcribe,
    pipeline.POLL: poll_transcript,
    pipeline.INDEX: index,
    pipeline.ANALYZE: analyze,
    pipeline.FINALIZE: finalize,
}
