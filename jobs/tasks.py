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

from jobs.pipeline import runner, sweeper
from jobs.pipeline.queue import STEP_TASK_NAMES, enqueue_next
from jobs.pipeline.steps import ANALYZE, FINALIZE, INDEX, POLL, TRANSCRIBE

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
    delay = runner.run_step(job_id, step, task.request.id, seq=seq)
    if delay is not None:
        enqueue_next(job_id, delay)


@shared_task(name=STEP_TASK_NAMES[TRANSCRIBE], **STEP_OPTIONS)
def transcribe(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, TRANSCRIBE, seq)


@shared_task(name=STEP_TASK_NAMES[POLL], **STEP_OPTIONS)
def poll_transcript(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, POLL, seq)


@shared_task(name=STEP_TASK_NAMES[INDEX], **STEP_OPTIONS)
def index(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, INDEX, seq)


@shared_task(name=STEP_TASK_NAMES[ANALYZE], **STEP_OPTIONS)
def analyze(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, ANALYZE, seq)


@shared_task(name=STEP_TASK_NAMES[FINALIZE], **STEP_OPTIONS)
def finalize(self: Task, job_id: str, seq: int | None = None) -> None:
    _run(self, job_id, FINALIZE, seq)


@shared_task(name="jobs.sweep", autoretry_for=INFRASTRUCTURE_ERRORS, max_retries=3)
def sweep() -> dict[str, int]:
    return sweeper.sweep()
