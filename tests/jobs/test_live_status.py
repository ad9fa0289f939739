"""Websocket /ws/jobs/{id}/ pushes a job's state on connect and each change after."""

from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile
from websockets.sync.client import connect

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline.queue import enqueue_next
from jobs.tokens import make_viewer_token
from tests.conftest import SAMPLE_AUDIO

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_it_streams_pending_processing_completed(platform):
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(
            Job(title="ws", audio=ContentFile(fh.read(), "standup.wav")), enqueue=False
        )
    url = platform.url.replace("http", "ws") + f"/ws/jobs/{job.id}/?token={make_viewer_token(job)}"
    seen: list[dict] = []
    with connect(url, origin=platform.url, open_timeout=10) as ws:
        seen.append(json.loads(ws.recv(timeout=10)))
        enqueue_next(job.id)
        while seen[-1]["status"] not in ("completed", "failed"):
            seen.append(json.loads(ws.recv(timeout=60)))
    statuses = [m["status"] for m in seen]
    assert statuses[0] == "pending"
    assert "processing" in statuses
    assert statuses[-1] == "completed"
    deduped = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert deduped == ["pending", "processing", "completed"]
    progress = [m["progress"] for m in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert seen[-1]["results_url"] and seen[-1]["type"] == "job.status"
