"""Staff control in admin: filtered deliveries with their attempts, single and
bulk redelivery, a test event, secret rotation and re-enabling a gone endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.models import ApiClient, Job
from meeting_intel.celery import app as celery_app
from webhooks.actions import rotate_secret
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSecret
from webhooks.outbox import record_job_event
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db

State = WebhookDelivery.State
CHANGELIST = "admin:webhooks_webhookdelivery_changelist"


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


def exhausted_delivery(
    receiver: Any, name: str = "cms", event: str = "job.completed"
) -> WebhookDelivery:
    job = Job.objects.create(status=Job.Status.COMPLETED, webhook_url=receiver.hook_url(name))
    with transaction.atomic():
        delivery = record_job_event(job, event)
    assert delivery is not None
    receiver.fail(500, times=1)
    deliver(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == State.EXHAUSTED
    return delivery


def test_the_deliveries_list_filters_by_state_endpoint_and_event(
    admin_client: Any, receiver: Any
) -> None:
    failed = exhausted_delivery(receiver, "a", "job.failed")
    other = exhausted_delivery(receiver, "b")
    url = reverse(CHANGELIST)
    filters = {"state": "exhausted", "event_type": "job.failed"}
    page = admin_client.get(url, filters).content.decode()
    assert failed.webhook_id in page and other.webhook_id not in page
    page = admin_client.get(url, {"url": other.url}).content.decode()
    assert other.webhook_id in page and failed.webhook_id not in page
    assert admin_client.get(url, {"state": "succeeded"}).content.decode().count("msg_") == 0
    assert "Send a test event" in page


def test_a_delivery_shows_its_attempts_and_redelivers(
    admin_client: Any, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    delivery = exhausted_delivery(receiver)
    change = reverse("admin:webhooks_webhookdelivery_change", args=[delivery.id])
    page = admin_client.get(change).content.decode()
    assert "Injected fault" in page and "Redeliver" in page

    redeliver_url = reverse("admin:webhooks_webhookdelivery_redeliver", args=[delivery.id])
    assert admin_client.get(redeliver_url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(redeliver_url)
    assert response.status_code == 302
    [hook] = receiver.wait_for(1)
    assert hook.headers["webhook-id"] == delivery.webhook_id
    delivery.refresh_from_db()
    assert delivery.state == State.SUCCEEDED


def test_bulk_redelivery(
    admin_client: Any, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    deliveries = [exhausted_delivery(receiver, name) for name in ("x", "y")]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse(CHANGELIST),
            {"action": "redeliver_selected", "_selected_action": [d.id for d in deliveries]},
        )
    assert {h.headers["webhook-id"] for h in receiver.wait_for(2)} == {
        d.webhook_id for d in deliveries
    }
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.SUCCEEDED}


def test_send_test_event_checks_an_endpoint(admin_client: Any, receiver: Any) -> None:
    client = ApiClient.objects.create(name="tested-cms", key_hash="h-tested")
    secret = rotate_secret(client)
    url = reverse("admin:webhooks_webhookdelivery_send_test")
    response = admin_client.post(url, {"url": receiver.hook_url("test"), "client": client.id})
    page = response.content.decode()
    [hook] = receiver.wait_for(1)
    assert Webhook(secret.secret).verify(hook.body, hook.headers)["type"] == "test.event"
    assert f"Test event {hook.headers['webhook-id']}: HTTP 200." in page
    assert not WebhookDelivery.objects.exists()

    receiver.fail(404, times=1)
    page = admin_client.post(url, {"url": receiver.hook_url("missing")}).content.decode()
    assert ": HTTP 404." in page


def test_adding_a_secret_rotates_the_clients_secret(admin_client: Any) -> None:
    client = ApiClient.objects.create(name="rotating", key_hash="h-rotating")
    old = rotate_secret(client)
    response = admin_client.post(
        reverse("admin:webhooks_webhooksecret_add"), {"client": client.id}, follow=True
    )
    new = WebhookSecret.objects.exclude(id=old.id).get(client=client)
    assert new.secret in response.content.decode()  # shown once, to hand to the client
    old.refresh_from_db()
    assert new.expires_at is None and old.expires_at > timezone.now()


def test_a_gone_endpoint_can_be_reenabled(admin_client: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(
        url="https://cms.example/hook", gone_at=timezone.now()
    )
    admin_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "reenable", "_selected_action": [endpoint.id]},
    )
    endpoint.refresh_from_db()
    assert endpoint.gone_at is None
