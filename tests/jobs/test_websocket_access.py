"""Websocket /ws/jobs/{id}/ access: the Origin must be this site, and then a
staff session or the job's own viewer token is needed, on every connection."""

from __future__ import annotations

import json

import pytest
from django.db.models import F
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from jobs.broadcast import broadcast_job
from jobs.models import Job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import make_job
from tests.support.pages import staff_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def job():
    return make_job(
        None, title="Watched", status=Job.Status.PROCESSING, stage=Job.Stage.ANALYZING, progress=60
    )


def ws_url(platform, job, token: str | None = None) -> str:
    query = f"?token={token}" if token else ""
    return platform.url.replace("http://", "ws://") + f"/ws/jobs/{job.id}/{query}"


def first_message(url: str, origin: str, **kwargs) -> dict:
    with connect(url, origin=origin, open_timeout=10, **kwargs) as ws:
        return json.loads(ws.recv(timeout=10))


def refused(url: str, origin: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as info:
        first_message(url, origin, **kwargs)
    return info.value.response.status_code


def test_a_staff_session_is_allowed(platform, job):
    session = staff_session(platform.url)
    cookie = f"sessionid={session.cookies['sessionid']}"
    message = first_message(
        ws_url(platform, job), platform.url, additional_headers={"Cookie": cookie}
    )
    assert (message["type"], message["job_id"], message["progress"]) == (
        "job.status",
        str(job.id),
        60,
    )


def test_the_jobs_viewer_token_is_allowed(platform, job):
    message = first_message(ws_url(platform, job, make_viewer_token(job)), platform.url)
    assert message["job_id"] == str(job.id) and message["stage"] == "analyzing"


def test_another_jobs_token_is_refused(platform, job):
    other = make_job(None, title="Another")
    assert refused(ws_url(platform, job, make_viewer_token(other)), platform.url) == 403


def test_no_token_is_refused(platform, job):
    assert refused(ws_url(platform, job), platform.url) == 403


def test_a_garbled_token_is_refused(platform, job):
    assert refused(ws_url(platform, job, make_viewer_token(job)[:-3] + "xyz"), platform.url) == 403


def test_a_cross_origin_connection_is_refused_even_with_a_valid_token(platform, job):
    url = ws_url(platform, job, make_viewer_token(job))
    assert refused(url, "http://evil.example") == 403


def test_a_cross_origin_connection_is_refused_even_for_staff(platform, job):
    session = staff_session(platform.url)
    cookie = f"sessionid={session.cookies['sessionid']}"
    assert (
        refused(ws_url(platform, job), "http://evil.example", additional_headers={"Cookie": cookie})
        == 403
    )


def test_a_revoked_token_is_refused_and_drops_an_open_socket(platform, job):
    token = make_viewer_token(job)
    with connect(ws_url(platform, job, token), origin=platform.url, open_timeout=10) as ws:
        json.loads(ws.recv(timeout=10))
        Job.objects.filter(id=job.id).update(viewer_token_version=F("viewer_token_version") + 1)
        broadcast_job(job.id)  # what the admin's "revoke viewer links" action sends
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4403
    assert refused(ws_url(platform, job, token), platform.url) == 403
