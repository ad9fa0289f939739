"""Ops endpoints and audio-less reprocessing: /metrics needs its token outside DEBUG
(start-up refuses an empty one unless METRICS_PUBLIC=true), the worker's metrics server
binds loopback and checks the token, compose keeps Flower on loopback, and reprocess
from transcription without the recording answers 409 `audio_missing`, changing nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
import yaml
from django.test import Client

from jobs.models import Job, JobEvent
from tests.support.api_factories import api_for, make_job, make_meeting, new_client
from tests.support.platform import ROOT, free_port


def _check(**overrides: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_")}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    environment.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        cwd=ROOT,
    )


def test_start_up_outside_debug_refuses_an_empty_metrics_token():
    refused = _check(DEBUG="false", METRICS_BEARER_TOKEN="")
    assert refused.returncode != 0 and "METRICS_BEARER_TOKEN" in refused.stderr
    assert _check(DEBUG="false", METRICS_PUBLIC="true").returncode == 0
    assert _check(DEBUG="false", METRICS_BEARER_TOKEN="scrape-me").returncode == 0
    assert _check(DEBUG="true").returncode == 0


@pytest.mark.django_db
def test_metrics_without_a_token_are_closed_outside_debug_unless_public(settings):
    settings.DEBUG, settings.METRICS_BEARER_TOKEN, settings.METRICS_PUBLIC = False, "", False
    assert Client().get("/metrics").status_code == 401
    settings.METRICS_PUBLIC = True
    assert Client().get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_when_one_is_set(settings):
    settings.DEBUG, settings.METRICS_BEARER_TOKEN, settings.METRICS_PUBLIC = False, "t0k", True
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t0k").status_code == 200


def test_the_worker_metrics_server_binds_loopback_and_checks_the_token(settings):
    from meeting_intel.ops.wiring import serve_worker_metrics

    assert settings.WORKER_METRICS_ADDR == "127.0.0.1"
    settings.DEBUG, settings.METRICS_BEARER_TOKEN = False, "w0rker"
    server = serve_worker_metrics(free_port(), settings.WORKER_METRICS_ADDR)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        wrong = requests.get(url, headers={"Authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401
        good = requests.get(url, headers={"Authorization": "Bearer w0rker"}, timeout=5)
        assert good.status_code == 200 and "meeting_intel_" in good.text
    finally:
        server.shutdown()
        server.server_close()


def test_compose_publishes_flower_on_loopback_only_and_requires_the_metrics_token():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        if name == "web":
            continue  # the application itself; its /metrics checks the token
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["flower"]["ports"], "flower is reachable from the host's loopback"
    token = services["web"]["environment"]["METRICS_BEARER_TOKEN"]
    assert str(token).startswith("${METRICS_BEARER_TOKEN:?"), token


@pytest.fixture
def purged_job(db, settings, tmp_path):
    client, key = new_client()
    job = make_job(
        client,
        status=Job.Status.COMPLETED,
        stage=Job.Stage.DONE,
        progress=100,
        audio="uploads/purged.wav",
    )
    Job.objects.filter(id=job.id).update(transcript_saved_at=job.created_at)
    make_meeting(job, [("A", 0, 1000, "Hello.")])
    return Job.objects.get(id=job.id), key


def _unchanged(job: Job, events_before: int) -> None:
    fresh = Job.objects.get(id=job.id)
    assert (fresh.status, fresh.attempts, fresh.transcript_saved_at) == (
        Job.Status.COMPLETED,
        job.attempts,
        job.transcript_saved_at,
    )
    assert JobEvent.objects.filter(job=job).count() == events_before


def test_api_reprocess_from_transcription_without_audio_answers_409(purged_job):
    job, key = purged_job
    events = JobEvent.objects.filter(job=job).count()
    response = api_for(key).post(
        f"/api/v1/jobs/{job.id}/reprocess/", {"from": "transcription"}, format="json"
    )
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "audio_missing"
    _unchanged(job, events)
    again = api_for(key).post(
        f"/api/v1/jobs/{job.id}/reprocess/", {"from": "analysis"}, format="json"
    )
    assert again.status_code == 200, again.content


def test_staff_reprocess_from_transcription_without_audio_changes_nothing(purged_job, admin_client):
    job, _ = purged_job
    events = JobEvent.objects.filter(job=job).count()
    page = admin_client.post(f"/jobs/{job.id}/reprocess/", {"from": "transcription"}, follow=True)
    assert "no longer on the server" in page.content.decode()
    _unchanged(job, events)
    admin_client.post(
        "/admin/jobs/job/",
        {"action": "reprocess_from_transcription", "_selected_action": [str(job.id)]},
    )
    _unchanged(job, events)
