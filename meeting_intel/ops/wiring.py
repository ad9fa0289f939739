"""Wires logging context and metrics into the code that runs jobs, from outside.

Connected once per process by ``meeting_intel.apps.OpsConfig.ready``:

- Celery leaves logging to Django's LOGGING (one format for every process).
- Each task binds ``task_id``, ``task`` and, for job tasks, ``job_id`` with the
  job's stage and attempt to every line it logs: a step task's from the row
  its runner reads anyway (``jobs.signals.job_read``), another job task's
  from one query.
- Each web request on a job's URL binds its ``job_id``.
- Every ``JobEvent`` (written for every job transition) is logged once committed
  and moves the log context's stage.
- Every committed end of a stage (``jobs.signals.stage_ended``, timed from the
  job's columns) feeds the stage and job duration histograms.
- Every ``WebhookAttempt`` counts towards webhook attempts by outcome.
- A worker started with ``WORKER_METRICS_PORT`` serves this host's metrics.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from celery import signals as celery_signals
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse

from meeting_intel.ops import logs as log_context
from meeting_intel.ops import metrics

logger = logging.getLogger(__name__)
transitions = logging.getLogger("jobs.events")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_task_tokens: dict[str, Any] = {}


def connect() -> None:
    from jobs.signals import job_read, stage_ended

    celery_signals.setup_logging.connect(_keep_django_logging, weak=False)
    celery_signals.task_prerun.connect(_task_started, weak=False)
    celery_signals.task_postrun.connect(_task_finished, weak=False)
    celery_signals.worker_ready.connect(_serve_worker_metrics, weak=False)
    post_save.connect(_job_event_saved, sender="jobs.JobEvent", weak=False)
    stage_ended.connect(_stage_ended, weak=False)
    job_read.connect(_job_read, weak=False)
    post_save.connect(_webhook_attempt_saved, sender="webhooks.WebhookAttempt", weak=False)


def _keep_django_logging(**_: Any) -> None:
    """A receiver here stops Celery from replacing the root logger's handlers."""


# --- Celery tasks ----------------------------------------------------------------


def _job_id_for(task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    first = kwargs.get("job_id", args[0] if args else None)
    if task_name.startswith("jobs.") and first is not None and _UUID.match(str(first)):
        return str(first)
    if task_name == "webhooks.deliver" and first is not None:
        from webhooks.models import WebhookDelivery

        job_id = WebhookDelivery.objects.filter(id=first).values_list("job_id", flat=True).first()
        return str(job_id) if job_id else None
    return None


def task_fields(
    task_id: str, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """What a task's log lines carry: ids, and the job's stage, attempt and webhook secret."""
    from jobs.models import Job
    from jobs.pipeline.queue import STEP_TASK_NAMES

    fields: dict[str, Any] = {"task_id": task_id, "task": task_name}
    job_id = _job_id_for(task_name, args, kwargs)
    if job_id:
        fields["job_id"] = job_id
        if task_name in STEP_TASK_NAMES.values():
            return fields  # its runner reads the row and sends job_read
        row = (
            Job.objects.filter(id=job_id).values_list("stage", "attempts", "webhook_secret").first()
        )
        if row:
            fields.update(stage=row[0], attempt=row[1], secrets=(row[2],) if row[2] else ())
    return fields


def _task_started(
    task_id: str = "", task: Any = None, args: Any = (), kwargs: Any = None, **_: Any
) -> None:
    name = getattr(task, "name", "") or ""
    try:
        fields = task_fields(task_id, name, tuple(args or ()), dict(kwargs or {}))
    except Exception:  # the database may be down: the task's own retry handles that
        fields = {"task_id": task_id, "task": name}
    _task_tokens[task_id] = log_context.bind(**fields)
    log_context.set_task_context(fields)


def _job_read(job: Any, **_: Any) -> None:
    """A step task read its job: bind the job's stage, attempt and webhook secret."""
    if log_context.current_context().get("job_id") == str(job.id):
        secret = job.webhook_secret
        log_context.update(
            stage=job.stage, attempt=job.attempts, secrets=(secret,) if secret else ()
        )


def _task_finished(task_id: str = "", **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            log_context.reset(token)
        except ValueError:  # bound in another context (eager task inside a request)
            pass
    log_context.set_task_context(None)


def _serve_worker_metrics(**_: Any) -> None:
    if settings.WORKER_METRICS_PORT:
        serve_worker_metrics(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDR)


def serve_worker_metrics(port: int, addr: str) -> Any:
    """Serve this host's merged metrics on addr:port in a daemon thread; the server.

    prometheus_client's own server checks no credentials, so its WSGI app is
    wrapped with the same bearer check as web's /metrics.
    """
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    exposition = make_wsgi_app(metrics.multiprocess_registry())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not metrics.scrape_allowed(environ.get("HTTP_AUTHORIZATION", "")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [metrics.UNAUTHORIZED]
        return exposition(environ, start_response)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    logger.info("serving this host's metrics on %s:%d", addr, port)
    return server


# --- Web requests ----------------------------------------------------------------


class RequestContextMiddleware:
    """Binds the job a request is about (from its URL) to the request's log lines.

    Natively async (and sync for the test client): it touches only a
    contextvar, so it must not cost the request a hop to a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        token = log_context.bind()
        try:
            return self.get_response(request)
        finally:
            log_context.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = log_context.bind()
        try:
            return await self.get_response(request)
        finally:
            log_context.reset(token)

    async def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        job_id = kwargs.get("job_id")
        url_name = getattr(request.resolver_match, "url_name", "") or ""
        if job_id is None and url_name.startswith("api-job"):
            job_id = kwargs.get("pk")
        if job_id is not None:
            log_context.update(job_id=str(job_id))


# --- Model events ----------------------------------------------------------------


def _job_event_saved(instance: Any, created: bool = False, raw: bool = False, **_: Any) -> None:
    if not created or raw:
        return
    job_id = str(instance.job_id)
    if log_context.current_context().get("job_id") in (None, job_id):
        log_context.update(job_id=job_id, stage=instance.stage, attempt=instance.attempt)
    transaction.on_commit(
        partial(
            _job_event_committed,
            job_id,
            instance.status,
            instance.stage,
            instance.attempt,
            instance.progress,
            instance.message,
        )
    )


def _job_event_committed(
    job_id: str,
    status: str,
    stage: str,
    attempt: int,
    progress: int,
    message: str,
) -> None:
    from jobs.models import Job

    level = logging.WARNING if status in (Job.Status.FAILED, Job.Status.RETRYING) else logging.INFO
    transitions.log(
        level,
        "job %s %s/%s %d%%: %s",
        job_id,
        status,
        stage,
        progress,
        message,
        extra={
            "event": "job.transition",
            "job_id": job_id,
            "status": status,
            "stage": stage,
            "attempt": attempt,
            "progress": progress,
        },
    )


def _stage_ended(
    stage: str, seconds: float, status: str, run_seconds: float | None, **_: Any
) -> None:
    metrics.observe_stage_end(stage, seconds, status, run_seconds)


def _webhook_attempt_saved(
    instance: Any, created: bool = False, raw: bool = False, **_: Any
) -> None:
    if created and not raw:
        transaction.on_commit(
            partial(metrics.observe_webhook_attempt, instance.status_code, instance.error)
        )
