"""The sweeper resends a step only when its message is lost: a job that is merely
queued behind a backlog is left alone, whatever its due time.

The broker here is a Redis server of the test's own with no worker, so a
queued message stays queued until the test drops it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline import sweeper

pytestmark = pytest.mark.django_db(transaction=True)


def overdue_job() -> Job:
    job = submit_job(Job(audio=ContentFile(b"RIFF", "a.wav")))  # its step is queued on commit
    Job.objects.filter(id=job.id).update(due_at=timezone.now() - timedelta(minutes=10))
    return job


def test_a_job_queued_behind_a_backlog_is_not_sent_twice(private_broker):
    job = overdue_job()
    assert private_broker.llen("transcription") == 1
    assert sweeper.sweep() == {"resumed": 0}
    assert private_broker.llen("transcription") == 1, "no duplicate message"
    assert Job.objects.get(id=job.id).status == Job.Status.PENDING


def test_a_job_whose_message_was_lost_is_sent_again_once(private_broker):
    job = overdue_job()
    private_broker.delete("transcription")  # lost: a Redis restart, or held by a dead worker
    assert sweeper.sweep() == {"resumed": 1}
    assert private_broker.llen("transcription") == 1
    assert sweeper.sweep() == {"resumed": 0}, "now queued: not sent again"
    assert "Resumed by the sweeper" in " ".join(job.events.values_list("message", flat=True))


def test_a_step_running_under_a_live_lease_is_left_alone(private_broker):
    job = overdue_job()
    private_broker.delete("transcription")
    Job.objects.filter(id=job.id).update(
        status=Job.Status.PROCESSING,
        lease_task="running-task",
        lease_expires=timezone.now() + timedelta(seconds=30),
    )
    assert sweeper.sweep() == {"resumed": 0}
    Job.objects.filter(id=job.id).update(lease_expires=timezone.now() - timedelta(seconds=1))
    assert sweeper.sweep() == {"resumed": 1}, "its worker died: the lease lapsed"
