"""Each route caps its body: UPLOAD_MAX_BYTES only for an upload's multipart body on
the upload routes, REQUEST_BODY_MAX_BYTES for every other body (JSON and form parsers
and multipart text fields included), answered 413 with SPEC's error object; a body
declared over its cap, or an upload without valid credentials, is refused before a
byte of it is read; a refused request stores nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import IdempotencyKey, Job
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import api_for, make_job, new_client, stored_files

URL = "/api/v1/jobs/"
MiB = 1024 * 1024


@pytest.fixture
def owner(db):
    return new_client()


@pytest.fixture
def key(owner) -> str:
    return owner[1]


@pytest.fixture
def nothing_stored(db):
    files = stored_files()
    yield
    assert Job.objects.count() == 0 and IdempotencyKey.objects.count() == 0
    assert stored_files() == files


def assert_413(response, code: str) -> None:
    assert response.status_code == 413, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["details"]["max_bytes"]


def test_the_shipped_caps():
    from django.conf import settings

    assert settings.REQUEST_BODY_MAX_BYTES == MiB
    assert settings.UPLOAD_MAX_BYTES == 1024**3
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.REQUEST_BODY_MAX_BYTES


@pytest.mark.django_db
def test_a_5_mb_json_submit_answers_413(key, nothing_stored):
    body = json.dumps({"audio_url": "https://cms.example/a.wav", "title": "x" * (5 * MiB)})
    response = api_for(key).post(URL, body, content_type="application/json")
    assert_413(response, "body_too_large")


@pytest.mark.django_db
def test_a_large_form_body_answers_413(key, nothing_stored):
    body = "audio_url=https%3A%2F%2Fcms.example%2Fa.wav&title=" + "x" * (2 * MiB)
    response = api_for(key).post(URL, body, content_type="application/x-www-form-urlencoded")
    assert_413(response, "body_too_large")


@pytest.mark.django_db
def test_a_large_json_body_on_another_route_answers_413(owner, key):
    job = make_job(owner[0])
    body = json.dumps({"from": "analysis", "pad": "x" * (2 * MiB)})
    response = api_for(key).post(f"{URL}{job.id}/reprocess/", body, content_type="application/json")
    assert_413(response, "body_too_large")


@pytest.mark.django_db
def test_a_3_mb_multipart_title_answers_413(key, nothing_stored):
    audio = SimpleUploadedFile("a.wav", Path(SAMPLE_AUDIO).read_bytes(), "audio/wav")
    response = api_for(key).post(URL, {"audio": audio, "title": "x" * (3 * MiB)})
    assert_413(response, "field_too_large")


@pytest.mark.django_db
def test_a_file_on_a_route_that_takes_no_upload_is_capped_small(owner, key):
    job = make_job(owner[0])
    big = SimpleUploadedFile("a.wav", b"\0" * (2 * MiB), "audio/wav")
    response = api_for(key).post(f"{URL}{job.id}/reprocess/", {"from": "analysis", "f": big})
    assert_413(response, "body_too_large")


# --- The ASGI guard: refused before the body is read --------------------------------


def run_guard(scope: dict[str, Any], body: bytes = b"") -> tuple[list[dict[str, Any]], bool]:
    """Runs the shipped ASGI application on `scope`; (what it sent, whether it read the body)."""
    from meeting_intel.asgi import application

    read = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read:  # Django listens for a disconnect once the body is in
            await asyncio.Event().wait()
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    return sent, read


def scope(path: str, length: int, content_type: str, **headers: str) -> dict[str, Any]:
    raw = [
        (b"host", b"testserver"),
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }


MULTIPART = "multipart/form-data; boundary=b"


@pytest.mark.django_db(transaction=True)
def test_an_unauthenticated_500_mb_upload_is_refused_before_its_body_is_read():
    for headers in ({}, {"Authorization": "Bearer mip_not-a-key"}):
        sent, read = run_guard(scope(URL, 500 * MiB, MULTIPART, **headers))
        assert not read
        assert sent[0]["status"] == 401
        assert json.loads(sent[1]["body"])["error"]["code"] == "unauthenticated"
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_unauthenticated_admin_upload_is_refused_before_its_body_is_read():
    sent, read = run_guard(scope("/admin/jobs/job/add/", 500 * MiB, MULTIPART))
    assert not read and sent[0]["status"] == 403


@pytest.mark.django_db(transaction=True)
def test_a_body_declared_over_its_routes_cap_is_refused_before_it_is_read():
    _, key = new_client()
    auth = {"Authorization": f"Bearer {key}"}
    cases = [
        (URL, 2 * MiB, "application/json", "body_too_large"),
        (f"{URL}00000000-0000-0000-0000-000000000000/reprocess/", 2 * MiB, MULTIPART, None),
        ("/admin/login/", 2 * MiB, "application/x-www-form-urlencoded", None),
        (URL, 1024**3 + 2 * MiB, MULTIPART, "file_too_large"),
    ]
    for path, length, content_type, code in cases:
        sent, read = run_guard(scope(path, length, content_type, **auth))
        assert not read, path
        assert sent[0]["status"] == 413, path
        assert json.loads(sent[1]["body"])["error"]["code"] == (code or "body_too_large")


@pytest.mark.django_db(transaction=True)
def test_an_authenticated_upload_over_the_small_cap_is_read_and_checked():
    _, key = new_client()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + b"<html>" * (MiB // 3) + b"\r\n--b--\r\n"
    )
    assert len(body) > MiB
    sent, read = run_guard(scope(URL, len(body), MULTIPART, Authorization=f"Bearer {key}"), body)
    assert read
    assert sent[0]["status"] == 415  # past the caps: the content check refuses it
    assert Job.objects.count() == 0
