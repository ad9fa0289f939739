"""Structured logs: JSON lines with the job context, and no secret ever written."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from jobs.signals import job_read
from meeting_intel.ops import logs as log_context
from meeting_intel.ops import wiring as observability
from meeting_intel.ops.logs import ContextFilter, JsonFormatter, TextFormatter


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"tests.ops.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_it_writes_one_json_object_per_line_with_the_job_context() -> None:
    logger, stream = _capture(JsonFormatter())
    logger.info("outside any job")
    with log_context.job_context(job_id="j-1", task_id="t-1", stage="analyzing", attempt=2):
        logger.info("inside %s", "the job", extra={"step": "summary"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("crashed")

    outside, inside, crashed = _lines(stream)
    assert outside["message"] == "outside any job" and "job_id" not in outside
    assert outside["role"] == log_context.ROLE and outside["level"] == "INFO"
    assert inside["message"] == "inside the job"
    assert (inside["job_id"], inside["task_id"], inside["stage"], inside["attempt"]) == (
        "j-1",
        "t-1",
        "analyzing",
        2,
    )
    assert inside["step"] == "summary"
    assert "ValueError: boom" in crashed["exception"]


@override_settings(
    SECRET_KEY="django-secret-key-value-123456", OPENAI_API_KEY="openai-key-abcdef123456"
)
def test_it_masks_secrets_in_messages_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_context, "_secret_values", None)  # re-read the overridden settings
    logger, stream = _capture(JsonFormatter())
    api_key = "mip_" + "A1b2C3d4E5f6G7h8I9j0"
    with log_context.job_context(job_id="j", secrets=("the-jobs-own-webhook-secret",)):
        logger.warning(
            "key %s header Bearer %s signing whsec_c2VjcmV0LWtleQ== openai sk-proj1234567890abcdef "
            "settings %s %s hook the-jobs-own-webhook-secret url redis://:hunter22@redis:6379/0",
            api_key,
            "tok.en-value_42",
            "django-secret-key-value-123456",
            "openai-key-abcdef123456",
        )
        try:
            raise RuntimeError(f"failed with {api_key}")
        except RuntimeError:
            logger.exception("crash")
    monkeypatch.setattr(log_context, "_secret_values", None)

    output = stream.getvalue()
    for secret in (
        api_key,
        "tok.en-value_42",
        "c2VjcmV0LWtleQ==",
        "sk-proj1234567890abcdef",
        "django-secret-key-value-123456",
        "openai-key-abcdef123456",
        "the-jobs-own-webhook-secret",
        "hunter22",
    ):
        assert secret not in output
    first = _lines(stream)[0]["message"]
    assert (
        "mip_[redacted]" in first and "Bearer [redacted]" in first and "whsec_[redacted]" in first
    )
    assert "redis://:[redacted]@redis:6379/0" in first


def test_the_text_format_appends_the_job_context() -> None:
    logger, stream = _capture(TextFormatter())
    with log_context.job_context(job_id="j-9", stage="transcribing"):
        logger.info("hello Bearer abcdefghijk")
    line = stream.getvalue().strip()
    assert line.endswith("hello Bearer [redacted] [job_id=j-9 stage=transcribing]")
    assert f"[{log_context.ROLE}]" in line


def test_uvicorn_access_lines_carry_the_job_of_their_path() -> None:
    logger, stream = _capture(JsonFormatter())
    job_id = "0b7c2f0e-3f7d-4c55-9a43-5d1a8f5e2c11"
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/api/v1/jobs/{job_id}/?x=1", "1.1", 200),
        None,
    )
    logger.handle(record)
    [line] = _lines(stream)
    assert line["job_id"] == job_id and job_id in line["message"]


@pytest.mark.django_db
def test_a_task_binds_its_job_stage_and_attempt_and_its_threads_log_with_it() -> None:
    job = Job.objects.create(
        stage=Job.Stage.ANALYZING, attempts=3, webhook_secret="hook-secret-xyz"
    )
    logger, stream = _capture(JsonFormatter())

    class Task:
        name = "jobs.analyze"

    # A step task's prerun reads nothing: the runner's read of the row binds the job.
    with CaptureQueriesContext(connection) as prerun:
        observability._task_started(task_id="task-1", task=Task(), args=[str(job.id)], kwargs={})
    assert len(prerun) == 0
    job_read.send(sender=Job, job=job)
    try:
        logger.info("main thread, secret hook-secret-xyz")
        thread = threading.Thread(target=logger.info, args=("analysis thread",))
        thread.start()
        thread.join()
    finally:
        observability._task_finished(task_id="task-1")
    logger.info("after the task")

    main, worker_thread, after = _lines(stream)
    for line in (main, worker_thread):
        assert line["job_id"] == str(job.id) and line["task_id"] == "task-1"
        assert (line["stage"], line["attempt"], line["task"]) == ("analyzing", 3, "jobs.analyze")
    assert "hook-secret-xyz" not in main["message"]
    assert "job_id" not in after and "task_id" not in after


def test_the_role_comes_from_process_role_or_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROCESS_ROLE", "beat")
    assert log_context._detect_role() == "beat"
    monkeypatch.delenv("PROCESS_ROLE")
    for argv, role in (
        (["/venv/bin/celery", "-A", "meeting_intel", "worker", "-Q", "celery"], "worker"),
        (["/venv/bin/celery", "-A", "meeting_intel", "beat"], "beat"),
        (["/venv/bin/uvicorn", "meeting_intel.asgi:application"], "web"),
    ):
        monkeypatch.setattr("sys.argv", argv)
        assert log_context._detect_role() == role
