"""Repairs what a crash or a lost message left behind; run by beat every minute.

- Jobs whose heartbeat went stale with no live lease are resumed at their
  next step (a worker died, or a message was lost).
- Transcriptions whose callback never came are polled: a poll chain whose
  message was lost shows up as a stale heartbeat too.
- Jobs left `pending` because the enqueue after commit was lost are enqueued;
  those whose enqueue failed (the broker was down) carry `next_attempt_at` and
  are enqueued at the first sweep once the broker is back.
- Retries whose time has long passed (their message was lost) are re-sent.
Re-enqueuing is safe: every step checks the job's checkpoints and lease.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job
from jobs.pipeline.queue import enqueue_or_leave_to_sweeper
from jobs.state import update_job

logger = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    lease_free = Q(lease_task="") | Q(lease_expires__lt=now)
    pending_grace = now - timedelta(seconds=max(30, settings.JOB_STALE_SECONDS // 10))

    stale = Job.objects.filter(lease_free).filter(
        Q(status=Job.Status.PROCESSING, heartbeat_at__lt=stale_before)
        | (
            Q(status=Job.Status.PENDING, created_at__lt=pending_grace)
            & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=pending_grace))
        )
        | Q(status=Job.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=Job.Status.RETRYING, next_attempt_at__lt=stale_before)
    )
    resumed = 0
    for job_id, status in stale.values_list("id", "status")[:500]:
        # Touch the heartbeat first so the next sweep does not send it again.
        owed = {"next_attempt_at": None} if status == Job.Status.PENDING else {}
        touched = (
            Job.objects.filter(id=job_id, status=status)
            .filter(lease_free)
            .update(heartbeat_at=now, **owed)
        )
        if not touched:
            continue
        update_job(Job.objects.get(id=job_id), "Resumed by the sweeper after it stalled")
        enqueue_or_leave_to_sweeper(job_id)
        resumed += 1
    if resumed:
        logger.warning("sweeper resumed %d stalled jobs", resumed)
    return {"resumed": resumed}
