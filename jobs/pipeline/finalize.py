"""The finalize step: the job completes, with its meeting's `degraded` list and its webhook.

It runs as a step of its own (after a retry, or when the analysis ran in an
earlier task), or inside the write of the analysis step that lands last
(`complete(..., landing=...)`): that step's checkpoint and the completion are
then one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.pipeline import index as search_index
from jobs.signals import job_finished
from jobs.state import released, update_job
from meeting_intel.lib.bulk import Rows, Write
from meetings.models import Meeting

Status, Stage = Job.Status, Job.Stage


def finalize(job: Job, task_id: str) -> float | None:
    complete(job, task_id)
    return None


def complete(
    job: Job, task_id: str, landing: dict[str, Any] | None = None, also: Sequence[Write] = ()
) -> None:
    """Complete the job in one transaction and one state change (one UPDATE, one event).

    The meeting's `degraded` list, the job's completion and `job_finished` (on
    which the webhooks app writes its outbox row) commit together or not at
    all. `landing` and `also`: the fields and writes of the analysis step whose
    answer completes the job, written by the same statement.
    """
    now = timezone.now()
    degraded = [*job.analysis_steps_failed, *search_index.degraded(job)]
    writes = list(also)
    # In a chain the meeting is in memory as the steps left it (a new transcript's
    # meeting starts with none degraded): an unchanged list needs no write.
    known = job._state.fields_cache.get("meeting")
    if known is None or known.degraded != degraded:
        _write_degraded(writes, job, {"degraded": degraded, "updated_at": now})
    fields = {
        **(landing or {}),
        "status": Status.COMPLETED,
        "stage": Stage.DONE,
        "progress": 100,
        "results_saved_at": now,
        "completed_at": now,
        "error_code": "",
        "error_message": "",
        **released(job, None),
    }
    message = f"Completed (without {', '.join(degraded)})" if degraded else "Completed"
    # Inside the landing step's transaction when there is one (no savepoint).
    with transaction.atomic(savepoint=False):
        update_job(job, message, holder=task_id, also=writes, **fields)
        if known is not None:
            known.degraded = degraded
        job_finished.send(sender=Job, job=job, event="job.completed")


def _write_degraded(writes: list[Write], job: Job, values: dict[str, Any]) -> None:
    """Add the meeting's `degraded` write to `writes`, in the step's own UPDATE of the
    meeting if it has one: one statement must not update a row twice."""
    for i, write in enumerate(writes):
        if not isinstance(write, Rows) and write[0].model is Meeting and write[1] is not None:
            writes[i] = (write[0], {**write[1], **values})
            return
    writes.append((Meeting.objects.filter(job_id=job.id), values))
