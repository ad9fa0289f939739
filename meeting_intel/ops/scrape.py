"""``/metrics``: this host's merged series plus gauges computed when scraped.

The gauges read the jobs table and the broker (jobs by status, jobs in
flight, queue depth), and every known label set gets a zero sample at the
first scrape. This module knows the jobs app; ``metrics`` (the series and
their observers, which every layer writes to) knows none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from jobs.models import Job
from jobs.providers.analysis_steps import STEPS as ANALYSIS_STEPS
from meeting_intel.ops.metrics import (
    ERROR_KINDS,
    JOB_DURATION,
    PROVIDER_ERRORS,
    PROVIDER_LATENCY,
    PROVIDER_RETRIES,
    STAGE_DURATION,
    UNAUTHORIZED,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_OUTCOMES,
    multiprocess_registry,
    scrape_allowed,
)

logger = logging.getLogger(__name__)


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


_declared = False


def _declare_known_series() -> None:
    """Give every known label set a zero sample, so dashboards and alerts see
    0 rather than no data before the first job. Done at the first scrape, in
    the scraping process, which is the one that serves them."""
    global _declared
    if _declared:
        return
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
        for kind in ERROR_KINDS:
            PROVIDER_ERRORS.labels(provider, operation, kind)
    _declared = True


def generate_latest() -> bytes:
    _declare_known_series()
    registry = multiprocess_registry()
    registry.register(StateCollector())
    return _generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus exposition, for scrapers allowed by `scrape_allowed`."""
    if not scrape_allowed(request.headers.get("Authorization", "")):
        response = HttpResponse(UNAUTHORIZED, status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
