"""Fenced paid calls: a step re-checks cancellation and its lease right before every
paid request, and a retried job waits for the previous attempt's step to let go.

Run on the shared test platform (a real worker from the Procfile, the real SDKs
against the loopback fakes)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from jobs.actions import cancel_job, retry_job, submit_job
from jobs.models import Job
from jobs.pipeline.queue import enqueue_next
from tests.conftest import SAMPLE_AUDIO, wait_for_job, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UPLOAD_SECONDS = 3.0


def new_job() -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        return submit_job(Job(audio=ContentFile(fh.read(), "a.wav")), enqueue=False)


def job_uploading(fake_aai) -> tuple[Job, int, int]:
    """A job whose (slow) upload to AssemblyAI has begun; the counts before it."""
    fake_aai.delay_responses(UPLOAD_SECONDS, times=1, route="upload")
    submissions, uploads = len(fake_aai.submissions), len(fake_aai.request_times("upload"))
    job = new_job()
    enqueue_next(job.id)
    wait_until(lambda: len(fake_aai.request_times("upload")) > uploads, timeout=30)
    return job, submissions, uploads


def test_cancel_then_retry_during_a_slow_upload_pays_once(platform, fake_aai):
    job, submissions, uploads = job_uploading(fake_aai)
    assert cancel_job(job)
    assert retry_job(job)

    done = wait_for_job(job.id, timeout=60)
    assert done.status == "completed", done.error_message
    assert len(fake_aai.submissions) == submissions + 1, "one paid transcription"
    first, second = fake_aai.request_times("upload")[uploads : uploads + 2]
    assert second - first >= UPLOAD_SECONDS - 0.1, (
        "the retry started only once the cancelled attempt's step let go of the lease"
    )
    messages = list(done.events.values_list("message", flat=True))
    assert messages.count("Transcription submitted") == 1, messages


def test_a_job_cancelled_during_its_upload_is_never_submitted(platform, fake_aai):
    job, submissions, _ = job_uploading(fake_aai)
    assert cancel_job(job)
    wait_until(lambda: not Job.objects.get(id=job.id).lease_task, timeout=30)
    assert len(fake_aai.submissions) == submissions
    assert Job.objects.get(id=job.id).status == "cancelled"
