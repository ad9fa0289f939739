"""One attempt against a real local receiver: deadline, capped read, no
redirects, 410, Retry-After, and Standard Webhooks signatures (with rotation).

Tasks are called in this process (Celery eager), as healthchecks tests do;
the retry schedule through a real worker is in test_webhooks_worker.py.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from jobs.models import ApiClient, Job
from meeting_intel.celery import app as celery_app
from webhooks.actions import expire_secret, redeliver, rotate_secret
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import record_job_event
from webhooks.sender import RESPONSE_EXCERPT_BYTES, parse_retry_after
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-tests!!").decode()
State = WebhookDelivery.State


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 60, 120]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_LEGACY_SECRET_HEADER = False
    return settings


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    """Tasks queued by the code under test run here, not on a shared worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Any) -> Any:
    """Run what the code under test queues on commit (the test's transaction never commits)."""
    return django_capture_on_commit_callbacks


def make_delivery(
    url: str, *, secret: str = SECRET, client: ApiClient | None = None
) -> WebhookDelivery:
    job = Job.objects.create(
        client=client, status=Job.Status.COMPLETED, webhook_url=url, webhook_secret=secret
    )
    with transaction.atomic():
        delivery = record_job_event(job, "job.completed")
    assert delivery is not None
    return delivery


def hits(receiver: Any, path: str) -> list[Any]:
    """Every request to `path`, including those a scripted fault answered."""
    return [r for r in receiver.requests if r.path == path]


def send(delivery: WebhookDelivery) -> WebhookDelivery:
    deliver(delivery.id)
    delivery.refresh_from_db()
    return delivery


class RawServer:
    """A socket server answering every connection with `respond(conn)`."""

    def __init__(self, respond: Callable[[socket.socket], None]) -> None:
        self.respond = respond
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/raw"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                _read_request(conn)
                self.respond(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> None:
    # Read the whole request, so closing never resets the client's read.
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(respond: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_slow_response_is_cut_at_the_total_deadline(receiver: Any) -> None:
    receiver.delay_responses(1.5, times=1)
    delivery = send(make_delivery(receiver.hook_url()))
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None
    assert "deadline of 1s exceeded" in attempt.error
    assert 900 <= attempt.duration_ms < 1800
    assert delivery.state == State.RETRYING
    receiver.wait_for(1, timeout=5)  # the slow request did arrive; let it land before reset


def test_a_slow_drip_response_is_cut_at_the_deadline(raw_server: Callable) -> None:
    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b".")
            time.sleep(0.2)

    server = raw_server(drip)
    started = time.monotonic()
    delivery = send(make_delivery(server.url))
    assert time.monotonic() - started < 2.0
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 200
    assert "deadline of 1s exceeded" in attempt.error
    assert attempt.duration_ms < 1500
    assert delivery.state == State.RETRYING  # a response that never finished is not a success


def test_the_response_body_read_is_capped(raw_server: Callable) -> None:
    def huge(conn: socket.socket) -> None:
        # No length: the body runs until the server closes, as HTTP/1.0 allows.
        conn.sendall(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n")
        conn.sendall(b"x" * 5 * 1024 * 1024)

    delivery = send(make_delivery(raw_server(huge).url))
    [attempt] = delivery.attempts.all()
    assert delivery.state == State.SUCCEEDED
    assert attempt.response_excerpt == "x" * RESPONSE_EXCERPT_BYTES


def test_a_redirect_is_not_followed(raw_server: Callable, receiver: Any) -> None:
    target = receiver.hook_url("redirected")

    def redirect(conn: socket.socket) -> None:
        conn.sendall(
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )

    delivery = send(make_delivery(raw_server(redirect).url))
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 307
    assert delivery.state == State.RETRYING
    assert receiver.received == []


def test_a_410_stops_retries_for_that_endpoint(receiver: Any, capture: Any) -> None:
    url = receiver.hook_url("gone")
    first, waiting = make_delivery(url), make_delivery(url)
    receiver.fail(410, times=1)
    first = send(first)
    assert first.state == State.GONE and first.next_attempt_at is None
    assert WebhookEndpoint.objects.get(url=url).gone_at is not None
    waiting.refresh_from_db()
    assert waiting.state == State.GONE  # queued for the same endpoint: not attempted
    later = send(make_delivery(url))
    assert later.state == State.GONE and later.attempt_count == 0
    assert len(hits(receiver, "/hooks/gone")) == 1

    # Redelivering is staff saying the endpoint is back.
    with capture(execute=True):
        redeliver(later)
    later.refresh_from_db()
    assert later.state == State.SUCCEEDED
    assert WebhookEndpoint.objects.get(url=url).gone_at is None
    assert len(hits(receiver, "/hooks/gone")) == 2


def test_retry_after_is_honoured_within_bounds(receiver: Any, settings: Any) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0.1, 0.1]
    receiver.rate_limit(retry_after=30, times=1)
    delivery = send(make_delivery(receiver.hook_url()))
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert delivery.attempts.get().status_code == 429
    assert 28 < wait <= 30

    settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS = 5
    receiver.rate_limit(retry_after=86400, times=1)
    delivery = send(make_delivery(receiver.hook_url()))
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 4 < wait <= 5


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120
    later = timezone.now() + timedelta(seconds=90)
    assert 85 < parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 90
    assert parse_retry_after("soon") is None


def test_the_signature_verifies_with_standardwebhooks(receiver: Any) -> None:
    delivery = send(make_delivery(receiver.hook_url()))
    [hook] = receiver.received
    assert delivery.state == State.SUCCEEDED
    assert hook.headers["webhook-id"] == delivery.webhook_id
    assert hook.body.decode() == delivery.body
    payload = Webhook(SECRET).verify(hook.body, hook.headers)
    assert payload["type"] == "job.completed"
    assert "x-webhook-secret" not in hook.headers
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"some-other-secret").decode()).verify(
            hook.body, hook.headers
        )


def test_a_plain_secret_signs_with_its_utf8_bytes(receiver: Any) -> None:
    send(make_delivery(receiver.hook_url(), secret="plain text secret"))
    [hook] = receiver.received
    Webhook(b"plain text secret").verify(hook.body, hook.headers)


def test_both_signatures_are_sent_while_a_rotated_secret_overlaps(
    receiver: Any, capture: Any
) -> None:
    client = ApiClient.objects.create(name="rotating-cms", key_hash="h-rotating")
    old = rotate_secret(client)
    send(make_delivery(receiver.hook_url(), secret="", client=client))
    new = rotate_secret(client, overlap_seconds=3600)
    during = send(make_delivery(receiver.hook_url(), secret="", client=client))
    expire_secret(old)
    with capture(execute=True):
        redeliver(during)

    before, overlap, after = receiver.wait_for(3)
    assert len(before.headers["webhook-signature"].split(" ")) == 1
    assert len(overlap.headers["webhook-signature"].split(" ")) == 2
    for secret in (old.secret, new.secret):
        Webhook(secret).verify(overlap.body, overlap.headers)
    Webhook(old.secret).verify(before.body, before.headers)

    # After the overlap the same event (same webhook-id) carries only the new signature.
    assert after.headers["webhook-id"] == overlap.headers["webhook-id"]
    Webhook(new.secret).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old.secret).verify(after.body, after.headers)


def test_the_legacy_secret_header_is_opt_in(receiver: Any, settings: Any) -> None:
    settings.WEBHOOK_LEGACY_SECRET_HEADER = True
    send(make_delivery(receiver.hook_url()))
    [hook] = receiver.received
    assert hook.headers["x-webhook-secret"] == SECRET
