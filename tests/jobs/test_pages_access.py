"""Pages, their polling endpoint and the recording are for staff and viewer-token
holders only: a token is signed, scoped to one job, expiring and revocable."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import make_job, make_meeting

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting():
    job = make_job(None, title="Access check", status=Job.Status.COMPLETED, stage=Job.Stage.DONE)
    return make_meeting(job, [("A", 0, 1000, "Hello there")], names={"A": "Alice"})


def urls(meeting) -> list[str]:
    job_id = meeting.job_id
    return [f"/jobs/{job_id}/", f"/jobs/{job_id}/state/", f"/meetings/{meeting.id}/"]


def test_it_refuses_every_page_without_a_token(client, meeting):
    for url in urls(meeting):
        assert client.get(url).status_code == 403, url
    assert client.get(f"/meetings/{meeting.id}/audio").status_code == 403


def test_it_shows_every_page_with_the_jobs_token(client, meeting):
    token = make_viewer_token(meeting.job)
    for url in urls(meeting):
        assert client.get(url, {"token": token}).status_code == 200, url


def test_it_refuses_another_jobs_token(client, meeting):
    other = make_job(None, title="Someone else's")
    token = make_viewer_token(other)
    for url in urls(meeting):
        assert client.get(url, {"token": token}).status_code == 403, url
    assert client.get(f"/meetings/{meeting.id}/audio", {"token": token}).status_code == 403


def test_it_refuses_a_tampered_token(client, meeting):
    token = make_viewer_token(meeting.job)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/meetings/{meeting.id}/", {"token": forged}).status_code == 403


def test_it_refuses_an_expired_token(client, meeting, settings):
    settings.VIEWER_TOKEN_MAX_AGE = 3600
    signed_at = time.time() - 3601
    with mock.patch("django.core.signing.time.time", return_value=signed_at):
        token = make_viewer_token(meeting.job)
    assert client.get(f"/meetings/{meeting.id}/", {"token": token}).status_code == 403
    fresh = make_viewer_token(meeting.job)
    assert client.get(f"/meetings/{meeting.id}/", {"token": fresh}).status_code == 200


def test_staff_see_every_page_without_a_token(client, meeting):
    client.force_login(get_user_model().objects.create_user("staff", password="pw", is_staff=True))
    for url in urls(meeting):
        assert client.get(url).status_code == 200, url


def test_a_logged_in_user_who_is_not_staff_still_needs_a_token(client, meeting):
    client.force_login(get_user_model().objects.create_user("someone", password="pw"))
    assert client.get(f"/meetings/{meeting.id}/").status_code == 403


def test_revoking_viewer_links_in_admin_voids_the_old_token(client, meeting):
    old = make_viewer_token(meeting.job)
    admin = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        "/admin/jobs/job/",
        {"action": "revoke_viewer_links", "_selected_action": [str(meeting.job_id)]},
        follow=True,
    )
    assert b"Revoked the viewer links of 1 job" in response.content
    client.logout()
    assert client.get(f"/meetings/{meeting.id}/", {"token": old}).status_code == 403
    meeting.job.refresh_from_db()
    new = make_viewer_token(meeting.job)
    assert client.get(f"/meetings/{meeting.id}/", {"token": new}).status_code == 200


def test_a_missing_job_or_meeting_is_404_not_403(client):
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/meetings/00000000-0000-0000-0000-000000000000/").status_code == 404
