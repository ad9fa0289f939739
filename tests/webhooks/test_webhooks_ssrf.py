"""The SSRF guard refuses every way of reaching inside, and connects to the
address it checked (so DNS rebinding cannot slip past)."""

from __future__ import annotations

import io
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from jobs.models import Job
from meeting_intel.lib import safe_http as ssrf
from webhooks.models import WebhookDelivery
from webhooks.outbox import record_job_event
from webhooks.tasks import deliver

PUBLIC_IP = "93.184.216.34"

REFUSED = [
    # loopback, private, link-local, CGNAT, ULA, unspecified, multicast
    "http://127.0.0.1/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://100.64.0.1/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[fec0::1]/hook",
    # IPv4-mapped IPv6, NAT64, 6to4
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook",
    # decimal, octal, hex and short IPv4 spellings
    "http://2130706433/hook",
    "http://0177.0.0.1/hook",
    "http://0x7f000001/hook",
    "http://0x7f.0.0.1/hook",
    "http://127.1/hook",
    "http://0251.0376.0251.0376/hook",
    "http://127.0.0.1./hook",
    # not http, or carrying credentials
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/",
    "ftp://example.com/x",
    "http://user:pass@example.com/hook",
    "http:///hook",
]


@pytest.fixture
def no_private() -> Iterator[None]:
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=False):
        yield


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names under `.test` resolve to the addresses listed here, one answer per lookup."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            ip = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize("url", REFUSED)
def test_it_refuses_each_ssrf_vector(no_private: None, url: str) -> None:
    with pytest.raises(ssrf.UnsafeURL) as refused:
        ssrf.check_url(url)
    assert refused.value.reason and not refused.value.transient


def test_it_allows_a_public_address(no_private: None) -> None:
    ssrf.check_url(f"https://{PUBLIC_IP}/hook")
    ssrf.check_url("http://[2606:2800:220:1:248:1893:25c8:1946]:8443/hook")


def test_a_name_resolving_to_a_private_address_is_refused(no_private: None, fake_dns: dict) -> None:
    fake_dns["metadata.test"] = ["169.254.169.254"]
    fake_dns["mixed.test"] = ["10.0.0.7"]
    for name in ("metadata.test", "mixed.test"):
        with pytest.raises(ssrf.UnsafeURL, match="resolves to a refused address"):
            ssrf.check_url(f"https://{name}/hook")


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "localhost", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1"]
)
def test_safe_request_refuses_before_connecting(
    no_private: None, receiver: Any, spelling: str
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.safe_request(
            "POST", f"http://{spelling}:{port}/hooks/ssrf", timeout=2, max_bytes=100, data=b"{}"
        )
    assert receiver.received == []


def test_allowing_private_hosts_opens_loopback_but_not_metadata() -> None:
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        ssrf.check_url("http://127.0.0.1:8000/hook")
        ssrf.check_url("http://10.0.0.5/hook")
        for url in ("http://169.254.169.254/", "http://[::ffff:127.0.0.1]/", "http://2130706433/"):
            with pytest.raises(ssrf.UnsafeURL):
                ssrf.check_url(url)


def test_dns_rebinding_cannot_slip_past_the_check(
    no_private: None, fake_dns: dict, receiver: Any
) -> None:
    # The first answer is public (and passes the check); every later one
    # points at the receiver on loopback. Connecting to the checked address
    # reaches the (blocked) public IP, never the receiver.
    fake_dns["rebind.test"] = [PUBLIC_IP, "127.0.0.1"]
    port = receiver.url.rsplit(":", 1)[1]
    with pytest.raises(ssrf.FetchError) as failed:
        ssrf.safe_request(
            "POST", f"http://rebind.test:{port}/hooks/x", timeout=2, max_bytes=100, data=b"{}"
        )
    assert PUBLIC_IP in str(failed.value)
    assert receiver.received == []


def test_the_pinned_connection_keeps_the_host_name(fake_dns: dict, receiver: Any) -> None:
    fake_dns["cms.test"] = ["127.0.0.1"]
    port = receiver.url.rsplit(":", 1)[1]
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        response = ssrf.safe_request(
            "POST", f"http://cms.test:{port}/hooks/pinned", timeout=2, max_bytes=100, data=b"{}"
        )
    assert response.status_code == 200
    [hook] = receiver.wait_for(1)
    assert hook.headers["host"] == f"cms.test:{port}"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str | None]]]:
    """An HTTPS server with a self-signed certificate for cms.test; records the SNI it sees."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=cms.test",
            "-addext",
            "subjectAltName=DNS:cms.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (OSError, ssl.SSLError):
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], names
    listener.close()


def test_tls_uses_the_host_name_for_sni_and_verifies_the_certificate(
    fake_dns: dict, tls_server: tuple[int, list[str | None]]
) -> None:
    port, names = tls_server
    fake_dns["cms.test"] = ["127.0.0.1"]
    with (
        override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True),
        pytest.raises(ssrf.FetchError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        ssrf.safe_request("GET", f"https://cms.test:{port}/", timeout=3, max_bytes=100)
    assert names == ["cms.test"]


@pytest.mark.django_db
def test_a_refused_webhook_url_is_logged_and_not_retried(no_private: None) -> None:
    job = Job.objects.create(
        status=Job.Status.COMPLETED, webhook_url="http://169.254.169.254/latest/meta-data/"
    )
    with transaction.atomic():
        delivery = record_job_event(job, "job.completed")
    assert delivery is not None
    deliver(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.REFUSED
    assert delivery.next_attempt_at is None
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None and "link-local" in attempt.error


@pytest.fixture
def redirector() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that answers 302 to the Location its caller appends to the list."""
    locations: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self.send_response(302)
            self.send_header("Location", locations[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/start", locations
    server.shutdown()
    server.server_close()


def test_followed_redirects_are_checked_at_every_hop(
    redirector: tuple[str, list[str]], receiver: Any
) -> None:
    start, locations = redirector
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        locations.append(receiver.hook_url("landed"))
        # The receiver answers POST only: landing there with GET proves the hop was followed.
        response = ssrf.safe_request("GET", start, timeout=2, max_bytes=100, allow_redirects=True)
        assert response.history == [start] and response.url == locations[0]
        assert response.status_code == 404

        locations[0] = "http://169.254.169.254/latest/meta-data/"
        with pytest.raises(ssrf.UnsafeURL, match="link-local"):
            ssrf.safe_request("GET", start, timeout=2, max_bytes=100, allow_redirects=True)


def test_the_body_can_go_to_a_sink_and_is_capped(receiver: Any) -> None:
    sink = io.BytesIO()
    with override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        response = ssrf.safe_request(
            "POST", receiver.hook_url(), timeout=2, max_bytes=5, data=b"{}", sink=sink
        )
    assert response.ok and response.truncated
    assert sink.getvalue() == b'{"ok"' and response.content == b""
