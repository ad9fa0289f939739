"""A meeting goes from an API upload to a signed webhook, the API and the results
page, through a real worker and web process, real Redis and the database."""

from __future__ import annotations

import json

import pytest
import requests
from standardwebhooks import Webhook

from jobs.models import Job
from meetings.models import Meeting, Segment
from tests.conftest import SAMPLE_AUDIO, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA=="


def submit(platform, api_key: str, receiver, **fields: str) -> dict:
    with open(SAMPLE_AUDIO, "rb") as audio:
        response = platform.api(api_key).post(
            f"{platform.url}/api/v1/jobs/",
            files={"audio": ("standup.wav", audio, "audio/wav")},
            data={
                "title": "Weekly stand-up",
                "webhook_url": receiver.hook_url(),
                "webhook_secret": SECRET,
                "external_id": "cms-42",
                "metadata": json.dumps({"room": "blue"}),
                **fields,
            },
            timeout=30,
        )
    assert response.status_code == 201, response.text
    return response.json()


def test_it_processes_an_upload_to_a_signed_webhook_and_results(
    platform, api_key, receiver, fake_aai
):
    submissions_before = len(fake_aai.submissions)
    created = submit(platform, api_key, receiver)
    assert created["status"] == "pending"
    assert "webhook_secret" not in created and SECRET not in json.dumps(created)

    [hook] = receiver.wait_for(1, timeout=90)
    event = Webhook(SECRET).verify(hook.body, hook.headers)
    assert event["type"] == "job.completed"
    assert event["data"]["job_id"] == created["id"]
    assert event["data"]["external_id"] == "cms-42"
    assert event["data"]["meeting"]["summary"].startswith("Alice and Bob")
    assert len(fake_aai.submissions) == submissions_before + 1

    api = platform.api(api_key)
    job = api.get(f"{platform.url}/api/v1/jobs/{created['id']}/", timeout=10).json()
    assert (job["status"], job["stage"], job["progress"]) == ("completed", "done", 100)
    assert job["error"] is None and job["started_at"] and job["completed_at"]

    meeting = api.get(f"{platform.url}/api/v1/meetings/{job['meeting_id']}/", timeout=10).json()
    assert {s["label"]: s["name"] for s in meeting["speakers"]} == {"A": "Alice", "B": "Bob"}
    assert meeting["segments"][0]["speaker_name"] in ("Alice", "Bob")
    assert meeting["action_items"][0]["owner"] == "Bob"
    assert meeting["decisions"][0]["text"] == "Ship on Monday"
    assert meeting["degraded"] == []
    assert meeting["segments"] == sorted(meeting["segments"], key=lambda s: s["start_ms"])

    page = requests.get(job["results_url"], timeout=10)
    assert page.status_code == 200
    assert "Alice and Bob planned the release" in page.text
    assert "Ship on Monday" in page.text
    assert requests.get(job["results_url"].split("?")[0], timeout=10).status_code == 403


def test_a_failing_analysis_step_degrades_instead_of_failing(
    platform, api_key, receiver, fake_openai
):
    fake_openai.fail(500, times=None, tag="summary")
    created = submit(platform, api_key, receiver)
    job = wait_for_job(created["id"], timeout=90)
    assert job.status == Job.Status.COMPLETED
    meeting = Meeting.objects.get(job=job)
    assert meeting.degraded == ["summary"]
    assert meeting.summary == ""
    assert meeting.decisions.count() == 1
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["data"]["meeting"]["degraded"] == ["summary"]


def test_a_failing_transcription_retries_then_fails_with_one_webhook(
    platform, api_key, receiver, fake_aai
):
    fake_aai.fail(503, times=None, route="submit")
    created = submit(platform, api_key, receiver)
    job = wait_for_job(created["id"], timeout=90)
    assert job.status == Job.Status.FAILED
    assert job.error_code == "provider_unavailable"
    assert "AssemblyAI" in job.error_message
    statuses = list(job.events.values_list("status", flat=True))
    assert statuses.count("retrying") == 2
    assert statuses.index("failed") == len(statuses) - 1
    [hook] = receiver.wait_for(1)
    event = Webhook(SECRET).verify(hook.body, hook.headers)
    assert event["type"] == "job.failed"
    assert event["data"]["error"]["code"] == "provider_unavailable"
    assert not Segment.objects.filter(meeting__job=job).exists()
    # Give a stray second failure webhook the chance to show up.
    with pytest.raises(TimeoutError):
        receiver.wait_for(2, timeout=2)
