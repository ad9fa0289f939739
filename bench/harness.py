"""What every scenario shares: a dedicated database and Redis databases, the
fake providers, the platform's web and worker (from the Procfile) and the
baseline's worker.

The database is PostgreSQL database `meeting_intel_bench` (or BENCH_DATABASE)
on the server of DATABASE_URL (dropped and created at each run), or a fresh SQLite file under
var/bench when DATABASE_URL is unset. Redis is REDIS_URL's server, databases
14 (platform) and 15 (baseline broker), flushed at start and end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import redis

from bench import querycount
from bench.config import Sizes
from bench.processes import Service, ServiceGroup, start_platform_workers, start_web, start_worker
from tests.fakes import FakeAssemblyAI, FakeOpenAI
from tests.fakes.script import CANNED, DEFAULT_MEETING
from tests.support.platform import ROOT, base_env, free_port

VAR = ROOT / "var" / "bench"
HOOKS = Path(__file__).resolve().parent / "hooks"
# BENCH_DATABASE names another database, so two runs on one server do not collide.
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "meeting_intel_bench")
if not BENCH_DATABASE.replace("_", "").isalnum():
    raise SystemExit(f"bench: BENCH_DATABASE must be a plain identifier, got {BENCH_DATABASE!r}")
PLATFORM_REDIS_DB, BASELINE_REDIS_DB = 14, 15
SECRET_KEY = "bench-secret-key-not-for-production"
POLL_SECONDS, POLL_MAX_SECONDS = 5, 10


def redis_db(url: str, db: int) -> str:
    """`url` pointed at database number `db`."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SystemExit(f"bench: REDIS_URL must be a redis:// URL, got {url!r}")
    return parts._replace(path=f"/{db}").geturl()


def prepare_database() -> str:
    """A DATABASE_URL for an empty bench database (before Django is set up)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        path = VAR / "bench.sqlite3"
        for leftover in VAR.glob("bench.sqlite3*"):
            leftover.unlink()
        return f"sqlite:///{path}"
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(
            f"bench: DATABASE_URL must be PostgreSQL (or unset for SQLite), got {parts.scheme}"
        )
    import psycopg

    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return parts._replace(path=f"/{BENCH_DATABASE}").geturl()


class Harness:
    """Started by start(), stopped by close(); scenarios use its fakes, services and helpers."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.aai = FakeAssemblyAI(send_callbacks=True)
        self.openai = FakeOpenAI()
        self.openai.responses.update(CANNED)
        self.port = free_port()
        self.web_url = f"http://127.0.0.1:{self.port}"
        self.query_dirs = {name: VAR / "queries" / name for name in ("web", "worker", "baseline")}
        self.services: dict[str, Service | ServiceGroup] = {}
        self.env: dict[str, str] = {}
        self.database_url = self.baseline_broker = ""
        self.api_key = ""
        self.client_id = 0

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        if "REDIS_URL" not in os.environ:
            raise SystemExit(
                "bench: set REDIS_URL, or run through `make bench` (it starts a Redis)"
            )
        VAR.mkdir(parents=True, exist_ok=True)
        for directory in (VAR / "media", VAR / "queries"):
            shutil.rmtree(directory, ignore_errors=True)
        for directory in self.query_dirs.values():
            directory.mkdir(parents=True)
        self.aai.start()
        self.openai.start()
        self.database_url = prepare_database()
        platform_redis = redis_db(os.environ["REDIS_URL"], PLATFORM_REDIS_DB)
        self.baseline_broker = redis_db(os.environ["REDIS_URL"], BASELINE_REDIS_DB)
        self.env = base_env(self.database_url, platform_redis, **self._settings())
        os.environ.update({k: v for k, v in self.env.items() if k not in ("PYTHONPATH", "PATH")})
        # This process queues baseline tasks only (platform jobs arrive through its API).
        os.environ["CELERY_BROKER_URL"] = self.baseline_broker
        # This process's output is the table; the services log at INFO.
        os.environ["LOG_LEVEL"] = "WARNING"

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        self._flush_redis()
        from jobs.models import ApiClient

        client = ApiClient(name="bench")
        self.api_key = client.issue_key()
        client.save()
        self.client_id = client.pk
        self.services["web"] = start_web(self._env("web"), self.port)
        self.services["worker"] = start_platform_workers(self._env("worker"))
        self.services["baseline"] = start_worker(
            "baseline",
            "celery -A bench.baseline worker -Q celery --concurrency 2 --pool prefork -E --loglevel=INFO",
            {**self._env("baseline"), "CELERY_BROKER_URL": self.baseline_broker},
        )

    def close(self) -> None:
        for service in self.services.values():
            service.stop()
        self.aai.stop()
        self.openai.stop()
        if self.env:
            self._flush_redis()
        shutil.rmtree(VAR / "media", ignore_errors=True)

    def _settings(self) -> dict[str, str]:
        return {
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback, as behind a TLS proxy
            "SECRET_KEY": SECRET_KEY,
            "METRICS_BEARER_TOKEN": "bench-metrics-token",
            "MEDIA_ROOT": str(VAR / "media"),
            "PUBLIC_BASE_URL": self.web_url,
            "TRANSCRIPTION_PROVIDER": "assemblyai",
            "ANALYSIS_PROVIDER": "openai",
            "ASSEMBLYAI_API_KEY": self.aai.api_key,
            "ASSEMBLYAI_BASE_URL": self.aai.url,
            "OPENAI_API_KEY": self.openai.api_key,
            "OPENAI_BASE_URL": f"{self.openai.url}/v1",
            "TRANSCRIPT_CALLBACKS": "true",
            "TRANSCRIPT_POLL_SECONDS": str(POLL_SECONDS),
            "TRANSCRIPT_POLL_MAX_SECONDS": str(POLL_MAX_SECONDS),
            "WORKER_CONCURRENCY": "2",
            "UPLOAD_MAX_BYTES": str(self.sizes.s5_bytes + 10_000_000),
            "API_THROTTLE_RATE": "1000000/s",
        }

    def _env(self, name: str) -> dict[str, str]:
        return {
            **self.env,
            "PYTHONPATH": f"{HOOKS}:{ROOT}",
            "BENCH_QUERY_DIR": str(self.query_dirs[name]),
        }

    def _flush_redis(self) -> None:
        for url in (self.env["REDIS_URL"], self.baseline_broker):
            redis.Redis.from_url(url).flushdb()

    # -- helpers for scenarios -------------------------------------------------------

    @property
    def web(self) -> Service:
        return self.services["web"]

    @property
    def worker(self) -> ServiceGroup:
        return self.services["worker"]

    @property
    def baseline(self) -> Service:
        return self.services["baseline"]

    def queries(self, name: str) -> int:
        """SQL statements run so far by the service `name` (web, worker or baseline)."""
        return querycount.total(self.query_dirs[name])

    def set_providers(
        self,
        transcription_seconds: float,
        llm_seconds: float,
        utterances: list[tuple[str, str]] | None = None,
    ) -> None:
        """Simulated provider latencies (and the script both fakes "hear") for the next jobs."""
        self.aai.processing_seconds = transcription_seconds
        self.aai.utterances = list(utterances or DEFAULT_MEETING)
        self.openai.clear_faults()
        if llm_seconds:
            self.openai.delay_responses(llm_seconds, route="chat")
