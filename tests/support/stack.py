"""A whole platform of its own for tests that break things: web, worker and beat
from the Procfile on a Redis server the test owns and, for PostgreSQL, a database
link it can cut. Timeouts are scaled down: an 8 s visibility timeout, tasks
limited to 3 s."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from django.conf import settings
from django.db import connection

from tests.conftest import SAMPLE_AUDIO, provider_env
from tests.support.platform import (
    WORKER_ENTRIES,
    Process,
    Workers,
    base_env,
    database_url,
    free_port,
    start_web,
    start_worker,
    wait_for_output,
)
from tests.support.services import RedisServer, TcpProxy

POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


class Stack:
    """web + worker + beat on an own Redis and (for PostgreSQL) a cuttable database link."""

    # The settings whose shipped values the recovery tests prove (see `shipped`).
    RECOVERY_SETTINGS = (
        "CELERY_VISIBILITY_TIMEOUT",
        "TASK_SOFT_TIME_LIMIT",
        "JOB_STALE_SECONDS",
        "JOB_LEASE_SECONDS",
        "SWEEP_INTERVAL_SECONDS",
        "TRANSCRIPT_POLL_SECONDS",
        "TRANSCRIPT_POLL_MAX_SECONDS",
    )

    def __init__(
        self, fake_aai: Any, fake_openai: Any, *, shipped: bool = False, **extra_env: str
    ) -> None:
        """`shipped=True` keeps every recovery setting at the value the product ships
        with (none of RECOVERY_SETTINGS is set); otherwise they are scaled down."""
        self.redis = RedisServer()
        self.proxy: TcpProxy | None = None
        db = dict(connection.settings_dict)
        if POSTGRES:
            self.proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
            db.update(HOST="127.0.0.1", PORT=self.proxy.port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scaled = {"CELERY_VISIBILITY_TIMEOUT": "8", "TASK_SOFT_TIME_LIMIT": "3"}
        self.env = base_env(
            database_url(db),
            self.redis.url,
            **{
                **provider_env(fake_aai, fake_openai),
                "PUBLIC_BASE_URL": self.url,
                **({} if shipped else scaled),
                **extra_env,
            },
        )
        if shipped:
            for name in self.RECOVERY_SETTINGS:
                self.env.pop(name, None)
        # Scaled with the visibility timeout, for the workers only: a step
        # waiting the shipped 10 s for a pooled connection during an outage
        # would outlive the 8 s visibility timeout and be delivered again
        # (shipped: 10 s against 900 s). Web keeps the shipped wait, which
        # rides out the pool's reconnection after an outage.
        self.worker_env = self.env if shipped else {**self.env, "DATABASE_POOL_TIMEOUT": "2"}
        self.worker: Workers | None = None
        self.extra_workers: list[Workers] = []
        self.beat: Process | None = None
        try:
            self.web = start_web(self.env, self.port)
        except BaseException:
            self._close_services()
            raise

    def start_workers(self) -> None:
        """Start worker and beat; on failure stop what started, so nothing leaks."""
        try:
            self.worker = start_worker(self.worker_env)
            self.beat = Process("beat", self.env)
            # Beat must have loaded its schedule before a test breaks anything.
            wait_for_output(self.beat, "Sending due task")
        except BaseException:
            self.stop_workers()
            raise

    @contextmanager
    def supervised(self) -> Iterator[list[str]]:
        """Restart worker or beat when they exit, as compose's `restart: unless-stopped`
        or systemd's `Restart=always` would; yields the names of those restarted."""
        restarted: list[str] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                if self.worker and not self.worker.alive():
                    restarted.append("worker")
                    self.worker.restart_exited()
                if self.beat and not self.beat.alive():
                    restarted.append("beat")
                    self.beat = Process("beat", self.env)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield restarted
        finally:
            stop.set()
            watcher.join()

    def stop_workers(self) -> None:
        """Stop worker and beat, so nothing writes while the test database is flushed."""
        for process in (self.beat, self.worker, *self.extra_workers):
            if process:
                process.stop()
        self.extra_workers = []

    def submit(
        self, api_key: str, receiver: Any, count: int, audio: str = SAMPLE_AUDIO
    ) -> list[str]:
        """POST `count` jobs to this stack's API with webhooks to `receiver`; their ids."""
        ids = []
        for i in range(count):
            with open(audio, "rb") as fh:
                response = requests.post(
                    f"{self.url}/api/v1/jobs/",
                    headers={"Authorization": f"Bearer {api_key}"},
                    files={"audio": (f"m{i}.wav", fh, "audio/wav")},
                    data={"webhook_url": receiver.hook_url(), "webhook_secret": "s3cret"}
                    if receiver
                    else {},
                    timeout=30,
                )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    def restart_worker(self) -> None:
        self.worker = start_worker(self.worker_env)

    def start_more_workers(
        self, count: int, entries: tuple[str, ...] = WORKER_ENTRIES
    ) -> list[Workers]:
        """`count` further workers (by default each a prefork and a threads worker), named apart."""
        more = [start_worker(self.worker_env, str(i + 2), entries) for i in range(count)]
        self.extra_workers.extend(more)
        return more

    def stop(self) -> None:
        self.stop_workers()
        self.web.stop()
        self._close_services()

    def _close_services(self) -> None:
        if self.proxy:
            self.proxy.close()
        self.redis.kill()
