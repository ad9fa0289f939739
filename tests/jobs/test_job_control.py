"""Cancel, retry, reprocess and the sweeper: each resumes from the checkpoints,
never pays twice, and a cancelled job sends no completion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from jobs.actions import cancel_job, reprocess_job, retry_job, submit_job
from jobs.models import Job
from jobs.pipeline import sweeper
from jobs.pipeline.runner import run_inline
from meetings.models import Meeting
from tests.conftest import SAMPLE_AUDIO, wait_for_job, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def new_job(**fields) -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        return submit_job(Job(audio=ContentFile(fh.read(), "a.wav"), **fields), enqueue=False)


def test_reprocess_from_analysis_keeps_the_transcript(provider_settings, fake_aai, fake_openai):
    job = run_inline(new_job().id)
    submissions, chats = len(fake_aai.submissions), len(fake_openai.request_times("chat"))
    segments = list(Meeting.objects.get(job=job).segments.values_list("id", flat=True))
    assert reprocess_job(job, "analysis")
    job = run_inline(job.id)
    assert job.status == "completed"
    assert len(fake_aai.submissions) == submissions, "no second transcription"
    assert len(fake_openai.request_times("chat")) == chats + 4
    meeting = Meeting.objects.get(job=job)
    assert list(meeting.segments.values_list("id", flat=True)) == segments
    assert meeting.action_items.count() == 1 and meeting.decisions.count() == 1


def test_reprocess_from_transcription_replaces_rows_exactly(provider_settings, fake_aai):
    job = run_inline(new_job().id)
    submissions = len(fake_aai.submissions)
    assert reprocess_job(job, "transcription")
    job = run_inline(job.id)
    assert len(fake_aai.submissions) == submissions + 1
    meeting = Meeting.objects.get(job=job)
    assert meeting.segments.count() == len(fake_aai.utterances)
    assert meeting.speakers.count() == 2 and meeting.action_items.count() == 1
    assert job.attempts == 2


def test_retry_resumes_after_the_last_checkpoint(provider_settings, fake_aai, fake_openai):
    provider_settings.JOB_MAX_RETRIES = 0
    fake_openai.fail(400, times=None, tag="summary")
    fake_aai_submissions = len(fake_aai.submissions)
    job = run_inline(new_job().id)
    assert job.status == "completed" and job.meeting.degraded == ["summary"]
    # The summary would have carried the provider's name; the other steps' saves write it.
    assert job.meeting.analysis_provider == "openai"
    assert not retry_job(job), "a completed job is reprocessed, not retried"
    fake_openai.clear_faults()
    assert reprocess_job(job, "analysis")
    job = run_inline(job.id)
    assert job.meeting.degraded == [] and job.meeting.summary
    assert len(fake_aai.submissions) == fake_aai_submissions + 1


def test_state_rules_for_control(provider_settings):
    job = new_job()
    assert not retry_job(job) and not reprocess_job(job, "analysis")
    assert cancel_job(job)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.completed_at
    assert not cancel_job(job)
    assert retry_job(job)
    assert Job.objects.get(id=job.id).status == "pending"


@pytest.mark.e2e
def test_a_cancelled_job_stops_at_its_next_step_and_sends_no_completion(
    platform, api_key, receiver, fake_openai
):
    fake_openai.delay_responses(1.5, times=None, route="chat")
    job = new_job(webhook_url=receiver.hook_url(), webhook_secret="s")
    from jobs.pipeline.queue import enqueue_next

    enqueue_next(job.id)
    wait_until(lambda: Job.objects.get(id=job.id).stage == "analyzing", timeout=30)
    assert cancel_job(job)
    wait_until(lambda: not Job.objects.get(id=job.id).lease_task, timeout=30)
    job.refresh_from_db()
    assert job.status == "cancelled", list(job.events.values_list("status", "stage", "message"))
    assert job.events.order_by("-created_at", "-id").first().status == "cancelled"
    with pytest.raises(TimeoutError):
        receiver.wait_for(1, timeout=3)


@pytest.mark.e2e
def test_the_sweeper_enqueues_jobs_whose_enqueue_was_lost(platform):
    job = new_job()  # committed, but its message never sent
    Job.objects.filter(id=job.id).update(due_at=timezone.now() - timedelta(minutes=5))
    assert sweeper.sweep()["resumed"] == 1
    assert wait_for_job(job.id, timeout=60).status == "completed"
    assert "Resumed by the sweeper" in " ".join(job.events.values_list("message", flat=True))


@pytest.mark.e2e
def test_the_sweeper_resumes_a_job_whose_worker_vanished(platform, settings):
    job = new_job()
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 60)
    Job.objects.filter(id=job.id).update(
        status="processing",
        stage="transcribing",
        heartbeat_at=stale,
        due_at=stale,
        lease_task="dead-task",
        lease_expires=stale,
    )
    assert sweeper.sweep()["resumed"] == 1
    assert sweeper.sweep()["resumed"] == 0, "a resumed job is not sent twice"
    assert wait_for_job(job.id, timeout=60).status == "completed"
