"""process_meeting on a database nobody has migrated: the embedded SQLite default
is migrated on the spot; any other database stops with one line naming
`manage.py migrate`. A user's mistake never shows a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_AUDIO, provider_env
from tests.support.platform import ROOT, base_env


def _process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "process_meeting", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.fixture
def fresh_env(fake_aai, fake_openai, tmp_path: Path, settings) -> dict[str, str]:
    """Nothing exported about the database: settings fall back to VAR_DIR's SQLite."""
    env = base_env("", settings.REDIS_URL, **provider_env(fake_aai, fake_openai))
    del env["DATABASE_URL"]
    env.update(VAR_DIR=str(tmp_path / "var"), MEDIA_ROOT=str(tmp_path / "media"))
    return env


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's last line, after asserting it failed without a traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Stopped before any work: the error is all it printed."""
    line = _error_line(result)
    assert result.stderr.strip() == line, result.stderr
    return line


def test_it_migrates_the_embedded_default_database_and_prints_the_meeting(fresh_env, tmp_path):
    result = _process([SAMPLE_AUDIO, "--json"], fresh_env)
    assert result.returncode == 0, result.stderr
    assert "Applying" in result.stderr and "migrations" in result.stderr
    meeting = json.loads(result.stdout)
    assert meeting["segments"] and meeting["summary"]
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM jobs_job").fetchone() == (1,)

    again = _process([SAMPLE_AUDIO, "--json"], fresh_env)
    assert again.returncode == 0 and "Applying" not in again.stderr


def test_another_unmigrated_database_stops_with_one_line_naming_migrate(fresh_env, tmp_path):
    fresh_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    line = _one_line_error(_process([SAMPLE_AUDIO], fresh_env))
    assert "manage.py migrate" in line


def test_an_unreachable_database_is_one_line(fresh_env):
    fresh_env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:9/nothing"
    # The connection pool logs each refused attempt; the outcome is still one line.
    line = _error_line(_process([SAMPLE_AUDIO], fresh_env))
    assert line.startswith("CommandError: Cannot use the database")


def test_a_missing_file_is_one_line(fresh_env, tmp_path):
    line = _one_line_error(_process([str(tmp_path / "nope.wav")], fresh_env))
    assert "No such file" in line


def test_a_file_that_is_not_audio_is_one_line(fresh_env, tmp_path):
    notes = tmp_path / "notes.mp3"
    notes.write_text("minutes of the meeting, typed up\n" * 40)
    line = _one_line_error(_process([str(notes)], fresh_env))
    assert "not a recognised audio" in line


def test_a_provider_refusing_its_key_is_one_line(fresh_env, fake_aai):
    fake_aai.fail(401, times=None, route="upload")
    line = _error_line(_process([SAMPLE_AUDIO, "--json"], fresh_env))
    assert line.startswith("CommandError: Processing failed (provider_auth)")
