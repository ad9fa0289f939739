"""The live job page: stages, failures in plain words, and staff-only retry and reprocess."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from jobs.models import Job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import make_job, make_meeting

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(
        get_user_model().objects.create_user(
            "staff", password="pw", is_staff=True, is_superuser=True
        )
    )
    return client


@pytest.fixture
def failed_job():
    return make_job(
        None,
        title="Quarterly review",
        status=Job.Status.FAILED,
        stage=Job.Stage.TRANSCRIBING,
        progress=15,
        message="Failed: AssemblyAI 503 (gave up after 3 attempts)",
        error_code="provider_unavailable",
        error_message="AssemblyAI 503 (gave up after 3 attempts)",
    )


def get(client, job, path=""):
    return client.get(f"/jobs/{job.id}/{path}", {"token": make_viewer_token(job)})


def test_it_shows_the_stage_and_the_analyzing_chunk_from_the_message(client):
    job = make_job(
        None,
        status=Job.Status.PROCESSING,
        stage=Job.Stage.ANALYZING,
        progress=62,
        message="Analyzing chunk 2/5",
    )
    html = get(client, job).content.decode()
    assert 'value="62"' in html and "Analyzing chunk 2/5" in html
    assert "chunk 2/5</span>" in html
    assert [
        s in html for s in ("Queued", "Transcribing", "Analyzing", "Saving", "Notifying", "Done")
    ] == [True] * 6


def test_it_explains_a_failure_in_plain_words(client, failed_job):
    html = get(client, failed_job).content.decode()
    assert "This recording could not be processed" in html
    assert "was down and stayed down after several tries" in html
    assert "AssemblyAI 503 (gave up after 3 attempts)" in html
    assert "Retry this job" not in html  # viewers cannot retry


def test_the_state_endpoint_carries_the_error_for_the_live_page(client, failed_job):
    state = get(client, failed_job, "state/").json()
    assert state["status"] == "failed" and state["type"] == "job.status"
    assert state["error"]["code"] == "provider_unavailable"
    assert "stayed down" in state["error"]["explanation"]
    assert get(client, make_job(None), "state/").json()["error"] is None


def test_staff_see_a_retry_button_on_a_failed_job(staff, failed_job):
    html = staff.get(f"/jobs/{failed_job.id}/").content.decode()
    assert f'action="/jobs/{failed_job.id}/retry/"' in html and "Retry this job" in html


def test_only_staff_can_retry(client, failed_job):
    token = make_viewer_token(failed_job)
    assert client.post(f"/jobs/{failed_job.id}/retry/?token={token}").status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == Job.Status.FAILED


def test_staff_retry_requeues_the_job_and_returns_to_its_page(staff, failed_job):
    response = staff.post(f"/jobs/{failed_job.id}/retry/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{failed_job.id}/"
    failed_job.refresh_from_db()
    assert (failed_job.status, failed_job.stage, failed_job.error_code) == ("pending", "queued", "")
    assert "Retry queued" in staff.get(response["Location"]).content.decode()


def test_retry_needs_a_csrf_token(failed_job):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(
        get_user_model().objects.create_user(
            "staff", password="pw", is_staff=True, is_superuser=True
        )
    )
    assert browser.post(f"/jobs/{failed_job.id}/retry/").status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == Job.Status.FAILED


def test_retry_is_post_only(staff, failed_job):
    assert staff.get(f"/jobs/{failed_job.id}/retry/").status_code == 405


def test_staff_reprocess_runs_the_analysis_again(staff):
    job = make_job(
        None,
        status=Job.Status.COMPLETED,
        stage=Job.Stage.DONE,
        progress=100,
        transcript_saved_at=timezone.now(),
        analysis_steps_failed=["summary"],
    )
    response = staff.post(f"/jobs/{job.id}/reprocess/", {"from": "analysis"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.analysis_steps_failed == []
    assert job.transcript_saved_at is not None  # the transcript is kept


def test_reprocess_refuses_an_unknown_start(staff):
    job = make_job(None, status=Job.Status.COMPLETED)
    assert staff.post(f"/jobs/{job.id}/reprocess/", {"from": "everything"}).status_code == 400


def test_a_viewer_cannot_reprocess(client):
    job = make_job(None, status=Job.Status.COMPLETED)
    token = make_viewer_token(job)
    assert (
        client.post(f"/jobs/{job.id}/reprocess/?token={token}", {"from": "analysis"}).status_code
        == 403
    )


def test_a_completed_job_links_to_its_meeting(client):
    job = make_job(None, status=Job.Status.COMPLETED, stage=Job.Stage.DONE, progress=100)
    meeting = make_meeting(job, [("A", 0, 1000, "Hi")])
    html = get(client, job).content.decode()
    assert f"/meetings/{meeting.id}/?token=" in html and "Open the meeting" in html
