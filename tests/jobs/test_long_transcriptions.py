"""Two-hour recordings with a synchronous transcriber (TRANSCRIPTION_PROVIDER=openai):
the upload fits OpenAI's 25 MB limit, and the task runs under time limits that
outlast the request, so no soft limit cuts a paid request short."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from jobs.actions import submit_job
from jobs.models import Job
from jobs.providers.base import AudioSource
from jobs.providers.openai.audio import MAX_UPLOAD_BYTES, OpenAITranscriber

TWO_HOURS = 2 * 3600


@pytest.fixture
def openai_audio(settings, fake_openai):
    settings.OPENAI_API_KEY = fake_openai.api_key
    settings.OPENAI_BASE_URL = f"{fake_openai.url}/v1"
    settings.TRANSCRIPTION_PROVIDER = "openai"
    return settings


def two_hour_wav(tmp_path: Path) -> Path:
    path = tmp_path / "two-hours.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        second = b"\x00\x00" * 8000
        for _ in range(TWO_HOURS // 60):
            out.writeframes(second * 60)
    return path


def test_a_two_hour_recording_fits_one_openai_upload(openai_audio, fake_openai, tmp_path):
    before = len(fake_openai.request_times("transcription"))
    transcript = OpenAITranscriber().submit(AudioSource(path=two_hour_wav(tmp_path)))
    assert transcript.utterances
    assert len(fake_openai.request_times("transcription")) == before + 1
    uploaded = int(fake_openai.requests[-1].headers["content-length"])
    assert uploaded <= MAX_UPLOAD_BYTES, "one upload within OpenAI's limit"


@pytest.mark.django_db(transaction=True)
def test_a_synchronous_transcription_runs_under_limits_that_outlast_its_request(
    openai_audio, private_broker
):
    submit_job(Job(audio=ContentFile(b"RIFF", "a.wav")))  # queued on commit
    [raw] = private_broker.lrange("transcription", 0, -1)
    hard, soft = json.loads(raw)["headers"]["timelimit"]
    assert soft > openai_audio.OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS
    assert soft > openai_audio.TASK_SOFT_TIME_LIMIT and hard > soft
    assert hard < openai_audio.CELERY_VISIBILITY_TIMEOUT, "never redelivered while it runs"
