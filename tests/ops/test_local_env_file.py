"""The local settings file: `make install` writes .env.local (DEBUG=true and a
generated SECRET_KEY, nothing else, never overwritten); settings read it when
present and the environment wins; the tests, the image and compose never
read it, and production still refuses to start without SECRET_KEY."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.platform import ROOT

SHOW = "from django.conf import settings as s; print(s.DEBUG, s.SECRET_KEY, s.LOCAL_ENV_FILE)"


def _settings(env_file: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py shell` printing DEBUG and SECRET_KEY, with nothing else exported."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "SECRET_KEY", "LOCAL_ENV_FILE", "DJANGO_SETTINGS_MODULE")
    }
    if env_file is not None:
        environment["LOCAL_ENV_FILE"] = env_file
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_settings_read_the_file_when_nothing_is_exported(tmp_path):
    env_file = _write(tmp_path / "local.env", "DEBUG=true\nSECRET_KEY=from-the-file\n")
    result = _settings(env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["True", "from-the-file"]


def test_the_environment_wins_over_the_file(tmp_path):
    env_file = _write(tmp_path / "local.env", "DEBUG=true\nSECRET_KEY=from-the-file\n")
    result = _settings(env_file, DEBUG="false", SECRET_KEY="from-the-environment")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["False", "from-the-environment"]


def test_an_empty_exported_value_still_wins(tmp_path):
    env_file = _write(tmp_path / "local.env", "DEBUG=true\nSECRET_KEY=from-the-file\n")
    result = _settings(env_file, DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_without_the_file_production_still_refuses_to_start(tmp_path):
    result = _settings(str(tmp_path / "absent.env"))
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
    assert _settings("").returncode != 0  # reading switched off: same refusal


def test_an_empty_local_env_file_setting_reads_no_file(tmp_path, monkeypatch):
    _write(tmp_path / ".env.local", "DEBUG=true\nSECRET_KEY=from-the-file\n")
    monkeypatch.chdir(tmp_path)
    result = _settings("", SECRET_KEY="exported")
    assert result.stdout.split()[:2] == ["False", "exported"], result.stderr


def test_the_default_file_is_the_checkouts_env_local():
    result = _settings(None, SECRET_KEY="exported", DEBUG="false")
    assert result.stdout.split()[2] == str(ROOT / ".env.local"), result.stderr


def test_this_test_run_reads_no_developer_file(settings):
    assert settings.LOCAL_ENV_FILE == "" and os.environ["LOCAL_ENV_FILE"] == ""
    assert settings.DEBUG is False  # the shipped default, whatever .env.local says


def _make_env_file(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", f"ENV_FILE={path}", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_make_writes_debug_and_a_generated_key_and_nothing_else(tmp_path):
    env_file = tmp_path / ".env.local"
    made = _make_env_file(env_file)
    assert made.returncode == 0, made.stderr
    assert (
        made.stdout.strip()
        == f"make: wrote {env_file} (DEBUG=true and a generated SECRET_KEY) for local use"
    )
    settings_lines = [
        line for line in env_file.read_text().splitlines() if not line.startswith("#")
    ]
    assert settings_lines[0] == "DEBUG=true" and len(settings_lines) == 2
    name, _, key = settings_lines[1].partition("=")
    assert name == "SECRET_KEY" and len(key) >= 50

    other = tmp_path / "other" / ".env.local"
    other.parent.mkdir()
    _make_env_file(other)
    assert other.read_text() != env_file.read_text()  # a fresh key each time


def test_make_never_overwrites_an_existing_file(tmp_path):
    env_file = _write(tmp_path / ".env.local", "DEBUG=false\nSECRET_KEY=mine\n")
    made = _make_env_file(Path(env_file))
    assert made.returncode == 0 and "wrote" not in made.stdout
    assert Path(env_file).read_text() == "DEBUG=false\nSECRET_KEY=mine\n"


def test_git_docker_and_compose_leave_the_file_out():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env.local"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, ".env.local is not git-ignored"
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env.*" in dockerignore
    assert 'LOCAL_ENV_FILE=""' in (ROOT / "Dockerfile").read_text()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert "env_file" not in service, name
        assert service.get("environment", {}).get("LOCAL_ENV_FILE") in (None, ""), name
