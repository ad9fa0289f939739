"""`GET /api/v1/jobs/{id}/webhooks/` and `POST …/webhooks/redeliver/`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from jobs.models import ApiClient, Job
from meeting_intel.celery import app as celery_app
from webhooks.models import WebhookDelivery
from webhooks.outbox import record_job_event
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db

SECRET = "api-test-secret"


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    return settings


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    """Tasks queued by the code under test run here, not on a shared worker."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def cms(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def job_for(key: str, url: str, status: str = Job.Status.COMPLETED) -> Job:
    client = ApiClient.objects.get(key_hash=ApiClient.hash_key(key))
    return Job.objects.create(client=client, status=status, webhook_url=url, webhook_secret=SECRET)


def sent_event(job: Job, event: str = "job.completed") -> WebhookDelivery:
    with transaction.atomic():
        delivery = record_job_event(job, event)
    assert delivery is not None
    deliver(delivery.id)
    return delivery


def test_it_lists_a_jobs_deliveries_with_their_attempts(api_key: str, receiver: Any) -> None:
    job = job_for(api_key, receiver.hook_url())
    receiver.fail(500, times=1)
    delivery = sent_event(job)

    response = cms(api_key).get(f"/api/v1/jobs/{job.id}/webhooks/")
    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert listed["id"] == delivery.webhook_id
    assert (listed["event_type"], listed["state"], listed["attempt_count"]) == (
        "job.completed",
        "exhausted",
        1,
    )
    [attempt] = listed["attempts"]
    assert attempt["status_code"] == 500 and attempt["number"] == 1
    assert "Injected fault" in attempt["response_excerpt"]
    assert SECRET not in response.content.decode()


def test_another_clients_job_is_not_found(api_key: str, receiver: Any) -> None:
    other = ApiClient(name="other-cms")
    other_key = other.issue_key()
    other.save()
    job = job_for(other_key, receiver.hook_url())
    for response in (
        cms(api_key).get(f"/api/v1/jobs/{job.id}/webhooks/"),
        cms(api_key).post(f"/api/v1/jobs/{job.id}/webhooks/redeliver/"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_it_needs_an_api_key(receiver: Any, api_key: str) -> None:
    job = job_for(api_key, receiver.hook_url())
    response = APIClient().get(f"/api/v1/jobs/{job.id}/webhooks/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_redeliver_sends_the_latest_event_again(
    api_key: str, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = job_for(api_key, receiver.hook_url())
    older = sent_event(job, "job.failed")
    latest = sent_event(job)
    receiver.reset()

    with django_capture_on_commit_callbacks(execute=True):
        response = cms(api_key).post(f"/api/v1/jobs/{job.id}/webhooks/redeliver/")
    assert response.status_code == 202
    [queued] = response.json()["results"]
    assert queued["id"] == latest.webhook_id and queued["state"] == "pending"
    [hook] = receiver.wait_for(1)
    assert hook.headers["webhook-id"] == latest.webhook_id
    latest.refresh_from_db()
    assert latest.state == WebhookDelivery.State.SUCCEEDED

    with django_capture_on_commit_callbacks(execute=True):
        response = cms(api_key).post(
            f"/api/v1/jobs/{job.id}/webhooks/redeliver/",
            {"delivery_id": older.webhook_id},
            format="json",
        )
    assert response.status_code == 202
    assert receiver.wait_for(2)[1].headers["webhook-id"] == older.webhook_id


def test_redeliver_of_an_unknown_delivery_is_not_found(api_key: str, receiver: Any) -> None:
    job = job_for(api_key, receiver.hook_url())
    sent_event(job)
    response = cms(api_key).post(
        f"/api/v1/jobs/{job.id}/webhooks/redeliver/", {"delivery_id": "msg_nope"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_redeliver_without_a_terminal_event_is_a_conflict(api_key: str, receiver: Any) -> None:
    running = job_for(api_key, receiver.hook_url(), status=Job.Status.PROCESSING)
    silent = job_for(api_key, "")
    silent.status = Job.Status.COMPLETED
    silent.save(update_fields=["status"])
    for job in (running, silent):
        response = cms(api_key).post(f"/api/v1/jobs/{job.id}/webhooks/redeliver/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "no_webhook_event"
    assert receiver.received == []


def test_redeliver_with_a_blank_delivery_id_is_refused(api_key: str, receiver: Any) -> None:
    """A blank form field is not "no delivery_id": it would redeliver the latest event."""
    job = job_for(api_key, receiver.hook_url())
    sent_event(job)
    before = len(receiver.received)
    for body, fmt in (({"delivery_id": ""}, "multipart"), ({"delivery_id": ""}, "json")):
        response = cms(api_key).post(f"/api/v1/jobs/{job.id}/webhooks/redeliver/", body, format=fmt)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"]
    assert len(receiver.received) == before, "nothing was redelivered"
