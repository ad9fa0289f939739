"""The search index step: group the saved transcript into passages and embed them.

Runs once the transcript is saved, before analysis, so a meeting is
searchable by meaning while its analysis is still running. Checkpointed on
``Job.search_index``; a transient error (or a crash) is retried like any
step's, and once retries run out, or at once on a permanent error, it degrades:
``search_index`` joins the meeting's ``degraded`` list and the job goes on
(keyword search over the transcript needs no index and still works).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.errors import INFRASTRUCTURE_ERRORS, Deferred, JobLost, PermanentError, TransientError
from jobs.models import Job
from jobs.providers import get_embedder
from jobs.providers.base import guarded
from jobs.state import fence_after_write, touch, update_job
from meetings.models import Meeting
from meetings.search import passages

logger = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
DEGRADED_NAME = "search_index"
OPENING_NOTE = "Indexing the transcript for search"
READY_NOTE = "Search index ready"


def index(job: Job, task_id: str) -> float | None:
    # The row's cached relation: in a chain, the steps after the first (and the
    # completion's broadcast) reuse the meeting the first step read.
    meeting = job.meeting
    try:
        embedder = get_embedder()
        items = passages.drafts(meeting)
        if job.message != OPENING_NOTE:
            # Chained after the transcript's save, or a run that started: say
            # what the step does. Otherwise the claim just did.
            touch(job, OPENING_NOTE, holder=task_id)
        # Either write was conditional on the lease (the claim, the transcript's
        # save, or that note): it is the check before the first paid request.
        with guarded(fence_after_write(job, task_id)):
            embedded = embedder.embed([d.text for d in items]) if items else None
    except (Deferred, JobLost, *INFRASTRUCTURE_ERRORS):
        raise
    except PermanentError as exc:
        return _degrade(job, task_id, exc.message)
    except Exception as exc:
        # A provider blip, a time limit, a bug: retried like any step, so a
        # blip heals; once retries run out search degrades and the job goes on.
        if job.step_retries < settings.JOB_MAX_RETRIES:
            raise
        if not isinstance(exc, TransientError):
            logger.exception("search index of job %s failed", job.id)
        return _degrade(job, task_id, getattr(exc, "message", f"{type(exc).__name__}: {exc}"))
    # No row lock: the conditional state write rolls the index back if the step lost the job.
    # The meeting has no passages: they are deleted wherever `search_index` is cleared
    # (a transcript's save, a reprocess), in the same transaction. The meeting's
    # `search_indexed_at` stamp rides in the checkpoint's statement.
    with transaction.atomic():
        count, stamp = 0, []
        if items:
            count = passages.insert_index(meeting, items, embedded.vectors, embedder.name)
            meeting.search_indexed_at = meeting.updated_at = timezone.now()
            stamp = [
                (
                    Meeting.objects.filter(pk=meeting.pk),
                    {
                        "search_indexed_at": meeting.search_indexed_at,
                        "updated_at": meeting.updated_at,
                    },
                )
            ]
        update_job(
            job,
            f"{READY_NOTE}: {count} passages",
            holder=task_id,
            also=stamp,
            search_index=DONE,
            embedding_tokens=job.embedding_tokens + (embedded.tokens if embedded else 0),
        )
    return 0


def _degrade(job: Job, task_id: str, reason: str) -> float:
    logger.warning("search index of job %s degraded: %s", job.id, reason)
    update_job(job, "Search index unavailable", holder=task_id, search_index=FAILED)
    return 0


def degraded(job: Job) -> list[str]:
    """What the index step adds to the meeting's `degraded` list."""
    return [DEGRADED_NAME] if job.search_index == FAILED else []
