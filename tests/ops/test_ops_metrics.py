"""/metrics: the series an operator alerts on, observed from the outside of the
code that runs jobs (job events, webhook attempts, provider calls)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.errors import PermanentError, TransientError
from jobs.models import Job, JobEvent
from jobs.providers.instrumented import MeasuredAnalyzer, MeasuredTranscriber
from meeting_intel.devserver import EmbeddedRedis
from meeting_intel.ops import metrics
from meetings.transcript import Transcript
from webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

SERIES = (
    "meeting_intel_jobs",
    "meeting_intel_jobs_in_flight",
    "meeting_intel_queue_depth",
    "meeting_intel_broker_unacked",
    "meeting_intel_job_duration_seconds",
    "meeting_intel_stage_duration_seconds",
    "meeting_intel_provider_call_duration_seconds",
    "meeting_intel_provider_errors_total",
    "meeting_intel_provider_retries_total",
    "meeting_intel_rate_limit_wait_seconds",
    "meeting_intel_webhook_attempts_total",
)


def scrape(client: Client | None = None, **headers: str) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def own_broker(tmp_path) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path)
    server.start()
    with override_settings(CELERY_BROKER_URL=server.url):
        yield server.url
    server.stop()


def test_it_exposes_every_series_with_scrape_time_gauges(own_broker: str) -> None:
    metrics.observe_rate_limit_wait("openai_requests", 0.2)  # resources are the limiter's to name
    Job.objects.create(
        status=Job.Status.PROCESSING,
        lease_task="t",
        lease_expires=timezone.now() + timedelta(minutes=1),
    )
    Job.objects.create(status=Job.Status.COMPLETED)
    queue = redis.Redis.from_url(own_broker)
    queue.lpush("analysis", "a", "b")
    queue.lpush("analysis\x06\x163", "c")
    queue.hset("unacked", "tag", "message")

    response = Client().get("/metrics")
    text = response.content.decode()
    samples = scrape()

    assert response["Content-Type"].startswith("text/plain")
    for name in SERIES:
        assert f"\n# TYPE {name} " in text, name
    assert value(samples, "meeting_intel_jobs", status="processing") == 1
    assert value(samples, "meeting_intel_jobs", status="completed") == 1
    assert value(samples, "meeting_intel_jobs", status="failed") == 0
    assert value(samples, "meeting_intel_jobs_in_flight") == 1
    assert value(samples, "meeting_intel_queue_depth", queue="analysis") == 3
    assert value(samples, "meeting_intel_queue_depth", queue="webhooks") == 0
    assert value(samples, "meeting_intel_broker_unacked") == 1
    assert value(samples, "meeting_intel_scrape_source_up", source="broker") == 1
    # Known label sets are there before anything happened, so alerts see 0, not nothing.
    assert ("meeting_intel_job_duration_seconds_count", (("status", "failed"),)) in samples
    assert ("meeting_intel_webhook_attempts_total", (("outcome", "server_error"),)) in samples


def test_it_still_answers_when_the_broker_is_down() -> None:
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        samples = scrape()
    assert value(samples, "meeting_intel_scrape_source_up", source="broker") == 0
    assert value(samples, "meeting_intel_scrape_source_up", source="database") == 1


def test_job_events_move_stage_and_job_duration_histograms() -> None:
    before = scrape()
    job = Job.objects.create()
    start = timezone.now() - timedelta(seconds=100)

    def event(status: str, stage: str, seconds: float) -> None:
        JobEvent.objects.create(
            job=job, status=status, stage=stage, created_at=start + timedelta(seconds=seconds)
        )

    event("pending", "queued", 0)
    event("processing", "transcribing", 4)  # queued for 4 s
    event("processing", "transcribing", 10)
    event("retrying", "transcribing", 20)
    event("processing", "analyzing", 34)  # transcribing for 30 s
    event("completed", "done", 40)  # analyzing for 6 s, the job took 40 s
    event("completed", "done", 50)  # a note after the end ends nothing
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("meeting_intel_stage_duration_seconds_count", stage="queued") == 1
    assert moved("meeting_intel_stage_duration_seconds_sum", stage="queued") == pytest.approx(4)
    assert moved("meeting_intel_stage_duration_seconds_sum", stage="transcribing") == pytest.approx(
        30
    )
    assert moved("meeting_intel_stage_duration_seconds_sum", stage="analyzing") == pytest.approx(6)
    assert moved("meeting_intel_job_duration_seconds_count", status="completed") == 1
    assert moved("meeting_intel_job_duration_seconds_sum", status="completed") == pytest.approx(40)
    assert moved("meeting_intel_job_duration_seconds_bucket", status="completed", le="60.0") == 1
    assert moved("meeting_intel_job_duration_seconds_bucket", status="completed", le="30.0") == 0


def test_a_restarted_job_is_timed_from_its_restart() -> None:
    before = scrape()
    job = Job.objects.create()
    start = timezone.now() - timedelta(hours=2)
    for status, stage, seconds in (
        ("pending", "queued", 0),
        ("failed", "transcribing", 10),
        ("pending", "queued", 3600),
        ("processing", "transcribing", 3601),
        ("failed", "transcribing", 3603),
    ):
        JobEvent.objects.create(
            job=job, status=status, stage=stage, created_at=start + timedelta(seconds=seconds)
        )
    after = scrape()
    moved = value(after, "meeting_intel_job_duration_seconds_sum", status="failed") - value(
        before, "meeting_intel_job_duration_seconds_sum", status="failed"
    )
    assert moved == pytest.approx(10 + 3)


class _Transcriber:
    name = "fakeprovider"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def submit(self, audio: object) -> str:
        if self.error:
            raise self.error
        return "t-1"

    def fetch(self, external_id: str) -> Transcript | None:
        return None


class _Analyzer:
    name = "fakeanalyzer"
    model = "m-1"

    def run(self, step: str, transcript: Transcript, context: object = None) -> object:
        raise TransientError("provider_unavailable", "503")


def test_provider_calls_count_latency_errors_and_retries() -> None:
    before = scrape()
    assert MeasuredTranscriber(_Transcriber()).submit(object()) == "t-1"
    with pytest.raises(TransientError):
        MeasuredTranscriber(_Transcriber(TransientError("provider_timeout", "slow"))).submit(
            object()
        )
    with pytest.raises(PermanentError):
        MeasuredTranscriber(_Transcriber(PermanentError("audio_rejected", "no"))).submit(object())
    analyzer = MeasuredAnalyzer(_Analyzer())
    assert (analyzer.name, analyzer.model) == ("fakeanalyzer", "m-1")
    with pytest.raises(TransientError):
        analyzer.run("summary", Transcript(utterances=[]))
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    submit = {"provider": "fakeprovider", "operation": "submit"}
    assert moved("meeting_intel_provider_call_duration_seconds_count", **submit) == 3
    assert moved("meeting_intel_provider_errors_total", kind="transient", **submit) == 1
    assert moved("meeting_intel_provider_errors_total", kind="permanent", **submit) == 1
    assert moved("meeting_intel_provider_retries_total", **submit) == 1
    summary = {"provider": "fakeanalyzer", "operation": "summary"}
    assert moved("meeting_intel_provider_retries_total", **summary) == 1


def test_webhook_attempts_count_by_outcome() -> None:
    before = scrape()
    delivery = WebhookDelivery.objects.create(
        job=Job.objects.create(),
        event_type="job.completed",
        url="https://cms.example/hook",
        body="{}",
    )
    for status_code, error in (
        (200, ""),
        (503, ""),
        (None, "connection refused"),
        (None, "deadline of 15s exceeded"),
        (410, ""),
    ):
        WebhookAttempt.objects.create(delivery=delivery, status_code=status_code, error=error)
    after = scrape()
    for outcome in ("success", "server_error", "network_error", "timeout", "gone"):
        moved = value(after, "meeting_intel_webhook_attempts_total", outcome=outcome) - value(
            before, "meeting_intel_webhook_attempts_total", outcome=outcome
        )
        assert moved == 1, outcome


def test_rate_limiter_waits_are_observed_by_resource() -> None:
    before = scrape()
    metrics.observe_rate_limit_wait("assemblyai_slots", 1.5)
    after = scrape()
    name = "meeting_intel_rate_limit_wait_seconds_sum"
    assert (
        value(after, name, resource="assemblyai_slots")
        - value(before, name, resource="assemblyai_slots")
        == 1.5
    )


@override_settings(METRICS_BEARER_TOKEN="scrape-token-123")
def test_a_metrics_token_is_required_when_set() -> None:
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(HTTP_AUTHORIZATION="Bearer scrape-token-123")
