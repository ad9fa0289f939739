"""The outbox: a job's event is written with its terminal state and sent
exactly once, even when the process dies between the commit and the send or
two workers pick the same delivery."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.models import Job
from jobs.state import fail_job
from meeting_intel.celery import app as celery_app
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import record_job_event
from webhooks.tasks import deliver, sweep

SECRET = "outbox-test-secret"
State = WebhookDelivery.State


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60]
    return settings


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks queued by the code under test run here, not on a shared worker."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.mark.django_db
def test_a_crash_between_commit_and_send_still_delivers_once(
    receiver: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    job = Job.objects.create(
        status=Job.Status.PROCESSING, webhook_url=receiver.hook_url(), webhook_secret=SECRET
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        fail_job(job, "transcription_failed", "The provider gave up.")
    # The terminal state and its event were committed together...
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    delivery = WebhookDelivery.objects.get(job=job)
    assert delivery.event_type == "job.failed" and delivery.state == State.PENDING
    # ...and the process died before running its after-commit enqueue.
    assert queued and receiver.received == []

    assert sweep() == 1
    assert sweep() == 0
    # The lost enqueue turning up late does not send it again.
    for callback in queued:
        callback()

    [hook] = receiver.received
    delivery.refresh_from_db()
    assert delivery.state == State.SUCCEEDED and delivery.attempts.count() == 1
    assert Webhook(SECRET.encode()).verify(hook.body, hook.headers)["type"] == "job.failed"


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_at_once_send_once(receiver: Any) -> None:
    job = Job.objects.create(status=Job.Status.COMPLETED, webhook_url=receiver.hook_url())
    delivery = WebhookDelivery.objects.create(
        job=job,
        event_type="job.completed",
        url=job.webhook_url,
        body="{}",
        next_attempt_at=timezone.now(),
    )
    receiver.delay_responses(0.3, times=1)
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        try:
            deliver(delivery.id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(receiver.wait_for(1)) == 1
    delivery.refresh_from_db()
    assert delivery.state == State.SUCCEEDED
    assert delivery.attempts.count() == 1


@pytest.mark.django_db
def test_an_event_for_a_gone_endpoint_is_recorded_but_not_sent(receiver: Any) -> None:
    WebhookEndpoint.objects.create(url=receiver.hook_url(), gone_at=timezone.now())
    job = Job.objects.create(status=Job.Status.COMPLETED, webhook_url=receiver.hook_url())
    with transaction.atomic():
        delivery = record_job_event(job, "job.completed")
    assert delivery is not None
    assert delivery.state == State.GONE and "gone since" in delivery.last_error
    assert sweep() == 0
