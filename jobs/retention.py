"""Audio retention: a recording is deleted AUDIO_RETENTION_DAYS after its job
finished, and the meeting's semantic search index with it. Transcripts,
results (still found by keyword search) and the job's timeline are kept.

Run daily by beat (``jobs.purge_audio``, on the maintenance queue). Only
terminal jobs lose audio, so a job still running or retrying never does; a
job restarted later can be reprocessed from its analysis, not re-transcribed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from jobs.models import Job, JobEvent
from meetings.models import Meeting
from meetings.search import passages

logger = logging.getLogger(__name__)

BATCH = 500


def purge_expired_audio(now: datetime | None = None) -> int:
    """Delete the audio of jobs that finished more than AUDIO_RETENTION_DAYS ago.

    Returns how many recordings were deleted; 0 days keeps audio forever.
    The field is cleared first with a conditional update, so a job restarted
    meanwhile is left alone, and each deletion is noted on the job's timeline.
    """
    days = settings.AUDIO_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    storage = Job._meta.get_field("audio").storage
    expired = (
        Job.objects.filter(status__in=Job.TERMINAL, completed_at__lt=cutoff)
        .exclude(audio="")
        .order_by("completed_at")
        .values_list("id", "audio", "status", "stage", "progress", "attempts")
    )
    purged = 0
    while batch := list(expired[:BATCH]):
        for job_id, name, status, stage, progress, attempts in batch:
            cleared = Job.objects.filter(id=job_id, status__in=Job.TERMINAL, audio=name).update(
                audio=""
            )
            if not cleared:
                continue
            storage.delete(name)
            # The semantic index goes with the recording; keyword search over
            # the transcript stays until the meeting is deleted.
            meeting = Meeting.objects.filter(job_id=job_id).first()
            if meeting is not None:
                passages.remove_index(meeting)
            JobEvent.objects.create(
                job_id=job_id,
                status=status,
                stage=stage,
                progress=progress,
                attempt=attempts,
                message=f"Audio deleted: kept {days} days after the job finished",
            )
            purged += 1
    if purged:
        logger.info("retention: deleted the audio of %d jobs finished before %s", purged, cutoff)
    return purged


@shared_task(name="jobs.purge_audio", autoretry_for=(DatabaseError,), max_retries=3)
def purge_audio() -> int:
    return purge_expired_audio()
