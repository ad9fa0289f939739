"""Structure of the deployment files: docker-compose.yml and the Procfile.

No Docker engine runs on CI machines, so these read the files instead of
starting containers; `docker compose config` runs only where it exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from django.conf import settings

from tests.support.platform import ROOT

COMPOSE = ROOT / "docker-compose.yml"
REQUIRED = {"postgres", "redis", "web", "worker", "worker-analysis", "beat", "flower"}
QUEUE_WORKERS = ("worker-transcription", "worker-analysis", "worker-webhooks", "worker-maintenance")
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
    assert "/readyz" in str(services["web"]["healthcheck"]["test"])
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
    for name in (*APP, *QUEUE_WORKERS):
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
    assert list(entries) == ["web", "worker", "worker-analysis", "beat"]
    web = entries["web"]
    assert "meeting_intel.asgi:application" in web
    for flag in ("--port ${PORT:-8000}", "--host 0.0.0.0", "--proxy-headers", "--lifespan off"):
        assert flag in web
    worker = entries["worker"]
    assert worker.startswith("celery -A meeting_intel worker")
    assert "${WORKER_CONCURRENCY:-2}" in worker and " -E" in worker
    assert entries["beat"].startswith("celery -A meeting_intel beat")


def test_analysis_runs_on_threads_and_everything_else_on_prefork(services: dict) -> None:
    assert set(settings.PREFORK_QUEUES) | set(settings.THREADS_QUEUES) == set(
        settings.WORKER_QUEUES
    )
    procfile = _procfile()
    for worker, queues, pool in (
        ("worker", settings.PREFORK_QUEUES, "prefork"),
        ("worker-analysis", settings.THREADS_QUEUES, "threads"),
    ):
        for command in (procfile[worker], _command(services[worker])):
            assert f"-Q {','.join(queues)}" in command, command
            assert f"--pool {pool}" in command, command
        assert "profiles" not in services[worker], f"{worker} starts by default"


# --- Structure beyond the basics: schema, queues, metrics, the image ----------------

_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_COMMAND = {"oneOf": [{"type": "string"}, _STRING_LIST]}
# The part of the Compose specification this file uses; unknown keys are
# refused, so a typo ("healtcheck", "depends-on") fails here, not at deploy time.
COMPOSE_SCHEMA = {
    "type": "object",
    "required": ["services", "volumes"],
    "patternProperties": {"^x-": {}},
    "properties": {
        "services": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "build": {"type": "string"},
                    "image": {"type": "string"},
                    "init": {"type": "boolean"},
                    "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                    "command": _COMMAND,
                    "profiles": _STRING_LIST,
                    "ports": _STRING_LIST,
                    "volumes": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[^:]+:/[^:]*(:ro)?$"},
                    },
                    "stop_grace_period": {"type": "string", "pattern": "^[0-9]+(s|m|h)$"},
                    "environment": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "null"]},
                    },
                    "depends_on": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["condition"],
                            "additionalProperties": False,
                            "properties": {"condition": {"enum": sorted(CONDITIONS)}},
                        },
                    },
                    "healthcheck": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "test": _COMMAND,
                            "disable": {"type": "boolean"},
                            **{
                                key: {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"}
                                for key in ("interval", "timeout", "start_period")
                            },
                            "retries": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        },
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
    },
    "additionalProperties": False,
}


def test_the_compose_file_matches_the_schema(compose: dict) -> None:
    import jsonschema

    jsonschema.validate(compose, COMPOSE_SCHEMA)
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"{name} mounts undeclared volume {source}"


def test_every_worker_and_web_has_a_healthcheck(services: dict) -> None:
    for name in (*APP, *QUEUE_WORKERS, "flower"):
        check = services[name]["healthcheck"]
        assert check.get("test") and not check.get("disable"), name
    assert services["migrate"]["healthcheck"] == {
        "disable": True
    }  # one-shot: completion is its check


def test_queue_workers_cover_every_queue_and_shut_down_gracefully(services: dict) -> None:
    consumed = set()
    for name in QUEUE_WORKERS:
        service = services[name]
        # worker-analysis (threads pool) always runs; the prefork ones are optional.
        assert service.get("profiles") == (None if name == "worker-analysis" else ["queues"])
        command = service["command"]
        consumed |= set(command[command.index("-Q") + 1].split(","))
        assert service["stop_grace_period"] == "5m" and service["init"] is True
        assert service["environment"]["PROCESS_ROLE"] == "worker"
    assert consumed == set(settings.WORKER_QUEUES)


def test_processes_share_one_metrics_volume_and_say_their_role(services: dict) -> None:
    for name in (*APP, *QUEUE_WORKERS):
        assert "metrics:/data/metrics" in services[name]["volumes"], name
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/data/metrics"
    assert {
        services[n]["environment"]["PROCESS_ROLE"] for n in ("web", "worker", "beat", "flower")
    } == {
        "web",
        "worker",
        "beat",
        "flower",
    }


def test_production_security_settings_are_on_by_default(services: dict) -> None:
    env = services["web"]["environment"]
    assert env["DEBUG"] == "false"
    assert env["SECURE_SSL_REDIRECT"] == "${SECURE_SSL_REDIRECT:-true}"
    assert env["SECURE_COOKIES"] == "${SECURE_COOKIES:-true}"
    assert env["LOG_FORMAT"] == "${LOG_FORMAT:-json}"
    assert "CSRF_TRUSTED_ORIGINS" in env


def _dockerfile() -> list[str]:
    return [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [line.split(None, 1)[1] for line in _dockerfile() if line.startswith("USER ")]
    assert users, "no USER instruction"
    final = users[-1].split(":")[0]
    assert final not in ("root", "0")
    assert int(final) >= 1000
    text = (ROOT / "Dockerfile").read_text()
    assert f"--uid {final}" in text
    assert "PROMETHEUS_MULTIPROC_DIR=/data/metrics" in text
    assert "/data/metrics" in text.split("chown -R")[1].splitlines()[0]


def test_the_build_context_leaves_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".git", ".venv", "var"} <= ignored


def test_the_queues_profile_passes_docker_compose_config_where_docker_exists() -> None:
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not (has_compose and has_compose.returncode == 0):
        pytest.skip("no docker compose here; the schema test above covers the file")
    env = {**os.environ, "SECRET_KEY": "x", "FLOWER_BASIC_AUTH": "a:b"}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--profile", "queues", "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
