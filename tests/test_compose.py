"""Structure of the deployment files: docker-compose.yml and the Procfile.

No Docker engine runs on CI machines, so these read the files instead of
starting containers; `docker compose config` runs only where it exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
REQUIRED = {"postgres", "redis", "web", "worker", "beat", "flower"}
APP = ("web", "worker", "beat")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_required_services_exist(services: dict) -> None:
    assert REQUIRED <= set(services)


def test_long_running_services_have_healthchecks(services: dict) -> None:
    for name in REQUIRED:
        check = services[name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
    assert "/healthz" in str(services["web"]["healthcheck"]["test"])
    worker_check = str(services["worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker_check and "celery@$$HOSTNAME" in worker_check


def test_depends_on_uses_conditions(services: dict) -> None:
    for name, service in services.items():
        depends = service.get("depends_on")
        if depends is None:
            continue
        assert isinstance(depends, dict), f"{name}: depends_on must be a mapping with conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec.get("condition") in CONDITIONS, f"{name} -> {target} has no condition"
    for name in APP:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_migrations_run_once_in_a_one_shot_service(services: dict) -> None:
    migrate = services["migrate"]
    assert "migrate" in _command(migrate)
    assert migrate.get("restart") in ("no", None)
    for name in ("web", "worker", "beat", "flower"):
        assert "migrate" not in _command(services[name])


def test_volumes(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})

    def mounts(name: str) -> dict[str, str]:
        pairs = (v.split(":")[:2] for v in services[name].get("volumes", []))
        return {target: source for source, target in pairs}

    assert mounts("postgres")["/var/lib/postgresql/data"] in declared
    assert mounts("redis")["/data"] in declared
    for name in ("web", "worker"):
        assert mounts(name)["/data/media"] in declared
        assert services[name]["environment"]["MEDIA_ROOT"] == "/data/media"


def test_redis_is_a_durable_broker(services: dict) -> None:
    command = _command(services["redis"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_secrets_are_required_and_workers_shut_down_gracefully(services: dict) -> None:
    for name in APP:
        env = services[name]["environment"]
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
        assert "DATABASE_URL" in env and "REDIS_URL" in env
    assert "--basic-auth=${FLOWER_BASIC_AUTH:?" in _command(services["flower"])
    assert services["worker"]["stop_grace_period"] == "5m"

    # Validate with the real tool only where it exists (not on CI machines).
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if has_compose and has_compose.returncode == 0:
        env = {**os.environ, "SECRET_KEY": "x", "FLOWER_BASIC_AUTH": "a:b"}
        result = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 0, result.stderr


def test_procfile_entries() -> None:
    entries = _procfile()
    assert list(entries) == ["web", "worker", "beat"]
    web = entries["web"]
    assert "meeting_intel.asgi:application" in web
    for flag in ("--port ${PORT:-8000}", "--host 0.0.0.0", "--proxy-headers", "--lifespan off"):
        assert flag in web
    worker = entries["worker"]
    assert worker.startswith("celery -A meeting_intel worker")
    assert "${WORKER_CONCURRENCY:-2}" in worker and " -E" in worker
    assert entries["beat"].startswith("celery -A meeting_intel beat")


def test_workers_consume_every_queue(services: dict) -> None:
    queues = ",".join(settings.WORKER_QUEUES)
    assert f"-Q {queues}" in _procfile()["worker"]
    assert f"-Q {queues}" in _command(services["worker"])
