"""API clients: keys shown once and stored hashed, revocation, isolation, throttling."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from jobs.models import ApiClient, Job
from tests.support.api_factories import api_for, make_job, make_meeting, new_client

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer mip_not-a-key", "Token mip_x", "Basic dXNlcjpwYXNz"],
    ids=["missing", "empty", "unknown", "other-scheme", "basic"],
)
def test_it_answers_401_without_a_valid_key(header):
    api = api_for(None)
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_at_once():
    client, key = new_client()
    api = api_for(key)
    assert api.get("/api/v1/jobs/").status_code == 200
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    response = api.get("/api/v1/jobs/")
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


def test_create_api_client_shows_the_key_once_with_its_prefix_and_can_revoke(capsys):
    call_command("create_api_client", "newsroom-cms")
    out, err = capsys.readouterr()
    key = out.strip().splitlines()[-1]
    client = ApiClient.objects.get(name="newsroom-cms")
    assert client.key_hash == ApiClient.hash_key(key) and key not in client.key_hash
    assert key.startswith(client.key_prefix) and client.key_prefix in err
    assert api_for(key).get("/api/v1/jobs/").status_code == 200

    call_command("create_api_client", "newsroom-cms", "--revoke")
    assert api_for(key).get("/api/v1/jobs/").status_code == 401
    with pytest.raises(CommandError):
        call_command("create_api_client", "newsroom-cms", "--revoke")
    with pytest.raises(CommandError):
        call_command("create_api_client", "newsroom-cms")


@pytest.fixture
def others():
    """Another client's job and meeting."""
    other, _ = new_client()
    job = make_job(other, status=Job.Status.COMPLETED, transcript_saved_at=timezone.now())
    meeting = make_meeting(job, [("A", 0, 1000, "Hello")])
    return job, meeting


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/jobs/{job}/"),
        ("get", "/api/v1/jobs/{job}/events/"),
        ("post", "/api/v1/jobs/{job}/retry/"),
        ("post", "/api/v1/jobs/{job}/cancel/"),
        ("post", "/api/v1/jobs/{job}/reprocess/"),
        ("get", "/api/v1/meetings/{meeting}/"),
        ("patch", "/api/v1/meetings/{meeting}/speakers/A/"),
        ("get", "/api/v1/meetings/{meeting}/transcript.txt"),
    ],
)
def test_another_clients_objects_answer_404(others, method, path):
    job, meeting = others
    _, key = new_client()
    url = path.format(job=job.id, meeting=meeting.id)
    body = {"from": "analysis", "name": "Mallory"}
    response = getattr(api_for(key), method)(url, body, format="json")
    assert response.status_code == 404, response.content
    assert error_code(response) == "not_found"
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED
    assert meeting.speakers.get().name == ""


def test_the_job_list_shows_only_the_clients_own_jobs(others):
    mine, key = new_client()
    own = make_job(mine)
    response = api_for(key).get("/api/v1/jobs/")
    assert [job["id"] for job in response.json()["results"]] == [str(own.id)]


def test_the_throttle_answers_429_with_retry_after_per_client(settings):
    settings.API_THROTTLE_RATE = "3/min"
    _, key = new_client()
    _, other_key = new_client()
    api = api_for(key)
    statuses = [api.get("/api/v1/jobs/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("/api/v1/jobs/")
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.json()["error"]["details"]["retry_after"] == retry_after
    # Another client has its own budget.
    assert api_for(other_key).get("/api/v1/jobs/").status_code == 200
