"""The management commands of SPEC: create_api_client and process_meeting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from django.core.management import call_command

from jobs.models import ApiClient
from tests.conftest import SAMPLE_AUDIO, provider_env
from tests.support.platform import ROOT, base_env, database_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_api_client_prints_the_key_last_and_stores_only_its_hash(capsys):
    call_command("create_api_client", "newsroom")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    client = ApiClient.objects.get(name="newsroom")
    assert key.startswith(client.key_prefix) and client.key_prefix.startswith("mip_")
    assert client.key_hash == ApiClient.hash_key(key) and key not in client.key_hash


def _process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "process_meeting", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli_env(fake_aai, fake_openai, settings):
    from django.db import connection

    return base_env(
        database_url(connection.settings_dict),
        settings.REDIS_URL,
        **provider_env(fake_aai, fake_openai),
    )


def test_process_meeting_runs_the_pipeline_without_a_broker(cli_env):
    env = {
        **cli_env,
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
    }
    result = _process([SAMPLE_AUDIO, "--title", "CLI run", "--json"], env)
    assert result.returncode == 0, result.stderr
    meeting = json.loads(result.stdout)
    assert meeting["title"] == "CLI run"
    assert meeting["summary"].startswith("Alice and Bob")
    assert {s["name"] for s in meeting["speakers"]} == {"Alice", "Bob"}


def test_process_meeting_takes_participants_and_vocabulary(cli_env, fake_aai):
    args = ["--participant", "Alice Smith:chair", "--participant", "Bob Jones", "--term", "Stripe"]
    result = _process([SAMPLE_AUDIO, *args, "--json"], cli_env)
    assert result.returncode == 0, result.stderr
    # The canned answer's "Alice" and "Bob" become the participants they mean.
    names = {s["name"] for s in json.loads(result.stdout)["speakers"]}
    assert names == {"Alice Smith", "Bob Jones"}
    assert fake_aai.submissions[-1]["keyterms_prompt"] == ["Stripe", "Alice Smith", "Bob Jones"]


def test_process_meeting_refuses_shaping_outside_the_limits(cli_env):
    result = _process([SAMPLE_AUDIO, "--term", "x" * 61], cli_env)
    assert result.returncode != 0 and "at most 60 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_process_meeting_fails_clearly_on_a_missing_or_non_audio_file(cli_env, tmp_path):
    missing = _process([str(tmp_path / "nope.wav")], cli_env)
    assert missing.returncode != 0 and "No such file" in missing.stderr
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all")
    bad = _process([str(text)], cli_env)
    assert bad.returncode != 0 and "not a recognised audio" in bad.stderr


def test_process_meeting_fails_clearly_when_the_provider_fails(cli_env, fake_aai):
    fake_aai.fail(401, times=None, route="upload")
    result = _process([SAMPLE_AUDIO, "--json"], cli_env)
    assert result.returncode != 0
    assert "provider_auth" in result.stderr


def test_healthz_answers_while_the_web_process_serves(platform):
    assert requests.get(f"{platform.url}/healthz", timeout=5).json() == {"status": "ok"}
