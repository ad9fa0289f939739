"""The staff dashboard: counts by status, jobs in flight, failures, webhook dead letters."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from tests.support.api_factories import make_job
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(get_user_model().objects.create_superuser("staff", "s@example.com", "pw"))
    return client


@pytest.fixture
def jobs():
    failed = make_job(
        None,
        title="Broken upload",
        status=Job.Status.FAILED,
        error_code="unsupported_media",
        error_message="ffmpeg found no audio stream",
    )
    WebhookDelivery.objects.create(
        job=failed,
        event_type="job.failed",
        url="https://cms.example/hooks",
        body="{}",
        state=WebhookDelivery.State.EXHAUSTED,
        attempt_count=8,
        last_status_code=502,
    )
    WebhookDelivery.objects.create(
        job=failed, event_type="job.failed", url="https://ok.example/", body="{}"
    )
    running = make_job(
        None,
        title="Design crit",
        status=Job.Status.PROCESSING,
        stage=Job.Stage.ANALYZING,
        progress=62,
    )
    make_job(None, title="Done one", status=Job.Status.COMPLETED)
    return {"failed": failed, "running": running}


def test_it_shows_counts_in_flight_failures_and_dead_letters(staff, jobs):
    html = staff.get("/admin/dashboard/").content.decode()
    assert html.count('class="dash-count-total">1<') == 3  # processing, completed, failed
    assert "Design crit" in html and 'value="62"' in html
    assert (
        "Broken upload" in html
        and "unsupported_media" in html
        and "ffmpeg found no audio stream" in html
    )
    assert "check that it has an audio track" in html  # the failure in plain words
    assert "HTTP 502" in html and "https://cms.example/hooks" in html
    assert "https://ok.example/" not in html  # a delivery still pending is no dead letter
    assert "/admin/webhooks/webhookdelivery/?state__exact=exhausted" in html


def test_the_live_endpoint_reports_progress_of_jobs_in_flight(staff, jobs):
    data = staff.get("/admin/dashboard/live/").json()
    [job] = data["in_flight"]
    assert (job["id"], job["stage"], job["progress"]) == (str(jobs["running"].id), "analyzing", 62)
    counts = {c["status"]: c["total"] for c in data["counts"]}
    assert counts == {
        "pending": 0,
        "processing": 1,
        "retrying": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }


def test_it_is_for_staff_only(client, jobs):
    assert client.get("/admin/dashboard/").status_code == 302
    assert client.get("/admin/dashboard/live/").status_code == 302
    client.force_login(get_user_model().objects.create_user("user", password="pw"))
    response = client.get("/admin/dashboard/live/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_admin_links_to_the_dashboard(staff):
    assert 'href="/admin/dashboard/"' in staff.get("/admin/").content.decode()
    assert 'href="/admin/dashboard/"' in staff.get("/admin/jobs/job/").content.decode()
