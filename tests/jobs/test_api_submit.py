"""Submitting work: each bad input gets its status and stores nothing; real audio is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import IdempotencyKey, Job
from meeting_intel.lib.media import safe_filename
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import api_for, new_client, stored_files, wav_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/"
SAMPLE = Path(SAMPLE_AUDIO).read_bytes()


@pytest.fixture
def api():
    _, key = new_client()
    return api_for(key)


def upload(name: str = "standup.wav", content: bytes = SAMPLE, content_type: str = "audio/wav"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def assert_refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    if code:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def nothing_stored():
    """Asserts, after the test, that no job, idempotency key or file was stored."""
    files_before = stored_files()
    yield
    assert Job.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0
    assert stored_files() == files_before


def test_it_accepts_real_audio_and_returns_the_job_without_secrets(api):
    response = api.post(
        URL,
        {
            "audio": upload(),
            "title": "Stand-up",
            "external_id": "cms-1",
            "metadata": json.dumps({"room": "blue", "n": 3}),
            "webhook_url": "https://cms.example/hooks",
            "webhook_secret": "whsec_c2VjcmV0",
            "speakers_expected": 2,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["stage"] == "queued"
    assert body["metadata"] == {"room": "blue", "n": 3} and body["external_id"] == "cms-1"
    assert body["error"] is None and body["meeting_id"] is None and body["results_url"] is None
    assert "whsec_c2VjcmV0" not in response.content.decode()
    job = Job.objects.get(id=body["id"])
    assert job.audio_bytes == len(SAMPLE) and 40 < job.audio_duration_seconds < 50
    assert Path(job.audio.path).read_bytes() == SAMPLE


def test_it_accepts_a_traversal_filename_on_real_audio_under_a_sanitised_name(api, settings):
    response = api.post(URL, {"audio": upload("../../etc/pass\x07wd\x1b.wav")}, format="multipart")
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    assert job.original_filename == "passwd.wav"
    stored = Path(job.audio.path).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert stored.name.startswith("passwd") and ".." not in job.audio.name


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("rec\r\nX-Injected: 1.wav", "recX-Injected_ 1.wav"),
        ("\u202egnp.wav", "gnp.wav"),
        ("...", "audio"),
        (".htaccess", "htaccess"),
    ],
)
def test_safe_filename_strips_directories_and_control_characters(given, expected):
    assert safe_filename(given) == expected


def test_it_refuses_a_zero_byte_file_with_422(api, nothing_stored):
    assert_refused(
        api.post(URL, {"audio": upload(content=b"")}, format="multipart"), 422, "empty_file"
    )


def test_it_refuses_a_non_media_file_with_415_whatever_its_name_and_type(api, nothing_stored):
    fake = upload("meeting.wav", b"<html><body>not audio</body></html>" * 50, "audio/wav")
    assert_refused(api.post(URL, {"audio": fake}, format="multipart"), 415, "unsupported_media")


@pytest.mark.parametrize(
    "content",
    [SAMPLE[: len(SAMPLE) // 2], SAMPLE[:40], wav_bytes(2)[:-3000]],
    ids=["half-a-wav", "header-only", "short-data"],
)
def test_it_refuses_a_truncated_file_with_422(api, nothing_stored, content):
    error = assert_refused(
        api.post(URL, {"audio": upload(content=content)}, format="multipart"), 422
    )
    assert error["code"] in ("truncated_media", "unreadable_media")


@pytest.mark.parametrize("limit", [100_000, 1_000_000], ids=["declared-body", "streamed-file"])
def test_it_refuses_an_oversized_upload_with_413(api, settings, nothing_stored, limit):
    settings.UPLOAD_MAX_BYTES = limit
    error = assert_refused(
        api.post(URL, {"audio": upload()}, format="multipart"), 413, "file_too_large"
    )
    assert str(limit) in error["message"]


@pytest.mark.parametrize(
    "metadata",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "42",
        json.dumps({"x": "y" * 20_000}),
        "[" * 50_000,
        json.dumps({"nul": "a\x00b"}),
    ],
    ids=["not-json", "array", "string", "number", "too-big", "deeply-nested", "nul-char"],
)
def test_it_refuses_malformed_metadata_with_400(api, nothing_stored, metadata):
    response = api.post(URL, {"audio": upload(), "metadata": metadata}, format="multipart")
    assert "metadata" in assert_refused(response, 400, "invalid_request")["details"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/a.wav",
        "http://localhost/a.wav",
        "http://10.1.2.3/a.wav",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.wav",
        "http://[::ffff:127.0.0.1]/a.wav",
    ],
)
def test_it_refuses_a_private_audio_url_with_422(api, settings, nothing_stored, url):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    response = api.post(URL, {"audio_url": url}, format="json")
    assert "audio_url" in assert_refused(response, 422, "unsafe_url")["details"]


def test_it_refuses_a_private_webhook_url_with_422(api, settings, nothing_stored):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    response = api.post(
        URL, {"audio": upload(), "webhook_url": "http://192.168.1.10/hook"}, format="multipart"
    )
    assert "webhook_url" in assert_refused(response, 422, "unsafe_url")["details"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"audio_url": "ftp://example.org/a.wav"},
        {"audio_url": "https://example.org/a.wav", "audio": "yes"},
        {"audio_url": "https://example.org/a.wav", "webhook_secret": "whsec_***"},
        {"audio_url": "https://example.org/a.wav", "speakers_expected": 0},
        {"audio_url": "https://example.org/a.wav", "language": "english please"},
    ],
    ids=["nothing", "ftp", "file-field-not-a-file", "bad-whsec", "zero-speakers", "language"],
)
def test_it_refuses_invalid_fields_with_400(api, nothing_stored, fields):
    assert_refused(api.post(URL, fields, format="json"), 400, "invalid_request")


def test_it_refuses_both_a_file_and_an_audio_url(api, nothing_stored):
    response = api.post(
        URL, {"audio": upload(), "audio_url": "https://example.org/a.wav"}, format="multipart"
    )
    assert "audio_url" in assert_refused(response, 400)["details"]


def test_it_accepts_an_audio_url_as_json_and_leaves_the_download_to_the_worker(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    # Not resolvable here (the network is blocked): accepted, the worker checks again.
    response = api.post(
        URL,
        {"audio_url": "https://recordings.example.org/m/1.mp3", "metadata": {"k": [1, 2]}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    assert job.audio_url == "https://recordings.example.org/m/1.mp3" and not job.audio
    assert job.metadata == {"k": [1, 2]}
    assert "audio_url" not in response.json()
