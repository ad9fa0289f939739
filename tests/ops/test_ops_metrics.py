"""/metrics: the series an operator alerts on, observed from the outside of the
code that runs jobs (job events, webhook attempts, provider calls)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import pytest
import redis
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.errors import PermanentError, TransientError
from jobs.models import Job
from jobs.providers.instrumented import MeasuredAnalyzer, MeasuredTranscriber
from jobs.state import update_job
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


class Clock:
    """timezone.now for the state writes, moved by hand."""

    def __init__(self) -> None:
        self.now = timezone.now() - timedelta(hours=2)

    def at(self, seconds: float) -> None:
        self.start = getattr(self, "start", self.now)
        self.now = self.start + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    with mock.patch("jobs.state.timezone.now", side_effect=lambda: clock.now):
        yield clock


def test_stage_ends_move_stage_and_job_duration_histograms_from_the_job_columns(
    clock: Clock,
) -> None:
    before = scrape()
    clock.at(0)
    job = Job.objects.create(run_started_at=clock.now, stage_started_at=clock.now)
    clock.at(4)
    update_job(job, "Sending", status="processing", stage="transcribing")  # queued for 4 s
    clock.at(10)
    update_job(job, "Submitted", progress=15)
    clock.at(20)
    update_job(job, "Retrying", status="retrying")
    clock.at(34)
    update_job(job, "Transcript saved", status="processing", stage="analyzing")  # 30 s
    clock.at(40)
    connection.queries_log.clear()  # a full log (DEBUG) would capture nothing
    with CaptureQueriesContext(connection) as captured:
        update_job(job, "Completed", status="completed", stage="done")  # 6 s; the run 40 s
    completing = [q["sql"] for q in captured.captured_queries]  # a request clears the log
    clock.at(50)
    update_job(job, "A note after the end")  # ends nothing
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Timing reads no timeline: the completing write is its UPDATE and its event, one
    # statement on PostgreSQL (after its commit the broadcast finds the job's meeting).
    written = [q.split()[0] for q in completing if '"jobs_job' in q]
    assert written == (["WITH"] if connection.vendor == "postgresql" else ["UPDATE", "INSERT"])
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
    stored = Job.objects.get(id=job.id)
    assert stored.stage_seconds == {"queued": 4, "transcribing": 30, "analyzing": 6}


def test_a_restarted_job_is_timed_from_its_restart(clock: Clock) -> None:
    before = scrape()
    clock.at(0)
    job = Job.objects.create(run_started_at=clock.now, stage_started_at=clock.now)
    clock.at(10)
    update_job(job, "Failed", status="failed", stage="transcribing")
    clock.at(3600)
    update_job(job, "Retry requested", status="pending", stage="queued")
    clock.at(3601)
    update_job(job, "Sending", status="processing", stage="transcribing")
    clock.at(3603)
    update_job(job, "Failed", status="failed")
    after = scrape()
    moved = value(after, "meeting_intel_job_duration_seconds_sum", status="failed") - value(
        before, "meeting_intel_job_duration_seconds_sum", status="failed"
    )
    assert moved == pytest.approx(10 + 3)
    stored = Job.objects.get(id=job.id)
    assert stored.stage_seconds == {"queued": 1, "transcribing": 2}


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
