"""Transient errors are retried with backoff honouring Retry-After; permanent ones
fail the job at once with a clear code and no retries."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline.runner import run_inline
from tests.conftest import SAMPLE_AUDIO

pytestmark = pytest.mark.django_db(transaction=True)


def make_job() -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        return submit_job(Job(title="t", audio=ContentFile(fh.read(), "a.wav")), enqueue=False)


def statuses(job: Job) -> list[str]:
    return list(job.events.values_list("status", flat=True))


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (lambda aai: aai.fail(401, times=None, route="upload"), "provider_auth"),
        (lambda aai: aai.fail(400, times=None, route="submit"), "audio_rejected"),
        (lambda aai: aai.fail_next_transcripts(1), "transcription_failed"),
        (lambda aai: aai.silence_next_transcripts(1), "no_speech"),
    ],
)
def test_a_permanent_error_fails_fast_without_retries(provider_settings, fake_aai, fault, code):
    uploads = len(fake_aai.request_times("upload"))
    fault(fake_aai)
    job = run_inline(make_job().id)
    assert (job.status, job.error_code) == ("failed", code)
    assert job.attempts == 1 and "retrying" not in statuses(job)
    assert len(fake_aai.request_times("upload")) == uploads + 1


def test_a_429_storm_is_retried_after_retry_after(provider_settings, fake_openai):
    provider_settings.JOB_MAX_RETRIES = 3
    start = len(fake_openai.request_times("chat"))
    fake_openai.rate_limit(times=4, retry_after=1.5, route="chat")
    job = run_inline(make_job().id)
    assert job.status == "completed" and job.meeting.degraded == []
    times = fake_openai.request_times("chat")[start:]
    assert len(times) == 8
    # The four first calls met 429 with Retry-After: 1.5; none came back sooner.
    assert min(times[4:]) - max(times[:4]) >= 1.4
    assert statuses(job).count("retrying") == 1
    retry_event = job.events.get(status="retrying")
    assert "Retrying in 2s" in retry_event.message or "Retrying in 1s" in retry_event.message


def test_transient_errors_back_off_exponentially_then_fail(provider_settings, fake_aai):
    provider_settings.JOB_RETRY_BASE_SECONDS = 0.1
    provider_settings.JOB_MAX_RETRIES = 3
    fake_aai.fail(503, times=None, route="submit")
    job = run_inline(make_job().id)
    assert (job.status, job.error_code) == ("failed", "provider_unavailable")
    assert job.attempts == 4 and statuses(job).count("retrying") == 3
    submits = fake_aai.request_times("submit")[-4:]
    gaps = [b - a for a, b in zip(submits, submits[1:], strict=False)]
    # base·2^n with equal jitter: each wait lies in [base·2^n / 2, base·2^n].
    for n, gap in enumerate(gaps):
        assert 0.1 * 2**n / 2 - 0.02 <= gap <= 0.1 * 2**n + 0.3, gaps
    assert "gave up after 4 attempts" in job.error_message
