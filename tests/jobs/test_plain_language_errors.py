"""End users, API clients and webhooks get a failure's code and a message from a fixed
table; the exception text behind it reaches only the logs and Django admin."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from jobs.errors import TransientError
from jobs.failures import DEFAULT, MESSAGES
from jobs.models import Job
from jobs.pipeline.runner import schedule_retry
from jobs.state import fail_job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import api_for, make_job, new_client
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

RAW = "DataError: value 1593925740563301 out of range at db-primary.internal:5432 (SELECT 1)"


@pytest.fixture
def failed_job(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    client, key = new_client()
    job = make_job(client, status=Job.Status.PROCESSING, webhook_url="https://cms.example/h")
    with transaction.atomic():
        fail_job(job, "provider_unavailable", RAW)
    return Job.objects.get(id=job.id), key


def test_the_api_shows_the_code_and_the_tables_message(failed_job):
    job, key = failed_job
    api = api_for(key)
    body = api.get(f"/api/v1/jobs/{job.id}/").json()
    assert body["error"] == {
        "code": "provider_unavailable",
        "message": MESSAGES["provider_unavailable"],
    }
    events = api.get(f"/api/v1/jobs/{job.id}/events/").content.decode()
    listed = api.get("/api/v1/jobs/").content.decode()
    for text in (json.dumps(body), events, listed):
        assert "DataError" not in text and "db-primary" not in text


def test_the_webhook_body_carries_no_exception_text(failed_job):
    job, _ = failed_job
    delivery = WebhookDelivery.objects.get(job=job, event_type="job.failed")
    body = json.loads(delivery.body)
    assert body["data"]["error"]["message"] == MESSAGES["provider_unavailable"]
    assert "DataError" not in delivery.body and "db-primary" not in delivery.body


def test_pages_show_plain_words_to_viewers_and_the_detail_to_staff(failed_job, client, admin_user):
    job, _ = failed_job
    page = client.get(f"/jobs/{job.id}/", {"token": make_viewer_token(job)}).content.decode()
    assert MESSAGES["provider_unavailable"] in page and "db-primary" not in page
    client.force_login(admin_user)
    assert "db-primary" in client.get(f"/jobs/{job.id}/").content.decode()
    assert "db-primary" in client.get(f"/admin/jobs/job/{job.id}/change/").content.decode()


def test_a_retry_message_uses_the_table_and_the_log_keeps_the_detail(caplog):
    job = make_job(None, status=Job.Status.PROCESSING, lease_task="t-1")
    schedule_retry(job, "t-1", TransientError("provider_timeout", RAW))
    job.refresh_from_db()
    assert job.status == Job.Status.RETRYING
    assert "db-primary" not in job.message and MESSAGES["provider_timeout"] in job.message
    assert all("db-primary" not in e for e in job.events.values_list("message", flat=True))
    assert "db-primary" in caplog.text


def test_an_unknown_code_gets_the_generic_message():
    job = make_job(
        None, status=Job.Status.FAILED, error_code="weird_vendor_thing", error_message=RAW
    )
    assert job.error == {"code": "weird_vendor_thing", "message": DEFAULT}
