"""GET /api/v1/jobs/{id}/ answered outside DRF (jobs/api/job_read.py) answers what DRF did.

Each test asks the fast path and JobDetail (the DRF view, reached by turning the
fast path off) the same question and compares status, headers and body bytes.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import signing
from django.utils import timezone

from jobs.actions import cancel_job
from jobs.api import job_read, key_cache
from jobs.api.serializers import JobSerializer
from jobs.models import Job
from jobs.state import fail_job, update_job
from jobs.tokens import read_viewer_token, token_allows
from tests.support.api_factories import api_for, make_job, make_meeting, new_client

pytestmark = pytest.mark.django_db

SIGNED_AT = 1_900_000_000.0  # both views sign their viewer links at this instant


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    """No key remembered from another test; viewer links signed at one instant."""
    key_cache.forget()
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: SIGNED_AT))
    yield
    key_cache.forget()
    from jobs.api import auth

    auth._Outage.skip_until, auth._Outage.warned = 0.0, False


def both(monkeypatch, key: str | None, path: str, **headers: str):
    """(fast path's response, DRF view's response) to the same GET."""
    api = api_for(key)
    fast = api.get(path, **headers)
    with monkeypatch.context() as m:
        m.setattr(job_read, "_bearer_key", lambda request: None)
        drf = api.get(path, **headers)
    return fast, drf


def assert_same(fast, drf) -> None:
    assert fast.status_code == drf.status_code
    assert dict(fast.headers) == dict(drf.headers)
    assert fast.content == drf.content


def _pending(client):
    return make_job(client, metadata={"cms": {"id": 7, "tags": ["a", "ü"]}}, external_id="x-1")


def _processing(client):
    job = make_job(
        client, participants=[{"name": "Ana", "role": "chair"}], vocabulary=["Kubernetes"]
    )
    return update_job(
        job,
        "Transcribing",
        status=Job.Status.PROCESSING,
        stage=Job.Stage.TRANSCRIBING,
        started_at=timezone.now(),
        attempts=1,
        transcription_provider="assemblyai",
        transcribed_seconds=61.5,
    )


def _completed(client):
    job = make_job(client, analysis_template={"name": "Board"}, instructions="Be brief.")
    make_meeting(job, [("A", 0, 1000, "Hello")])
    return update_job(
        job,
        "Done",
        status=Job.Status.COMPLETED,
        stage=Job.Stage.DONE,
        progress=100,
        started_at=timezone.now() - timedelta(minutes=3),
        completed_at=timezone.now(),
        prompt_tokens=1200,
        completion_tokens=300,
        transcribed_seconds=600,
    )


def _failed(client):
    job = make_job(client)
    update_job(
        job,
        "Retrying",
        status=Job.Status.RETRYING,
        attempts=2,
        next_attempt_at=timezone.now() + timedelta(seconds=120),
    )
    fail_job(job, "provider_unavailable", "503 from upstream")
    return Job.objects.get(id=job.id)


def _cancelled(client):
    job = make_job(client)
    assert cancel_job(job)
    return Job.objects.get(id=job.id)


STATES = {
    "pending": _pending,
    "processing": _processing,
    "completed with meeting": _completed,
    "failed with error": _failed,
    "cancelled": _cancelled,
}


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_reads_byte_for_byte_as_the_drf_view(monkeypatch, state):
    client, key = new_client()
    job = STATES[state](client)
    fast, drf = both(monkeypatch, key, f"/api/v1/jobs/{job.id}/")
    assert fast.status_code == 200
    assert_same(fast, drf)
    body = fast.json()
    stored = Job.objects.select_related("meeting").get(id=job.id)
    assert list(body) == list(JobSerializer.Meta.fields)  # a new field fails here first
    assert body["status"] == stored.status
    if state == "completed with meeting":
        assert body["meeting_id"] == str(stored.meeting.id) and body["results_url"]
    if state == "failed with error":
        assert body["error"]["code"] == "provider_unavailable"


def test_the_owning_client_gets_fresh_viewer_links_that_open_the_job(monkeypatch):
    client, key = new_client()
    job = _completed(client)
    Job.objects.filter(id=job.id).update(viewer_token_version=4)  # links were revoked before
    body = api_for(key).get(f"/api/v1/jobs/{job.id}/").json()
    job.refresh_from_db()
    for url in (body["status_url"], body["results_url"]):
        token = url.rpartition("?token=")[2]
        assert read_viewer_token(token).version == 4
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: SIGNED_AT + 1))
        assert token_allows(token, job)


def test_a_read_costs_one_query_once_the_key_is_known(django_assert_num_queries):
    client, key = new_client()
    job = _completed(client)
    api = api_for(key)
    assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 200  # looks the key up
    with django_assert_num_queries(1):
        assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 200


def test_a_state_change_is_visible_at_once():
    client, key = new_client()
    job = make_job(client)
    api = api_for(key)
    assert api.get(f"/api/v1/jobs/{job.id}/").json()["status"] == "pending"
    update_job(job, "Working", status=Job.Status.PROCESSING, stage=Job.Stage.TRANSCRIBING)
    body = api.get(f"/api/v1/jobs/{job.id}/").json()
    assert (body["status"], body["stage"], body["message"]) == (
        "processing",
        "transcribing",
        "Working",
    )


def test_another_clients_job_and_a_missing_one_answer_the_same_404(monkeypatch):
    other, _ = new_client()
    theirs = make_job(other)
    _, key = new_client()
    for path in (
        f"/api/v1/jobs/{theirs.id}/",
        "/api/v1/jobs/00000000-0000-4000-8000-000000000000/",
    ):
        fast, drf = both(monkeypatch, key, path)
        assert fast.status_code == 404 and fast.json()["error"]["code"] == "not_found"
        assert_same(fast, drf)


@pytest.mark.parametrize("header", ["Bearer nope", "Basic abc", "Bearer ", "Token x"])
def test_bad_keys_get_drfs_401(monkeypatch, header):
    client, _ = new_client()
    job = make_job(client)
    api = api_for(None)
    api.credentials(HTTP_AUTHORIZATION=header)
    fast = api.get(f"/api/v1/jobs/{job.id}/")
    assert fast.status_code == 401 and fast["WWW-Authenticate"].startswith("Bearer")
    assert fast.json()["error"]["code"] == "unauthenticated"


def test_a_revoked_key_stops_working_within_the_documented_bound(monkeypatch, settings):
    assert settings.API_KEY_CACHE_SECONDS == 5  # the shipped bound, README "Performance"
    client, key = new_client()
    job = make_job(client)
    api = api_for(key)
    assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 200
    # Revoked from another process (no signal reaches this one).
    client.__class__.objects.filter(id=client.id).update(revoked_at=timezone.now())
    now = key_cache.time.monotonic()
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now + 4.9)
    assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 200  # inside the bound
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now + 5.0)
    fast, drf = both(monkeypatch, key, f"/api/v1/jobs/{job.id}/")
    assert fast.status_code == 401 and fast.json()["error"]["code"] == "unauthenticated"
    assert_same(fast, drf)


def test_a_key_revoked_in_this_process_stops_at_once():
    client, key = new_client()
    job = make_job(client)
    api = api_for(key)
    assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 200
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    assert api.get(f"/api/v1/jobs/{job.id}/").status_code == 401


def test_the_throttle_answers_the_same_429_with_retry_after(monkeypatch, settings):
    settings.API_THROTTLE_RATE = "2/hour"
    client, key = new_client()
    job = make_job(client)
    api = api_for(key)
    assert [api.get(f"/api/v1/jobs/{job.id}/").status_code for _ in range(2)] == [200, 200]
    fast, drf = both(monkeypatch, key, f"/api/v1/jobs/{job.id}/")
    assert fast.status_code == 429 and 3590 < int(fast["Retry-After"]) <= 3600
    assert fast.json()["error"]["details"] == {"retry_after": int(fast["Retry-After"])}
    assert_same(fast, drf)


def test_the_fast_path_and_drf_share_one_throttle(monkeypatch, settings):
    settings.API_THROTTLE_RATE = "3/hour"
    client, key = new_client()
    job = make_job(client)
    fast, drf = both(monkeypatch, key, f"/api/v1/jobs/{job.id}/")
    assert (fast.status_code, drf.status_code) == (200, 200)
    assert api_for(key).get("/api/v1/jobs/").status_code == 200
    assert api_for(key).get(f"/api/v1/jobs/{job.id}/").status_code == 429


def test_with_redis_down_the_fast_path_still_answers(settings):
    from tests.support.platform import free_port

    client, key = new_client()
    job = make_job(client, title="Readable")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    answers = [api_for(key).get(f"/api/v1/jobs/{job.id}/") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].json()["title"] == "Readable"


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "application/xml"},
        {"QUERY_STRING": "format=api"},
    ],
)
def test_what_the_fast_path_does_not_take_drf_still_answers(monkeypatch, headers):
    client, key = new_client()
    job = make_job(client)
    fast, drf = both(monkeypatch, key, f"/api/v1/jobs/{job.id}/", **headers)
    assert fast.status_code in (404, 406)
    assert_same(fast, drf)


def test_the_schema_still_describes_the_endpoint_from_jobdetail():
    api = api_for(None)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/jobs/{id}/"]["get"]
    assert operation["operationId"] == "jobs_retrieve"
    assert set(operation["responses"]) == {"200", "401", "404", "429"}
    assert operation["security"] == [{"ApiKey": []}]
