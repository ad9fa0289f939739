"""Shared fixtures: the network guard, fake providers, a webhook receiver, API
clients, and real platform processes (web and worker from the Procfile)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from django.conf import settings

from jobs import providers
from jobs.models import ApiClient, Job
from tests.fakes import FakeAssemblyAI, FakeOpenAI
from tests.fakes.script import CANNED, DEFAULT_MEETING
from tests.support import netguard
from tests.support.broker import (  # noqa: F401 (fixtures for every test)
    _sink_broker,
    private_broker,
    unconsumed_broker,
)
from tests.support.platform import (
    Process,
    Workers,
    base_env,
    database_url,
    free_port,
    start_web,
    start_worker,
)
from tests.support.receiver import WebhookReceiver

netguard.install()

# This session's processes (pytest and those it starts) share a fresh
# Prometheus directory (meeting_intel/ops/metrics.py), so no run sees another's
# metric files and none pile up.
METRICS_DIR = tempfile.mkdtemp(prefix="meeting-intel-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
atexit.register(shutil.rmtree, METRICS_DIR, True)


@pytest.fixture(scope="session")
def fake_aai() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.responses.update(CANNED)
        yield fake


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test scripts on a session-wide fake ends with the test."""
    yield
    for name in ("fake_aai", "fake_openai", "receiver"):
        if name in request.fixturenames:
            fake = request.getfixturevalue(name)
            fake.clear_faults()
            if isinstance(fake, WebhookReceiver):
                fake.reset()
            elif isinstance(fake, FakeOpenAI):
                fake.responses.clear()
                fake.responses.update(CANNED)
                fake.reject_strict, fake.text_content = False, "OK"
            elif isinstance(fake, FakeAssemblyAI):
                fake.utterances, fake.processing_seconds = list(DEFAULT_MEETING), 0.0
                fake.ms_per_word = 300
                fake.detected_language = "en"


@pytest.fixture(autouse=True)
def _fresh_providers() -> Iterator[None]:
    """Providers are reused per process and remember their server (a server that
    refused strict schemas stays asked without them): each test starts afresh."""
    yield
    providers.forget_built()


@pytest.fixture
def provider_settings(settings: Any, fake_aai: FakeAssemblyAI, fake_openai: FakeOpenAI) -> Any:
    """Point this process's settings at the fakes (for in-process pipeline tests)."""
    settings.TRANSCRIPTION_PROVIDER = "assemblyai"
    settings.ANALYSIS_PROVIDER = "openai"
    settings.ASSEMBLYAI_API_KEY = fake_aai.api_key
    settings.ASSEMBLYAI_BASE_URL = fake_aai.url
    settings.OPENAI_API_KEY = fake_openai.api_key
    settings.OPENAI_BASE_URL = f"{fake_openai.url}/v1"
    settings.JOB_RETRY_BASE_SECONDS = 0.05
    settings.TRANSCRIPT_POLL_SECONDS = 0.05
    settings.TRANSCRIPT_CALLBACKS = False
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return settings


@pytest.fixture
def api_key(db: None) -> str:
    client = ApiClient(name=f"cms-{time.monotonic_ns()}")
    key = client.issue_key()
    client.save()
    return key


def provider_env(fake_aai: FakeAssemblyAI, fake_openai: FakeOpenAI) -> dict[str, str]:
    return {
        "TRANSCRIPTION_PROVIDER": "assemblyai",
        "ANALYSIS_PROVIDER": "openai",
        "ASSEMBLYAI_API_KEY": fake_aai.api_key,
        "ASSEMBLYAI_BASE_URL": fake_aai.url,
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "JOB_MAX_RETRIES": "2",
        "JOB_RETRY_BASE_SECONDS": "0.3",
        "TRANSCRIPT_POLL_SECONDS": "0.2",
        "TRANSCRIPT_POLL_MAX_SECONDS": "1",
        "WEBHOOK_RETRY_SCHEDULE": "0,0.5,1",
    }


class Platform:
    """A running web process and worker, sharing the test database and Redis."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env["PUBLIC_BASE_URL"] = self.url
        self.web: Process = start_web(self.env, self.port)
        self.worker: Workers = start_worker(self.env)

    def restart_worker(self) -> Workers:
        self.worker = start_worker(self.env)
        return self.worker

    def stop(self) -> None:
        for process in (self.worker, self.web):
            process.stop()

    def api(self, key: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        return session


@pytest.fixture(scope="session")
def platform(
    django_db_setup: None,
    django_db_blocker: Any,
    fake_aai: FakeAssemblyAI,
    fake_openai: FakeOpenAI,
) -> Iterator[Platform]:
    with django_db_blocker.unblock():
        from django.db import connection

        db_url = database_url(connection.settings_dict)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    running = Platform(base_env(db_url, settings.REDIS_URL, **provider_env(fake_aai, fake_openai)))
    yield running
    running.stop()


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_for_job(
    job_id: object, statuses: tuple[str, ...] = Job.TERMINAL, timeout: float = 60
) -> Job:
    def done() -> Job | None:
        job = Job.objects.get(id=job_id)
        return job if job.status in statuses else None

    return wait_until(done, timeout)


SAMPLE_AUDIO = os.path.join(os.path.dirname(os.path.dirname(__file__)), "samples", "standup.wav")
