"""Audio retention: recordings go AUDIO_RETENTION_DAYS after their job finished;
transcripts and results stay."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from jobs.models import Job
from jobs.retention import purge_audio, purge_expired_audio
from meeting_intel.celery import app
from meetings.models import Meeting

pytestmark = pytest.mark.django_db


def _job(status: str, finished_days_ago: float | None) -> Job:
    job = Job(status=status)
    if finished_days_ago is not None:
        job.completed_at = timezone.now() - timedelta(days=finished_days_ago)
    job.audio.save("retention.wav", ContentFile(b"RIFF....WAVE"), save=False)
    job.save()
    return job


def test_it_deletes_expired_audio_and_keeps_the_transcript(settings) -> None:
    settings.AUDIO_RETENTION_DAYS = 30
    old = _job(Job.Status.COMPLETED, finished_days_ago=31)
    meeting = Meeting.objects.create(job=old, summary="kept")
    failed = _job(Job.Status.FAILED, finished_days_ago=45)
    recent = _job(Job.Status.COMPLETED, finished_days_ago=29)
    running = _job(Job.Status.RETRYING, finished_days_ago=None)
    Job.objects.filter(id=running.id).update(created_at=timezone.now() - timedelta(days=90))
    old_path, recent_path = Path(old.audio.path), Path(recent.audio.path)

    assert purge_expired_audio() == 2

    old.refresh_from_db()
    assert not old.audio and not old_path.exists()
    assert not Job.objects.get(id=failed.id).audio
    assert Meeting.objects.get(id=meeting.id).summary == "kept"
    assert "Audio deleted" in old.events.last().message
    assert Job.objects.get(id=recent.id).audio and recent_path.exists()
    assert Job.objects.get(id=running.id).audio
    assert purge_expired_audio() == 0  # nothing left to do


def test_zero_days_keeps_audio_forever(settings) -> None:
    settings.AUDIO_RETENTION_DAYS = 0
    job = _job(Job.Status.COMPLETED, finished_days_ago=3650)
    assert purge_expired_audio() == 0
    assert Job.objects.get(id=job.id).audio


def test_beat_runs_the_purge_daily_on_the_maintenance_queue() -> None:
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "jobs.purge_audio"]
    assert entry["schedule"].remaining_estimate(timezone.now()) <= timedelta(days=1)
    assert app.amqp.router.route({}, "jobs.purge_audio")["queue"].name == "maintenance"
    assert purge_audio.name == "jobs.purge_audio"


def test_a_fresh_worker_process_registers_the_purge_task() -> None:
    # Autodiscovery imports only jobs/tasks.py; jobs/apps.py imports retention.
    check = (
        "import django; django.setup(); from meeting_intel.celery import app; "
        "app.loader.import_default_modules(); print('jobs.purge_audio' in app.tasks)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    assert result.stdout.strip().splitlines()[-1:] == ["True"], result.stderr
