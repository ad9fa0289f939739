"""A viewer link never renews itself: pages, polls and sockets opened under a viewer
token hand back links that expire when that token does. Staff and the owning API
client are the only ones handed freshly signed links."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core import signing

from jobs.broadcast import broadcast_job
from jobs.models import Job
from jobs.tokens import make_viewer_token, token_allows
from jobs.web.consumers import JobStatusConsumer
from tests.support.api_factories import api_for, make_job, make_meeting, new_client

MAX_AGE = 30 * 24 * 3600


def token_in(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def issued_long_ago(job: Job, monkeypatch, seconds_left: int) -> str:
    """A viewer token issued so long ago that it has `seconds_left` to live."""
    real = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real() - MAX_AGE + seconds_left)
    token = make_viewer_token(job)
    monkeypatch.setattr(signing.time, "time", real)
    return token


def later(monkeypatch, seconds: int) -> None:
    real = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real() + seconds)


@pytest.fixture
def finished_job(db):
    client, key = new_client()
    job = make_job(client, status=Job.Status.COMPLETED, stage=Job.Stage.DONE, progress=100)
    make_meeting(job, [("A", 0, 1000, "Hello.")])
    return Job.objects.select_related("meeting").get(id=job.id), key


@pytest.mark.django_db
def test_a_poll_under_an_old_token_hands_back_a_link_that_expires_with_it(
    client, finished_job, settings, monkeypatch
):
    settings.VIEWER_TOKEN_MAX_AGE = MAX_AGE
    job, _ = finished_job
    old = issued_long_ago(job, monkeypatch, seconds_left=60)
    state = client.get(f"/jobs/{job.id}/state/", {"token": old}).json()
    handed = token_in(state["results_url"])
    later(monkeypatch, 120)
    assert not token_allows(old, job)
    assert not token_allows(handed, job), "the link handed out outlived the viewer's token"


@pytest.mark.django_db
def test_the_job_and_results_pages_under_a_token_link_with_that_token(
    client, finished_job, settings, monkeypatch
):
    settings.VIEWER_TOKEN_MAX_AGE = MAX_AGE
    job, _ = finished_job
    old = issued_long_ago(job, monkeypatch, seconds_left=60)
    for path in (f"/jobs/{job.id}/", f"/meetings/{job.meeting.id}/"):
        page = client.get(path, {"token": old})
        assert page.status_code == 200
        assert page.context["token"] == old


@pytest.mark.django_db
def test_the_owning_api_client_and_staff_get_fresh_links(
    client, admin_user, finished_job, settings, monkeypatch
):
    settings.VIEWER_TOKEN_MAX_AGE = MAX_AGE
    job, key = finished_job
    body = api_for(key).get(f"/api/v1/jobs/{job.id}/").json()
    client.force_login(admin_user)
    state = client.get(f"/jobs/{job.id}/state/").json()
    later(monkeypatch, MAX_AGE - 60)
    for url in (body["status_url"], body["results_url"], state["results_url"]):
        assert token_allows(token_in(url), job)


@pytest.mark.django_db(transaction=True)
def test_a_socket_under_an_old_token_hands_back_links_that_expire_with_it(
    finished_job, settings, monkeypatch
):
    settings.VIEWER_TOKEN_MAX_AGE = MAX_AGE
    job, _ = finished_job
    old = issued_long_ago(job, monkeypatch, seconds_left=60)

    async def run() -> list[dict]:
        scope = {
            "type": "websocket",
            "path": f"/ws/jobs/{job.id}/",
            "query_string": f"token={old}".encode(),
            "headers": [],
            "subprotocols": [],
            "url_route": {"kwargs": {"job_id": str(job.id)}},
        }
        ws = ApplicationCommunicator(JobStatusConsumer.as_asgi(), scope)
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(5))["type"] == "websocket.accept"
        first = json.loads((await ws.receive_output(5))["text"])
        # What broadcast_job sends to every subscriber, staff included.
        await sync_to_async(broadcast_job)(job.id)
        second = json.loads((await ws.receive_output(5))["text"])
        await ws.send_input({"type": "websocket.disconnect", "code": 1000})
        await ws.wait(5)
        return [first, second]

    received = async_to_sync(run)()
    later(monkeypatch, 120)
    for message in received:
        assert not token_allows(token_in(message["results_url"]), job)
