"""Staff add a job in admin by uploading audio; it starts processing on save."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from meetings.models import Meeting
from tests.conftest import SAMPLE_AUDIO, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_it_processes_a_job_added_in_admin(platform, staff_client):
    with open(SAMPLE_AUDIO, "rb") as fh:
        upload = SimpleUploadedFile("../../etc/stand up.wav", fh.read(), "audio/wav")
    response = staff_client.post(
        "/admin/jobs/job/add/", {"audio": upload, "title": "From admin", "language": "en"}
    )
    assert response.status_code == 302, response.content[:2000]
    job = Job.objects.get(title="From admin")
    assert job.created_by.username == "staff"
    assert ".." not in job.audio.name and job.original_filename == "stand up.wav"
    job = wait_for_job(job.id, timeout=90)
    assert job.status == Job.Status.COMPLETED
    assert Meeting.objects.get(job=job).segments.count() > 0
    page = staff_client.get(f"/admin/jobs/job/{job.id}/change/")
    assert b"Completed" in page.content


def test_it_rejects_a_non_audio_upload_in_admin(staff_client):
    upload = SimpleUploadedFile("notes.wav", b"just some text, not audio", "audio/wav")
    response = staff_client.post("/admin/jobs/job/add/", {"audio": upload, "title": "bad"})
    assert response.status_code == 200
    assert b"not a recognised audio or video format" in response.content
    assert not Job.objects.exists()


def test_admin_lists_and_filters_jobs(staff_client):
    Job.objects.create(title="Alpha", status=Job.Status.FAILED, error_code="x")
    Job.objects.create(title="Beta")
    page = staff_client.get("/admin/jobs/job/?status__exact=failed")
    assert b"Alpha" in page.content and b"Beta" not in page.content
    assert b"Beta" in staff_client.get("/admin/jobs/job/?q=Beta").content
