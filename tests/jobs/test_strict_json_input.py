"""JSON a store cannot keep (NaN, ±Infinity, overflowing numbers, lone surrogates, deep
nesting) is refused with 400 in JSON bodies and in multipart fields, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import IdempotencyKey, Job
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import api_for, new_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/"
AUDIO_URL = "https://recordings.example.org/m/1.mp3"

# Raw JSON text, as a client would put it on the wire.
HOSTILE = {
    "nan": '{"x": NaN}',
    "infinity": '{"x": Infinity}',
    "minus-infinity": '{"x": -Infinity}',
    "overflow": '{"x": 1e999}',
    "lone-surrogate-value": '{"x": "\\ud800"}',
    "lone-surrogate-key": '{"\\udfff": 1}',
    "too-deep": '{"x": ' + "[" * 40 + "]" * 40 + "}",
}


@pytest.fixture
def api():
    _, key = new_client()
    return api_for(key)


def assert_400_nothing_stored(response, field: str | None = None) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] in ("invalid_request", "parse_error") and error["message"]
    if field:
        assert field in error["details"], error
    assert Job.objects.count() == 0 and IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_it_refuses_hostile_metadata_in_a_json_body(api, text):
    body = f'{{"audio_url": "{AUDIO_URL}", "metadata": {text}}}'
    assert_400_nothing_stored(api.post(URL, body, content_type="application/json"))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_it_refuses_hostile_metadata_in_a_multipart_field(api, text):
    audio = SimpleUploadedFile("a.wav", Path(SAMPLE_AUDIO).read_bytes(), "audio/wav")
    response = api.post(URL, {"audio": audio, "metadata": text}, format="multipart")
    assert_400_nothing_stored(response, "metadata")


def test_it_refuses_a_lone_surrogate_in_any_json_field(api):
    body = f'{{"audio_url": "{AUDIO_URL}", "title": "Stand-up \\ud83d"}}'
    assert_400_nothing_stored(api.post(URL, body, content_type="application/json"))


def test_it_still_accepts_ordinary_numbers_and_text(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    metadata = '{"n": 1.5e10, "s": "caf\\u00e9 \\ud83d\\ude00"}'
    body = f'{{"audio_url": "{AUDIO_URL}", "metadata": {metadata}}}'
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Job.objects.get().metadata == {"n": 1.5e10, "s": "café 😀"}
