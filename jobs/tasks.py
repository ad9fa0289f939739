"""Celery tasks: ids in, the pipeline does the work.

Each step task runs one checkpointed step and queues the next. Database or
broker outages raise out of the step and are retried by Celery with backoff;
provider errors are handled by the pipeline itself.
"""

from __future__ import annotations

import time

from celery import Task, shared_task
from django.conf import settings

from jobs.errors import INFRASTRUCTURE_ERRORS
from jobs.models import Job
from jobs.pipeline import runner, sweeper
from jobs.pipeline.queue import STEP_TASK_NAMES, enqueue_next, queue_of
from jobs.pipeline.steps import ANALYZE, FINALIZE, INDEX, POLL, TRANSCRIBE, next_step

# An outage is retried for as long as it lasts (about an hour at the longest
# backoff) with countdowns that stay well inside the visibility timeout; it
# never touches the job's own retry budget. Nobody reads a step's result, so
# none is stored (no result-backend rows per task).
STEP_OPTIONS = {
    "bind": True,
    "autoretry_for": INFRASTRUCTURE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": min(60, settings.MAX_COUNTDOWN_SECONDS),
    "retry_jitter": True,
    "max_retries": 100,
    "ignore_result": True,
}


# A step due at once whose task runs on the same queue runs in this task, while
# the task is young: index, analyze and finalize follow each other without a
# trip through the broker and a wait behind every other job's queued steps.
# The young-task bound keeps a chain inside the soft time limit (an analyze
# step stops after ANALYSIS_TASK_BUDGET_SECONDS, at most half of it).
CHAIN_WHILE_YOUNGER_THAN = settings.TASK_SOFT_TIME_LIMIT / 10


def _run(task: Task, job_id: str, step: str, seq: int | None) -> None:
    started = time.monotonic()
    retries = task.request.retries or 0

    def follow(done: str, job: Job) -> str | None:
        # The chained step runs under the lease this task already holds; a
        # crash mid-chain lets the lease lapse, and the sweeper resumes the job.
        if time.monotonic() - started >= CHAIN_WHILE_YOUNGER_THAN:
            return None
        return chained_step(job_id, done, job)

    delay, job = runner.run_step(
        job_id, step, task.request.id, seq=seq, celery_retries=retries, follow=follow
    )
    if delay is not None:
        enqueue_next(job_id, delay, job)


def chained_step(job_id: str, step: str, job: Job | None = None) -> str | None:
    """The job's next step when its task runs on the same queue as `step`'s, else None.

    `job` is the row as the step left it in memory, if it is known (else it is read).
    """
    if job is None:
        job = Job.objects.filter(id=job_id).first()
    following = next_step(job) if job is not None else None
    if following is None or following == POLL:
        return None
    if queue_of(following) != queue_of(step):
        return None
    return following


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
