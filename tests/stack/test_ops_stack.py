"""Operating a running platform: JSON logs that follow a job across web and
worker, metrics that move across processes, a graceful worker shutdown that
loses nothing, and readiness that notices Redis going away.

One stack of its own (web and worker from the Procfile on a Redis it owns),
logging JSON and writing metrics to a directory of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Job, JobEvent
from jobs.providers.analysis_steps import STEPS as ANALYSIS_STEPS
from meetings.models import Meeting
from tests.conftest import SAMPLE_AUDIO, provider_env, wait_until
from tests.support.platform import (
    Process,
    base_env,
    database_url,
    free_port,
    start_web,
    start_worker,
)
from tests.support.services import RedisServer
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEBHOOK_SECRET = "whsec_" + "b3BzLXN0YWNrLXNlY3JldC1mb3ItdGVzdHM="


class OpsStack:
    """web on a Redis of its own, logging JSON; workers started per test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.redis = RedisServer()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "PUBLIC_BASE_URL": self.url,
            # Workers also serve the merged metrics, as on a machine without web.
            "WORKER_METRICS_PORT": str(free_port()),
        }
        self.web = start_web(self.env, self.port)
        self.worker: Process | None = None

    def start_worker(self) -> Process:
        self.worker = start_worker(self.env)
        return self.worker

    def submit(self, api_key: str, receiver, count: int) -> list[str]:
        ids = []
        for i in range(count):
            with open(SAMPLE_AUDIO, "rb") as fh:
                response = requests.post(
                    f"{self.url}/api/v1/jobs/",
                    headers={"Authorization": f"Bearer {api_key}"},
                    files={"audio": (f"m{i}.wav", fh, "audio/wav")},
                    data={"webhook_url": receiver.hook_url(), "webhook_secret": WEBHOOK_SECRET},
                    timeout=30,
                )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    def stop(self) -> None:
        for process in (self.worker, self.web):
            if process and process.alive():
                process.stop()
        self.redis.kill()


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, fake_aai, fake_openai) -> Iterator[OpsStack]:
    metrics_dir = tempfile.mkdtemp(prefix="ops-stack-metrics-")
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    env = base_env(
        db_url,
        settings.REDIS_URL,
        **provider_env(fake_aai, fake_openai),
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
    )
    running = OpsStack(env)
    yield running
    running.stop()
    shutil.rmtree(metrics_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def worker(stack: OpsStack) -> Iterator[Process]:
    """A worker per test, stopped before the test database is flushed."""
    yield stack.start_worker()
    if stack.worker and stack.worker.alive():
        stack.worker.stop()


def json_lines(output: str) -> list[dict]:
    lines = []
    for raw in output.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def scrape(stack: OpsStack) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{stack.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def wait_done(ids: list[str], timeout: float = 120) -> list[Job]:
    return wait_until(
        lambda: (
            (jobs := list(Job.objects.filter(id__in=ids)))
            and len(jobs) == len(ids)
            and all(j.is_terminal for j in jobs)
            and jobs
        ),
        timeout=timeout,
        interval=0.25,
    )


def test_the_json_log_lines_of_a_whole_job_carry_its_job_id(stack, api_key, receiver):
    [job_id] = stack.submit(api_key, receiver, 1)
    [job] = wait_done([job_id])
    assert job.status == Job.Status.COMPLETED
    receiver.wait_for(1, timeout=60)
    api = requests.get(
        f"{stack.url}/api/v1/jobs/{job_id}/",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    assert api.status_code == 200
    # The worker logs the webhook's attempt after it committed: wait for that line.
    wait_until(
        lambda: any(
            line.get("task") == "webhooks.deliver" and line.get("job_id") == job_id
            for line in json_lines(stack.worker.output())
        ),
        30,
    )

    web, worker = stack.web.output(), stack.worker.output()
    for output, role in ((web, "web"), (worker, "worker")):
        mentioning = [raw for raw in output.splitlines() if job_id in raw]
        assert mentioning, f"no {role} line mentions the job"
        for raw in mentioning:
            line = json.loads(raw)  # every line about the job is JSON...
            assert line["job_id"] == job_id, raw  # ...and carries its id
            assert line["role"] == role
    worker_lines = [line for line in json_lines(worker) if line.get("job_id") == job_id]
    tasks = {line["task"] for line in worker_lines if "task" in line}
    assert tasks >= {"jobs.transcribe", "webhooks.deliver"}
    # Index, analyze and finalize are due at once on the analysis queue, so they
    # run chained in one task, named for the first (jobs/pipeline/queue.py).
    assert tasks & {"jobs.index", "jobs.analyze", "jobs.finalize"}
    stages = {line.get("stage") for line in worker_lines}
    assert {"analyzing", "done"} <= stages
    assert all(line.get("task_id") for line in worker_lines)
    # Lines written while a task handles the job (not the main process's "received").
    in_tasks = [line for line in worker_lines if line["logger"] != "celery.worker.strategy"]
    assert in_tasks and all("stage" in line and "attempt" in line for line in in_tasks)
    transitions = [
        line
        for line in json_lines(web + worker)
        if line.get("event") == "job.transition" and line["job_id"] == job_id
    ]
    assert {line["role"] for line in transitions} == {"web", "worker"}
    assert transitions[-1]["status"] == "completed"

    everything = web + worker
    for secret in (
        api_key,
        WEBHOOK_SECRET,
        stack.env["SECRET_KEY"],
        stack.env["ASSEMBLYAI_API_KEY"],
        stack.env["OPENAI_API_KEY"],
    ):
        assert secret not in everything


def test_metrics_move_when_a_job_runs(stack, api_key, receiver):
    before = scrape(stack)
    [job_id] = stack.submit(api_key, receiver, 1)
    wait_done([job_id])
    receiver.wait_for(1, timeout=60)
    after = wait_until(
        lambda: (
            (s := scrape(stack))
            and s.get(("meeting_intel_webhook_attempts_total", (("outcome", "success"),)), 0)
            > before.get(("meeting_intel_webhook_attempts_total", (("outcome", "success"),)), 0)
            and s
        ),
        timeout=30,
    )

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("meeting_intel_jobs", status="completed") == 1
    assert moved("meeting_intel_job_duration_seconds_count", status="completed") == 1
    for stage in ("queued", "transcribing", "analyzing"):
        assert moved("meeting_intel_stage_duration_seconds_count", stage=stage) >= 1, stage
    # Observed in worker children, served by the web process.
    assert (
        moved(
            "meeting_intel_provider_call_duration_seconds_count",
            provider="assemblyai",
            operation="submit",
        )
        == 1
    )
    assert (
        moved(
            "meeting_intel_provider_call_duration_seconds_count",
            provider="openai",
            operation="summary",
        )
        >= 1
    )
    assert moved("meeting_intel_webhook_attempts_total", outcome="success") == 1
    for queue in ("celery", "transcription", "analysis", "webhooks", "maintenance"):
        assert ("meeting_intel_queue_depth", (("queue", queue),)) in after
    assert after[("meeting_intel_jobs_in_flight", ())] == 0

    # A worker machine without web serves the same merged counters itself.
    served = requests.get(
        f"http://127.0.0.1:{stack.env['WORKER_METRICS_PORT']}/metrics", timeout=10
    )
    worker_view = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(served.text)
        for s in family.samples
    }
    key = ("meeting_intel_webhook_attempts_total", (("outcome", "success"),))
    assert worker_view[key] == after[key]


def test_a_graceful_worker_shutdown_mid_job_loses_nothing(stack, api_key, receiver, fake_openai):
    chat = lambda: sum(r.path.startswith("/v1/chat") for r in fake_openai.requests)  # noqa: E731
    chats_before = chat()
    fake_openai.delay_responses(3, route="chat")
    ids = stack.submit(api_key, receiver, 2)
    wait_until(
        lambda: (
            Job.objects.filter(id__in=ids, stage=Job.Stage.ANALYZING).exists()
            and chat() > chats_before
        ),
        timeout=90,
    )

    old = stack.worker
    started = time.monotonic()
    for process in old.processes:  # the prefork worker and the analysis (threads) worker
        os.kill(process.pid, signal.SIGTERM)  # what Docker and systemd send the main process
    for process in old.processes:
        process.popen.wait(timeout=90)
        assert process.popen.returncode == 0, process.output()[-3000:]
        assert "Warm shutdown" in process.output()
    assert time.monotonic() - started >= 1  # it waited for the analysis in flight
    old.stop()  # already gone: closes its log
    fake_openai.clear_faults()
    stack.start_worker()

    jobs = wait_done(ids)
    assert [j.status for j in jobs] == [Job.Status.COMPLETED] * 2
    hooks = receiver.wait_for(2, timeout=60)
    assert sorted(json.loads(h.body)["data"]["job_id"] for h in hooks) == sorted(ids)
    for job_id in ids:
        assert Meeting.objects.filter(job_id=job_id).count() == 1
        assert WebhookDelivery.objects.filter(job_id=job_id).count() == 1
        assert JobEvent.objects.filter(job_id=job_id, status=Job.Status.COMPLETED).count() == 1
        assert not JobEvent.objects.filter(job_id=job_id, status=Job.Status.RETRYING).exists()
    # Every analysis call was made once: none was cut off and made again.
    assert chat() - chats_before == len(ANALYSIS_STEPS) * len(ids)


def probe(stack: OpsStack) -> int:
    """The container healthcheck's exit status, run with the web's own settings."""
    return subprocess.run(
        [sys.executable, "-m", "meeting_intel.ops.health", f"{stack.url}/readyz"],
        env=stack.env,
        capture_output=True,
        timeout=60,
    ).returncode


def test_readyz_answers_503_naming_redis_when_it_stops(stack):
    assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200
    assert probe(stack) == 0
    stack.redis.kill()
    try:
        response = requests.get(f"{stack.url}/readyz", timeout=30)
        assert response.status_code == 503
        assert set(response.json()["failing"]) == {"broker", "channel_layer"}
        assert response.json()["checks"]["database"] == "ok"
        assert probe(stack) == 1
    finally:
        stack.redis.start()
    wait_until(lambda: requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200, 30)
