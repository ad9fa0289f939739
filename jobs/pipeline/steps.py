"""The pipeline's steps and when each runs: the next step from a job's checkpoints, and the delays.

A job's next step is derived from its saved checkpoints, never from the
message that woke the worker:

    transcribe → poll (while the provider works) → index → analyze → finalize
"""

from __future__ import annotations

import random

from django.conf import settings

from jobs.models import Job
from jobs.providers.analysis_steps import pending_analysis

TRANSCRIBE, POLL, INDEX, ANALYZE, FINALIZE = "transcribe", "poll", "index", "analyze", "finalize"


def next_step(job: Job) -> str | None:
    if job.status in Job.TERMINAL:
        return None
    if job.transcript_saved_at is None:
        return POLL if job.transcript_external_id else TRANSCRIBE
    if not job.search_index:
        return INDEX
    if pending_analysis(job):
        return ANALYZE
    return FINALIZE


def backoff_seconds(retry: int) -> float:
    """base·2^retry with equal jitter, so retries of many jobs spread out."""
    delay = settings.JOB_RETRY_BASE_SECONDS * (2**retry)
    return delay / 2 + random.uniform(0, delay / 2)


def poll_delay(polls: int) -> float:
    return min(
        settings.TRANSCRIPT_POLL_SECONDS * (1.5 ** min(polls, 20)),
        settings.TRANSCRIPT_POLL_MAX_SECONDS,
    )
