"""Prometheus metrics, collected across every process of a host.

Counters and histograms are written by whichever process observes them (web,
worker children) to files in ``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` merges
the files and adds gauges computed when scraped (``meeting_intel.ops.scrape``:
jobs by status, jobs in flight, queue depth), so they are right however many
processes run. This module imports no app: every layer may observe into it.

A worker machine without a web process serves the same merged series on
``WORKER_METRICS_PORT`` (see ``meeting_intel.ops.wiring``).

All series are prefixed ``meeting_intel_``; the README's Operations section
lists them.
"""

from __future__ import annotations

import hmac
import os
import socket

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector


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


ERROR_KINDS = ("transient", "permanent", "unexpected")


def observe_provider_call(provider: str, operation: str, seconds: float, kind: str | None) -> None:
    """Record one provider call; `kind` is its error's kind (one of ERROR_KINDS), None if it succeeded."""
    PROVIDER_LATENCY.labels(provider, operation).observe(seconds)
    if kind is None:
        return
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


def observe_stage_end(stage: str, seconds: float, status: str, run_seconds: float | None) -> None:
    """A job left `stage` after `seconds`; with `run_seconds`, its run ended with `status`.

    The durations come from the job's own timing columns (jobs.state), not
    from its timeline.
    """
    STAGE_DURATION.labels(stage).observe(max(0.0, seconds))
    if run_seconds is not None:
        JOB_DURATION.labels(status).observe(max(0.0, run_seconds))


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
