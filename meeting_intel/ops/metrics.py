"""Prometheus metrics, collected across every process of a host.

Counters and histograms are written by whichever process observes them (web,
worker children) to files in ``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` merges
the files and adds gauges computed when scraped (jobs by status, jobs in
flight, queue depth), so they are right however many processes run.

A worker machine without a web process serves the same merged series on
``WORKER_METRICS_PORT`` (see ``meeting_intel.ops.wiring``).

All series are prefixed ``meeting_intel_``; the README's Operations section
lists them.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)


def _process_identifier() -> str:
    # Containers sharing one directory all have small pids: the hostname
    # keeps their files apart, and a restarted container reuses its files.
    return f"{socket.gethostname()}-{os.getpid()}"


def _enable_multiprocess() -> None:
    """Write every metric below to the shared directory (before any is created).

    prometheus_client opens its files under the PROMETHEUS_MULTIPROC_DIR
    environment variable, so the setting is exported there.
    """
    directory = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", str(settings.PROMETHEUS_MULTIPROC_DIR)
    )
    os.makedirs(directory, exist_ok=True)
    values.ValueClass = values.MultiProcessValue(_process_identifier)


_enable_multiprocess()

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120)

JOB_DURATION = Histogram(
    "meeting_intel_job_duration_seconds",
    "From submission (or restart) to a terminal status, by that status.",
    ["status"],
    buckets=DURATION_BUCKETS,
)
STAGE_DURATION = Histogram(
    "meeting_intel_stage_duration_seconds",
    "Time a job spent in one stage (queued counts the wait for a worker).",
    ["stage"],
    buckets=DURATION_BUCKETS,
)
PROVIDER_LATENCY = Histogram(
    "meeting_intel_provider_call_duration_seconds",
    "Provider call latency, successful or not.",
    ["provider", "operation"],
    buckets=CALL_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "meeting_intel_provider_errors",
    "Provider calls that raised: kind is transient, permanent or unexpected.",
    ["provider", "operation", "kind"],
)
PROVIDER_RETRIES = Counter(
    "meeting_intel_provider_retries",
    "Provider calls whose error the pipeline retries (transient or unexpected).",
    ["provider", "operation"],
)
RATE_LIMIT_WAIT = Histogram(
    "meeting_intel_rate_limit_wait_seconds",
    "How long work waited for a rate limiter, by limited resource.",
    ["resource"],
    buckets=WAIT_BUCKETS,
)
WEBHOOK_ATTEMPTS = Counter(
    "meeting_intel_webhook_attempts",
    "Webhook POSTs by outcome: success, client_error, server_error, rate_limited, "
    "gone, timeout, network_error, refused.",
    ["outcome"],
)


def observe_rate_limit_wait(resource: str, seconds: float) -> None:
    """Record that work waited `seconds` for the `resource` rate limiter."""
    RATE_LIMIT_WAIT.labels(resource).observe(max(0.0, seconds))


def observe_provider_call(
    provider: str, operation: str, seconds: float, error: BaseException | None
) -> None:
    from jobs.errors import PermanentError, TransientError

    PROVIDER_LATENCY.labels(provider, operation).observe(seconds)
    if error is None:
        return
    kind = (
        "transient"
        if isinstance(error, TransientError)
        else "permanent"
        if isinstance(error, PermanentError)
        else "unexpected"
    )
    PROVIDER_ERRORS.labels(provider, operation, kind).inc()
    if kind != "permanent":
        PROVIDER_RETRIES.labels(provider, operation).inc()


def webhook_outcome(status_code: int | None, error: str) -> str:
    """One of WEBHOOK_OUTCOMES for an attempt's status code and error."""
    if error.startswith("refused"):
        return "refused"
    if "deadline" in error or "timed out" in error.lower():
        return "timeout"
    if status_code is None:
        return "network_error"
    if 200 <= status_code < 300 and not error:
        return "success"
    if status_code == 410:
        return "gone"
    if status_code == 429:
        return "rate_limited"
    return "server_error" if status_code >= 500 else "client_error"


def observe_webhook_attempt(status_code: int | None, error: str) -> None:
    WEBHOOK_ATTEMPTS.labels(webhook_outcome(status_code, error or "")).inc()


def observe_transition(
    history: list[tuple[str, str, datetime]], status: str, stage: str, at: datetime
) -> None:
    """Observe what a new job event ends: a stage, and maybe the job's run.

    `history` is the job's earlier events, newest first, as (status, stage,
    created_at). A stage ends when the stage changes or the job becomes
    terminal; a run starts at the first event after the previous terminal one.
    Events after a terminal one (a restart, a note) end nothing.
    """
    from jobs.models import Job

    if not history or history[0][0] in Job.TERMINAL:
        return
    prev_stage = history[0][1]
    terminal = status in Job.TERMINAL
    if stage != prev_stage or terminal:
        started = history[0][2]
        for old_status, old_stage, created in history:
            if old_stage != prev_stage or old_status in Job.TERMINAL:
                break
            started = created
        STAGE_DURATION.labels(prev_stage).observe(max(0.0, (at - started).total_seconds()))
    if terminal:
        run_start = history[-1][2]
        for old_status, _, created in history:
            if old_status in Job.TERMINAL:
                break
            run_start = created
        JOB_DURATION.labels(status).observe(max(0.0, (at - run_start).total_seconds()))


# --- Gauges computed at scrape time ----------------------------------------------


def _queue_keys(queue: str) -> list[str]:
    # kombu's Redis transport keeps one list per priority step.
    return [queue] + [f"{queue}\x06\x16{step}" for step in (3, 6, 9)]


class StateCollector:
    """Jobs by status, jobs in flight, and broker queue depth, read when scraped."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "meeting_intel_scrape_source_up",
            "Whether the scrape could read a source (database, broker).",
            labels=["source"],
        )
        try:
            yield from self._jobs()
            up.add_metric(["database"], 1)
        except Exception:
            logger.warning("metrics: could not read jobs from the database", exc_info=True)
            up.add_metric(["database"], 0)
        try:
            yield from self._queues()
            up.add_metric(["broker"], 1)
        except Exception:
            logger.warning("metrics: could not read queue depth from the broker", exc_info=True)
            up.add_metric(["broker"], 0)
        yield up

    def _jobs(self) -> Iterator[Metric]:
        from django.db.models import Count
        from django.utils import timezone

        from jobs.models import Job

        counts = dict.fromkeys(Job.Status.values, 0)
        for row in Job.objects.order_by().values("status").annotate(n=Count("id")):
            counts[row["status"]] = row["n"]
        by_status = GaugeMetricFamily(
            "meeting_intel_jobs", "Jobs by current status.", labels=["status"]
        )
        for status, count in counts.items():
            by_status.add_metric([status], count)
        in_flight = (
            Job.objects.filter(status__in=Job.ACTIVE, lease_expires__gt=timezone.now())
            .exclude(lease_task="")
            .count()
        )
        yield by_status
        yield GaugeMetricFamily(
            "meeting_intel_jobs_in_flight",
            "Jobs with a step running on a worker right now (a live lease).",
            value=in_flight,
        )

    def _queues(self) -> Iterator[Metric]:
        import redis

        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            pipe = client.pipeline(transaction=False)
            for queue in settings.WORKER_QUEUES:
                for key in _queue_keys(queue):
                    pipe.llen(key)
            pipe.hlen("unacked")
            lengths = pipe.execute()
        finally:
            client.close()
        depth = GaugeMetricFamily(
            "meeting_intel_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        per_queue = len(_queue_keys(""))
        for i, queue in enumerate(settings.WORKER_QUEUES):
            depth.add_metric([queue], sum(lengths[i * per_queue : (i + 1) * per_queue]))
        yield depth
        yield GaugeMetricFamily(
            "meeting_intel_broker_unacked",
            "Messages handed to workers and not yet acknowledged (running or on countdown).",
            value=lengths[-1],
        )


def multiprocess_registry() -> CollectorRegistry:
    """The counters and histograms of every process writing to this host's directory."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return registry


WEBHOOK_OUTCOMES = (
    "success",
    "client_error",
    "server_error",
    "rate_limited",
    "gone",
    "timeout",
    "network_error",
    "refused",
)
_declared = False


def _declare_known_series() -> None:
    """Give every known label set a zero sample, so dashboards and alerts see
    0 rather than no data before the first job. Done at the first scrape, in
    the scraping process, which is the one that serves them."""
    global _declared
    if _declared:
        return
    from jobs.models import Job
    from jobs.providers.analysis_steps import STEPS as ANALYSIS_STEPS

    for status in Job.TERMINAL:
        JOB_DURATION.labels(status)
    for stage in Job.Stage.values:
        if stage != Job.Stage.DONE:
            STAGE_DURATION.labels(stage)
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_ATTEMPTS.labels(outcome)
    calls = [(settings.TRANSCRIPTION_PROVIDER, op) for op in ("submit", "fetch")]
    calls += [(settings.ANALYSIS_PROVIDER, step) for step in (*ANALYSIS_STEPS, "section")]
    for provider, operation in calls:
        PROVIDER_LATENCY.labels(provider, operation)
        PROVIDER_RETRIES.labels(provider, operation)
        for kind in ("transient", "permanent", "unexpected"):
            PROVIDER_ERRORS.labels(provider, operation, kind)
    _declared = True


def generate_latest() -> bytes:
    _declare_known_series()
    registry = multiprocess_registry()
    registry.register(StateCollector())
    return _generate_latest(registry)


def scrape_allowed(authorization: str) -> bool:
    """Whether a scrape with this Authorization header may read the metrics.

    With METRICS_BEARER_TOKEN set it must be `Bearer <token>`. Without one the
    metrics are open only under DEBUG or an explicit METRICS_PUBLIC=true
    (settings refuse to start otherwise; this check holds even if they did).
    """
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        return bool(settings.DEBUG or settings.METRICS_PUBLIC)
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


UNAUTHORIZED = b"metrics need a bearer token\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus exposition, for scrapers allowed by `scrape_allowed`."""
    if not scrape_allowed(request.headers.get("Authorization", "")):
        response = HttpResponse(UNAUTHORIZED, status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
