"""A redelivery asked for while an attempt is being sent sends the event once."""

from __future__ import annotations

import pytest
from django.db import transaction

from jobs.models import Job
from webhooks import sender
from webhooks.actions import redeliver
from webhooks.models import WebhookDelivery
from webhooks.outbox import record_job_event
from webhooks.tasks import claim, deliver

pytestmark = pytest.mark.django_db


def test_a_redeliver_during_an_in_flight_attempt_sends_once(settings, receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    job = Job.objects.create(status=Job.Status.COMPLETED, webhook_url=receiver.hook_url("race"))
    with transaction.atomic():
        delivery = record_job_event(job, "job.completed")
    assert claim(delivery.id), "a worker takes the attempt"

    assert redeliver(delivery) is False, "the attempt in flight is the redelivery"
    deliver(delivery.id)  # a message sent meanwhile finds nothing to send

    in_flight = WebhookDelivery.objects.select_related("job").get(id=delivery.id)
    sender.attempt(in_flight)  # the worker's attempt completes
    assert len(receiver.received) == 1
    done = WebhookDelivery.objects.get(id=delivery.id)
    assert done.state == WebhookDelivery.State.SUCCEEDED and done.claimed_until is None

    assert redeliver(done) is True, "once the attempt is over, a redelivery sends again"
    deliver(delivery.id)
    assert len(receiver.received) == 2
