"""Reading and controlling jobs: filters, cursor pagination, events, retry/cancel/reprocess."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.state import update_job
from tests.support.api_factories import api_for, make_job, new_client

pytestmark = pytest.mark.django_db

Status = Job.Status


@pytest.fixture
def cms():
    client, key = new_client()
    return client, api_for(key)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["results"]]


def all_pages(api, url: str) -> tuple[list[str], int]:
    seen, pages = [], 0
    while url:
        response = api.get(url)
        seen += ids(response)
        url = response.json()["next"]
        pages += 1
    return seen, pages


def test_cursor_pages_cover_every_job_once_newest_first_even_while_jobs_arrive(cms):
    client, api = cms
    start = timezone.now() - timedelta(hours=1)
    # Three jobs share a timestamp: the id breaks the tie, so none is skipped or repeated.
    jobs = [make_job(client, created_at=start + timedelta(seconds=i // 3 * 3)) for i in range(25)]
    expected = [str(j.id) for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]

    first = api.get("/api/v1/jobs/?limit=10")
    assert ids(first) == expected[:10] and first.json()["previous"] is None
    make_job(client)  # a new job must not shift the pages already being read
    rest, pages = all_pages(api, first.json()["next"])
    assert expected[:10] + rest == expected and pages == 2

    second = api.get(first.json()["next"])
    assert ids(api.get(second.json()["previous"])) == expected[:10]


def test_the_page_size_is_capped(cms):
    client, api = cms
    for _ in range(3):
        make_job(client)
    assert len(ids(api.get("/api/v1/jobs/?limit=2"))) == 2
    assert len(ids(api.get("/api/v1/jobs/?limit=100"))) == 3
    # The schema says 1 to 100: anything else is refused, not silently clamped.
    for limit in ("100000", "0", "two"):
        assert api.get(f"/api/v1/jobs/?limit={limit}").status_code == 400


def test_jobs_filter_by_status_external_id_and_creation_time(cms):
    client, api = cms
    now = timezone.now()
    old = make_job(client, created_at=now - timedelta(days=2), external_id="cms-1")
    failed = make_job(client, status=Status.FAILED, created_at=now - timedelta(hours=1))
    new = make_job(client, external_id="cms-1", created_at=now)
    assert ids(api.get("/api/v1/jobs/?status=failed")) == [str(failed.id)]
    assert ids(api.get("/api/v1/jobs/?external_id=cms-1")) == [str(new.id), str(old.id)]
    day_ago = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(api.get(f"/api/v1/jobs/?created_after={day_ago}")) == [str(new.id), str(failed.id)]
    assert ids(api.get(f"/api/v1/jobs/?created_before={day_ago}")) == [str(old.id)]


@pytest.mark.parametrize(
    "query",
    ["status=done", "created_after=yesterday", "status=", "created_before="],
    ids=["bad-status", "bad-date", "empty-status", "empty-date"],
)
def test_bad_list_parameters_answer_400(cms, query):
    _, api = cms
    response = api.get(f"/api/v1/jobs/?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "query", ["cursor=garbage", "cursor=cD1ub3QtYS1kYXRl"], ids=["bad", "forged-position"]
)
def test_a_cursor_that_names_no_page_answers_404(cms, query):
    _, api = cms
    response = api.get(f"/api/v1/jobs/?{query}")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_the_events_are_the_jobs_timeline(cms):
    client, api = cms
    job = make_job(client)
    update_job(job, "Started", status=Status.PROCESSING, stage=Job.Stage.TRANSCRIBING)
    update_job(job, "Transcript saved", stage=Job.Stage.ANALYZING)
    events = api.get(f"/api/v1/jobs/{job.id}/events/").json()["results"]
    assert [e["message"] for e in events] == ["Started", "Transcript saved"]
    assert events[-1] | {"created_at": None} == {
        "created_at": None,
        "status": "processing",
        "stage": "analyzing",
        "progress": 50,
        "attempt": 0,
        "message": "Transcript saved",
    }


def test_cancel_stops_an_active_job_and_then_answers_409(cms):
    client, api = cms
    job = make_job(client)
    response = api.post(f"/api/v1/jobs/{job.id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/jobs/{job.id}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"] | {"message": ""} == {
        "code": "invalid_state",
        "message": "",
        "details": {"status": "cancelled"},
    }


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED])
def test_retry_restarts_a_failed_or_cancelled_job(cms, status):
    client, api = cms
    job = make_job(client, status=status, error_code="boom", error_message="Boom")
    response = api.post(f"/api/v1/jobs/{job.id}/retry/")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["error"]) == ("pending", None)


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.COMPLETED])
def test_retry_of_a_job_that_did_not_fail_answers_409(cms, status):
    client, api = cms
    job = make_job(client, status=status)
    response = api.post(f"/api/v1/jobs/{job.id}/retry/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"
    job.refresh_from_db()
    assert job.status == status


def test_reprocess_runs_a_finished_job_again_from_the_chosen_step(cms):
    client, api = cms
    job = make_job(client, status=Status.COMPLETED, transcript_saved_at=timezone.now())
    response = api.post(f"/api/v1/jobs/{job.id}/reprocess/", {"from": "analysis"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    job.refresh_from_db()
    assert job.transcript_saved_at is not None  # the transcript is kept
    # Now pending: reprocessing again is not allowed until it finishes.
    busy = api.post(f"/api/v1/jobs/{job.id}/reprocess/", {"from": "transcription"}, format="json")
    assert busy.status_code == 409


def test_reprocess_from_analysis_needs_a_transcript(cms):
    client, api = cms
    job = make_job(client, status=Status.FAILED)
    response = api.post(f"/api/v1/jobs/{job.id}/reprocess/", {"from": "analysis"}, format="json")
    assert response.status_code == 409


@pytest.mark.parametrize("body", [{}, {"from": "summary"}], ids=["missing", "unknown"])
def test_reprocess_needs_a_valid_starting_point(cms, body):
    client, api = cms
    job = make_job(client, status=Status.COMPLETED, transcript_saved_at=timezone.now())
    response = api.post(f"/api/v1/jobs/{job.id}/reprocess/", body, format="json")
    assert response.status_code == 400 and "from" in response.json()["error"]["details"]


def test_an_unknown_api_path_answers_the_error_object(cms):
    _, api = cms
    response = api.get("/api/v1/jobs/not-a-uuid/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
