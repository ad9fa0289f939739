"""Under ASGI a request hops to a thread for its sync view, not for the middleware around it."""

from __future__ import annotations

import pytest
from asgiref import sync
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from jobs.api import auth
from meeting_intel.lib import async_db
from tests.support.api_factories import make_job, new_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hops(monkeypatch):
    """The names of the callables each sync_to_async call ran in a thread."""
    names: list[str] = []
    real = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        func = self.func
        names.append(getattr(func, "__qualname__", None) or type(func).__qualname__)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    return names


def asgi_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
    """One request through the ASGI application uvicorn serves: (status, headers, body)."""
    from meeting_intel.asgi import django_asgi_app

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def run():
        app = ApplicationCommunicator(django_asgi_app, scope)
        await app.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await app.receive_output(10)
        chunks = []
        while True:
            message = await app.receive_output(10)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await app.wait(5)
        # An API read's async pool and throttle client live on this throwaway loop: closed with it.
        await async_db.close()
        await auth.close_async_clients()
        return start["status"], {k.lower(): v for k, v in start["headers"]}, b"".join(chunks)

    return async_to_sync(run)()


def middleware_hops(names: list[str]) -> list[str]:
    return [n for n in names if "Middleware" in n or "process_" in n]


def test_an_api_read_runs_no_middleware_in_a_thread(hops):
    client, key = new_client()
    job = make_job(client, title="Polled")
    hops.clear()
    status, headers, _ = asgi_request(
        "GET", f"/api/v1/jobs/{job.id}/", {"Authorization": f"Bearer {key}"}
    )
    assert status == 200
    assert middleware_hops(hops) == []
    assert headers[b"x-frame-options"] == b"DENY"  # the inline middleware still did its work
    assert headers[b"x-content-type-options"] == b"nosniff"


def test_a_static_file_is_served_without_a_thread(hops):
    status, _, body = asgi_request("GET", "/static/admin/css/base.css")
    assert status == 200 and body
    assert middleware_hops(hops) == []


def test_an_unsafe_request_without_a_csrf_token_is_still_refused(hops):
    status, _, _ = asgi_request(
        "POST",
        "/admin/login/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"username=x&password=y",
    )
    assert status == 403
