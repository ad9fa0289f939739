"""One worker with concurrency 2 holds hundreds of transcriptions in flight:
no task waits on the provider, so worker slots are not the bound."""

from __future__ import annotations

import io
import wave

import pytest
from celery import Celery
from django.core.files.base import ContentFile

from jobs.actions import submit_job
from jobs.models import Job
from tests.conftest import wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JOBS = 200


def tiny_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8000)
    return buffer.getvalue()


@pytest.fixture
def stack(django_db_blocker, fake_aai, fake_openai):
    with django_db_blocker.unblock():
        running = Stack(
            fake_aai,
            fake_openai,
            CELERY_VISIBILITY_TIMEOUT="60",
            TASK_SOFT_TIME_LIMIT="20",
            TRANSCRIPT_CALLBACKS="true",
            SWEEP_INTERVAL_SECONDS="2",
            TRANSCRIPT_POLL_SECONDS="5",
            TRANSCRIPT_POLL_MAX_SECONDS="15",
        )
    running.start_workers()
    yield running
    running.stop()


def test_one_worker_holds_hundreds_of_transcriptions_in_flight(stack, fake_aai, tmp_path):
    # Jobs are created and queued directly: the API is not what is measured here.
    audio = ContentFile(tiny_wav(), "short.wav")
    jobs = [submit_job(Job(title=f"scale {i}", audio=audio), enqueue=False) for i in range(JOBS)]
    ids = [str(job.id) for job in jobs]
    broker = Celery(broker=stack.redis.url, set_as_current=False)
    fake_aai.processing_seconds = 30
    try:
        for job_id in ids:
            broker.send_task("jobs.transcribe", args=[job_id], queue="transcription")
        wait_until(
            lambda: (
                Job.objects.filter(id__in=ids).exclude(transcript_external_id="").count() == JOBS
            ),
            timeout=60,
        )
        in_flight = fake_aai.max_concurrent_transcriptions
        print(f"transcriptions in flight at once with one worker (concurrency 2): {in_flight}")
        assert in_flight >= 180
        wait_until(
            lambda: Job.objects.filter(id__in=ids, status="completed").count() == JOBS,
            timeout=240,
            interval=1,
        )
    finally:
        fake_aai.processing_seconds = 0
    callbacks = [c for c in fake_aai.callbacks if c.status_code == 200]
    assert len(callbacks) >= JOBS * 0.9, "completion callbacks reached the platform"
