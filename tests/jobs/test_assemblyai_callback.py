"""AssemblyAI's completion callback: checked against the job's secret and answered
without a query; the poll it queues reads the job on the worker."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.pipeline.queue import queue_of
from jobs.pipeline.runner import CALLBACK_HEADER, callback_token
from jobs.pipeline.steps import POLL

pytestmark = pytest.mark.django_db


def post(client, job_id, token):
    return client.post(
        f"/hooks/assemblyai/{job_id}/",
        data=json.dumps({"transcript_id": "t-1", "status": "completed"}),
        content_type="application/json",
        headers={CALLBACK_HEADER: token},
    )


def queued(broker) -> list[tuple[str, list]]:
    out = []
    for raw in broker.lrange(queue_of(POLL), 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args, kwargs))
    return out


def test_a_callback_with_the_jobs_secret_queues_a_poll_without_a_query(client, private_broker):
    job_id = uuid.uuid4()
    with CaptureQueriesContext(connection) as captured:
        response = post(client, job_id, callback_token(job_id))
    assert response.status_code == 200
    assert captured.captured_queries == []
    assert queued(private_broker) == [("jobs.poll_transcript", [str(job_id)], {})]


def test_a_callback_without_the_secret_is_refused_and_queues_nothing(client, private_broker):
    job_id = uuid.uuid4()
    assert post(client, job_id, callback_token(uuid.uuid4())).status_code == 401
    assert post(client, job_id, "").status_code == 401
    assert queued(private_broker) == []
