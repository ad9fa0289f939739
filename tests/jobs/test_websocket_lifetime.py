"""Open websockets end with the access they were opened under, and never crash.

Staff sockets close on logout and on demotion; token sockets on revocation and
expiry; a broadcast reaches subscribers without a query; with Redis down the
socket is refused with close code 1013, not an error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db.backends.utils import CursorWrapper
from django.db.models import F
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from jobs.broadcast import broadcast_job
from jobs.models import Job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import make_job
from tests.support.pages import staff_session
from tests.support.platform import base_env, database_url, free_port, start_web

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def job():
    return make_job(None, title="Watched", status=Job.Status.PROCESSING, progress=10)


def ws_url(base: str, job: Job, token: str | None = None) -> str:
    return (
        base.replace("http://", "ws://")
        + f"/ws/jobs/{job.id}/"
        + (f"?token={token}" if token else "")
    )


def closed_code(ws, timeout: float) -> int:
    """The close code the server sends within `timeout` (skipping status messages)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd.code


@contextmanager
def staff_socket(
    platform, job, username: str
) -> Iterator[tuple[requests.Session, ClientConnection]]:
    session = staff_session(platform.url, username=username)
    with connect(
        ws_url(platform.url, job),
        origin=platform.url,
        open_timeout=10,
        additional_headers={"Cookie": f"sessionid={session.cookies['sessionid']}"},
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["job_id"] == str(job.id)
        yield session, ws


def test_a_staff_socket_closes_when_its_session_logs_out(platform, job):
    with staff_socket(platform, job, "leaving") as (session, ws):
        response = session.post(
            f"{platform.url}/admin/logout/",
            headers={
                "X-CSRFToken": session.cookies["csrftoken"],
                "Referer": f"{platform.url}/admin/",
            },
            timeout=10,
        )
        assert response.status_code == 200
        assert closed_code(ws, timeout=10) == 4403


def test_a_staff_socket_closes_when_its_user_is_demoted(platform, job):
    with staff_socket(platform, job, "demoted") as (_, ws):
        user = get_user_model().objects.get(username="demoted")
        user.is_staff = False
        user.save()
        assert closed_code(ws, timeout=10) == 4403


def test_access_lost_without_any_signal_still_closes_within_a_minute(platform, job):
    """A demotion by queryset update (no signal) and a revocation whose broadcast never
    went out: the shipped periodic re-check (STAFF_SOCKET_RECHECK_SECONDS) closes both."""
    token_url = ws_url(platform.url, job, make_viewer_token(job))
    with (
        staff_socket(platform, job, "quietly-demoted") as (_, staff_ws),
        connect(token_url, origin=platform.url, open_timeout=10) as token_ws,
    ):
        token_ws.recv(timeout=10)
        get_user_model().objects.filter(username="quietly-demoted").update(is_staff=False)
        Job.objects.filter(id=job.id).update(viewer_token_version=F("viewer_token_version") + 1)
        codes: dict[str, int] = {}

        def watch(name: str, ws: ClientConnection) -> None:
            codes[name] = closed_code(ws, timeout=60)

        watchers = [
            threading.Thread(target=watch, args=item)
            for item in (("staff", staff_ws), ("token", token_ws))
        ]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
    assert codes == {"staff": 4403, "token": 4403}


def test_a_broadcast_reaches_token_subscribers_without_a_query(settings, job):
    """The consumer in this process (Channels' test communicator), the layer on Redis."""
    from asgiref.sync import async_to_sync
    from asgiref.testing import ApplicationCommunicator
    from channels.layers import get_channel_layer

    from jobs.broadcast import group_name, status_event
    from meeting_intel.asgi import application

    queries: list[str] = []
    real = CursorWrapper.execute

    def counting(self, sql, params=None):
        queries.append(sql)
        return real(self, sql, params)

    event = dict(status_event(job))

    async def scenario():
        socket = ApplicationCommunicator(
            application,
            {
                "type": "websocket",
                "path": f"/ws/jobs/{job.id}/",
                "query_string": f"token={make_viewer_token(job)}".encode(),
                "headers": [(b"origin", b"http://localhost"), (b"host", b"localhost")],
                "subprotocols": [],
            },
        )
        await socket.send_input({"type": "websocket.connect"})
        assert (await socket.receive_output(10))["type"] == "websocket.accept"
        await socket.receive_output(10)  # the state on connect
        CursorWrapper.execute = counting
        try:
            for progress in (20, 30, 40):
                event["payload"] = {**event["payload"], "progress": progress}
                await get_channel_layer().group_send(group_name(job.id), event)
            got = [
                json.loads((await socket.receive_output(10))["text"])["progress"] for _ in range(3)
            ]
        finally:
            CursorWrapper.execute = real
        await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await socket.wait(5)
        return got

    assert async_to_sync(scenario)() == [20, 30, 40]
    assert queries == []


def test_a_broadcast_under_a_newer_token_version_closes_older_sockets(platform, job):
    with connect(
        ws_url(platform.url, job, make_viewer_token(job)), origin=platform.url, open_timeout=10
    ) as ws:
        ws.recv(timeout=10)
        Job.objects.filter(id=job.id).update(viewer_token_version=F("viewer_token_version") + 1)
        broadcast_job(job.id)
        assert closed_code(ws, timeout=10) == 4403


def test_with_redis_down_a_socket_is_refused_with_1013_and_the_process_lives(
    job, django_db_blocker
):
    from django.db import connection

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    port = free_port()
    web = start_web(base_env(database_url(connection.settings_dict), dead), port)
    try:
        url = f"http://127.0.0.1:{port}"
        with connect(ws_url(url, job, make_viewer_token(job)), origin=url, open_timeout=10) as ws:
            assert closed_code(ws, timeout=15) == 1013
        with connect(ws_url(url, job, make_viewer_token(job)), origin=url, open_timeout=10) as ws:
            assert closed_code(ws, timeout=15) == 1013  # and again: nothing was left broken
        assert web.alive()
        assert "Exception in ASGI application" not in web.output()
    finally:
        web.stop()
