"""The broker down for a web process: a submit (or a retry) is still accepted with the
job saved, never a 500, and the first sweep after the broker is back enqueues it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.models import Job
from jobs.pipeline import sweeper
from meeting_intel.celery import app as celery_app
from tests.support.api_factories import api_for, make_job, new_client
from tests.support.platform import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _use_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    # Drop the pooled connections to the old broker.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[None]:
    shipped = celery_app.conf.broker_url
    _use_broker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    yield
    _use_broker(shipped)


def test_a_submit_with_the_broker_down_is_accepted_and_marked_for_the_sweeper(
    settings, broker_down, caplog
):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    _, key = new_client()
    response = api_for(key).post(
        "/api/v1/jobs/", {"audio_url": "https://recordings.example.org/a.mp3"}, format="json"
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    assert job.status == Job.Status.PENDING and job.next_attempt_at is not None
    assert "sweeper will enqueue it" in caplog.text


def test_the_first_sweep_after_the_broker_returns_enqueues_the_job(settings, broker_down):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    _, key = new_client()
    api = api_for(key)
    created = api.post(
        "/api/v1/jobs/", {"audio_url": "https://recordings.example.org/b.mp3"}, format="json"
    )
    assert created.status_code == 201
    _use_broker(settings.CELERY_BROKER_URL)  # the broker is back
    assert sweeper.sweep() == {"resumed": 1}
    job = Job.objects.get(id=created.json()["id"])
    assert job.next_attempt_at is None
    assert sweeper.sweep() == {"resumed": 0}, "swept once, not every minute"
    assert settings.SWEEP_INTERVAL_SECONDS <= 60  # so within a minute of the broker's return


def test_a_retry_with_the_broker_down_is_accepted(broker_down):
    client, key = new_client()
    job = make_job(client, status=Job.Status.FAILED, error_code="provider_timeout")
    response = api_for(key).post(f"/api/v1/jobs/{job.id}/retry/")
    assert response.status_code == 200, response.content
    assert Job.objects.get(id=job.id).next_attempt_at is not None
