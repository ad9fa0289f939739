"""A job's terminal state and the webhook owed for it commit together: jobs
sends `job_finished` inside the terminal transaction, and the outbox row the
webhooks app writes on it is rolled back with that transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from jobs.models import Job
from jobs.signals import job_finished
from jobs.state import fail_job
from webhooks.models import WebhookDelivery


class Boom(Exception):
    pass


def failed(job: Job) -> bool:
    job.refresh_from_db()
    return job.status == Job.Status.FAILED


@pytest.mark.django_db
def test_the_outbox_row_is_written_in_the_terminal_transaction() -> None:
    job = Job.objects.create(status=Job.Status.PROCESSING, webhook_url="https://cms.example/h")
    seen: list[tuple[str, bool]] = []

    def in_transaction(sender: Any, job: Job, event: str, **_: Any) -> None:
        seen.append((event, transaction.get_connection().in_atomic_block))

    job_finished.connect(in_transaction, weak=False)
    try:
        with pytest.raises(Boom), transaction.atomic():
            fail_job(job, "transcription_failed", "The provider gave up.")
            assert WebhookDelivery.objects.filter(job=job, event_type="job.failed").count() == 1
            raise Boom
    finally:
        job_finished.disconnect(in_transaction)

    assert seen == [("job.failed", True)]
    assert not failed(job), "the terminal state was rolled back"
    assert not WebhookDelivery.objects.filter(job=job).exists(), "so was its outbox row"

    fail_job(job, "transcription_failed", "The provider gave up.")
    assert failed(job)
    assert WebhookDelivery.objects.filter(job=job, event_type="job.failed").count() == 1


@pytest.mark.django_db
def test_a_receiver_that_fails_leaves_the_job_unfinished() -> None:
    job = Job.objects.create(status=Job.Status.PROCESSING, webhook_url="https://cms.example/h")

    def broken(**_: Any) -> None:
        raise Boom

    job_finished.connect(broken, weak=False)
    try:
        with pytest.raises(Boom):
            fail_job(job, "transcription_failed", "The provider gave up.")
    finally:
        job_finished.disconnect(broken)
    assert not failed(job)
    assert not WebhookDelivery.objects.filter(job=job).exists()
