"""Retry schedules through the real worker (WEBHOOK_RETRY_SCHEDULE=0,0.5,1):
500 then 200, 429 with Retry-After, and an exhausted schedule that is dead-
lettered and then redelivered over the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from jobs.models import ApiClient, Job
from tests.conftest import wait_until
from webhooks.models import WebhookDelivery
from webhooks.outbox import record_job_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "worker-test-secret"
State = WebhookDelivery.State


def completed_job(api_key: str, url: str) -> tuple[Job, WebhookDelivery]:
    """A job that just completed: its event is committed and enqueued for the worker."""
    client = ApiClient.objects.get(key_hash=ApiClient.hash_key(api_key))
    job = Job.objects.create(
        client=client, status=Job.Status.COMPLETED, webhook_url=url, webhook_secret=SECRET
    )
    with transaction.atomic():
        delivery = record_job_event(job, "job.completed")
    assert delivery is not None
    return job, delivery


def wait_for_hits(receiver: Any, path: str, count: int, timeout: float = 30) -> list[Any]:
    """Requests to `path` (those a scripted fault answered too), once `count` have come."""
    return wait_until(
        lambda: (
            hits if len(hits := [r for r in receiver.requests if r.path == path]) >= count else None
        ),
        timeout,
    )


def settled(delivery: WebhookDelivery, state: str) -> WebhookDelivery:
    return wait_until(lambda: WebhookDelivery.objects.filter(id=delivery.id, state=state).first())


def test_a_500_then_200_is_retried_with_the_same_webhook_id(
    platform: Any, api_key: str, receiver: Any
) -> None:
    receiver.fail(500, times=1)
    _, delivery = completed_job(api_key, receiver.hook_url("retry"))
    first, second = wait_for_hits(receiver, "/hooks/retry", 2)
    delivery = settled(delivery, State.SUCCEEDED)

    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.webhook_id
    assert second.timestamp - first.timestamp >= 0.45  # the schedule's second entry
    [hook] = receiver.received
    Webhook(SECRET.encode()).verify(hook.body, hook.headers)

    failed, succeeded = delivery.attempts.order_by("number")
    assert (failed.number, failed.status_code, succeeded.number, succeeded.status_code) == (
        1,
        500,
        2,
        200,
    )
    assert "Injected fault" in failed.response_excerpt
    assert failed.created_at < succeeded.created_at and failed.duration_ms >= 0
    assert delivery.attempt_count == 2 and delivery.delivered_at is not None


def test_a_429_retry_after_is_honoured(platform: Any, api_key: str, receiver: Any) -> None:
    receiver.rate_limit(retry_after=2, times=1)
    _, delivery = completed_job(api_key, receiver.hook_url("limited"))
    first, second = wait_for_hits(receiver, "/hooks/limited", 2)
    # The schedule alone would have waited about 0.5 s.
    assert second.timestamp - first.timestamp >= 1.9
    delivery = settled(delivery, State.SUCCEEDED)
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [429, 200]


def test_an_exhausted_schedule_is_dead_lettered_then_redelivered(
    platform: Any, api_key: str, receiver: Any
) -> None:
    receiver.fail(503, times=3)
    job, delivery = completed_job(api_key, receiver.hook_url("dead"))
    delivery = settled(delivery, State.EXHAUSTED)
    assert delivery.attempt_count == 3 and delivery.next_attempt_at is None
    assert len(wait_for_hits(receiver, "/hooks/dead", 3)) == 3
    assert receiver.received == []

    api = platform.api(api_key)
    listed = api.get(f"{platform.url}/api/v1/jobs/{job.id}/webhooks/", timeout=10).json()
    [dead] = listed["results"]
    assert dead["state"] == "exhausted"
    assert [a["status_code"] for a in dead["attempts"]] == [503, 503, 503]

    response = api.post(f"{platform.url}/api/v1/jobs/{job.id}/webhooks/redeliver/", timeout=10)
    assert response.status_code == 202, response.text
    [hook] = receiver.wait_for(1)
    assert hook.headers["webhook-id"] == delivery.webhook_id
    delivery = settled(delivery, State.SUCCEEDED)
    assert [a.status_code for a in delivery.attempts.order_by("created_at")] == [503, 503, 503, 200]
