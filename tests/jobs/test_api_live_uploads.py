"""Uploads and `audio_url` against the real web process and worker.

Large bodies stream to disk (the web process does not grow by their size),
an oversized declared body is refused before it is read, and an `audio_url`
is fetched by the worker under the SSRF guard, content-checked and processed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobs.models import Job
from meeting_intel.http.body_limits import BodySizeLimit
from tests.conftest import SAMPLE_AUDIO, wait_for_job
from tests.fakes.base import FakeServer, Reply, Request, json_reply
from tests.support.api_factories import wav_header

UPLOAD_BYTES = 200 * 1024 * 1024
MEMORY_BOUND_BYTES = 50 * 1024 * 1024


class StreamedMultipart:
    """A multipart body with one WAV file of `size` bytes, generated as it is read."""

    def __init__(self, size: int, fields: dict[str, str]) -> None:
        self.boundary = uuid.uuid4().hex
        head = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="audio"; '
            'filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        )
        self._parts = [head.encode() + wav_header(size - 44)]
        self._zeros = size - 44
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._length = len(self._parts[0]) + self._zeros + len(self._tail)

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = 65536) -> bytes:
        if self._parts:
            return self._parts.pop()
        if self._zeros:
            chunk = min(size, self._zeros, 1024 * 1024)
            self._zeros -= chunk
            return bytes(chunk)
        tail, self._tail = self._tail, b""
        return tail


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_large_upload_does_not_grow_the_web_process_by_its_size(platform, api_key):
    """200 MB through the whole upload path: body, multipart parser, content check, hashing.

    A first small request takes the Idempotency-Key, so the large one (same key,
    different file) is refused with 422 only after all of that, and no job makes
    the worker send 200 MB to the fake provider.
    """
    api = platform.api(api_key)
    key = f"memory-{uuid.uuid4()}"
    with open(SAMPLE_AUDIO, "rb") as sample:
        first = api.post(
            f"{platform.url}/api/v1/jobs/",
            files={"audio": ("s.wav", sample, "audio/wav")},
            data={"title": "memory"},
            headers={"Idempotency-Key": key},
            timeout=30,
        )
    assert first.status_code == 201, first.text
    api.post(f"{platform.url}/api/v1/jobs/{first.json()['id']}/cancel/", timeout=10)

    pid = platform.web.pid
    # Reset the peak (VmHWM) so it measures this request alone.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    baseline = _status_kib(pid, "VmRSS")
    body = StreamedMultipart(UPLOAD_BYTES, {"title": "memory"})
    response = api.post(
        f"{platform.url}/api/v1/jobs/",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={body.boundary}",
            "Content-Length": str(len(body)),
            "Idempotency-Key": key,
        },
        timeout=300,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    growth = (_status_kib(pid, "VmHWM") - baseline) * 1024
    print(
        f"\nweb process peak RSS growth for a {UPLOAD_BYTES / 2**20:.0f} MiB upload: "
        f"{growth / 2**20:.1f} MiB (baseline {baseline / 1024:.1f} MiB)"
    )
    assert growth < MEMORY_BOUND_BYTES


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(platform, api_key):
    host, port = "127.0.0.1", int(platform.url.rsplit(":", 1)[1])
    jobs_before = Job.objects.count()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /api/v1/jobs/ HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                f"Authorization: Bearer {api_key}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {5 * 1024**3}\r\n\r\n"
            ).encode()
            + b"--b\r\n" * 100
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(payload)["error"]["code"] == "file_too_large"
    assert Job.objects.count() == jobs_before


def test_a_streamed_body_is_cut_off_as_it_passes_the_limit(settings):
    """The ASGI guard for chunked bodies with no Content-Length."""
    settings.UPLOAD_MAX_BYTES = 1000
    chunks = [{"type": "http.request", "body": b"x" * 400_000, "more_body": True}] * 10
    received: list[int] = []
    sent: list[dict[str, Any]] = []

    async def django_like_app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # what Django does on a disconnect: no response
            received.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/jobs/",
        "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
    }
    asyncio.run(BodySizeLimit(django_like_app)(scope, receive, send))
    assert sum(received) <= 1000 + 1024 * 1024  # stopped within one chunk of the limit
    assert len(chunks) >= 6  # the rest of the body was never read
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "file_too_large"


class RecordingHost(FakeServer):
    """Serves recordings and redirects over HTTP, like a CMS's media server."""

    def __init__(self) -> None:
        super().__init__()
        self.files = {
            "standup.wav": Path(SAMPLE_AUDIO).read_bytes(),
            "notes.txt": b"These are not the recordings you are looking for." * 10,
        }
        self._add_route("file", "GET", r"/files/(?P<name>[^/]+)", self._file)
        self._add_route("redirect", "GET", r"/redirect", self._redirect)

    def _authorize(self, request: Request) -> Reply | None:
        return None

    def _error(self, status: int, message: str) -> Reply:
        return json_reply({"error": message}, status)

    def _file(self, request: Request) -> Reply:
        body = self.files.get(request.params["name"])
        return Reply(200, body, "application/octet-stream") if body else self._error(404, "no")

    def _redirect(self, request: Request) -> Reply:
        return Reply(302, b"", "text/plain", {"Location": request.query["to"][0]})


@pytest.fixture(scope="module")
def recordings():
    with RecordingHost() as host:
        yield host


def submit_url(platform, api_key: str, url: str) -> Job:
    response = platform.api(api_key).post(
        f"{platform.url}/api/v1/jobs/", json={"audio_url": url, "title": "From a URL"}, timeout=30
    )
    assert response.status_code == 201, response.text
    return wait_for_job(response.json()["id"], timeout=90)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_an_audio_url_is_downloaded_once_checked_and_processed(platform, api_key, recordings):
    job = submit_url(platform, api_key, f"{recordings.url}/redirect?to=/files/standup.wav")
    assert job.status == Job.Status.COMPLETED, (job.error_code, job.error_message)
    assert job.original_filename == "standup.wav"
    assert Path(job.audio.path).read_bytes() == recordings.files["standup.wav"]
    assert len([r for r in recordings.requests if r.path == "/files/standup.wav"]) == 1
    assert job.meeting.segments.exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/redirect?to=http://169.254.169.254/latest/meta-data/", "audio_url_refused"),
        ("/files/notes.txt", "unsupported_media"),
        ("/files/missing.wav", "audio_url_http_error"),
    ],
    ids=["redirect-to-metadata-address", "not-media", "http-404"],
)
def test_a_bad_audio_url_fails_the_job_with_a_clear_code(platform, api_key, recordings, path, code):
    job = submit_url(platform, api_key, f"{recordings.url}{path}")
    assert (job.status, job.error_code) == (Job.Status.FAILED, code), job.error_message
    assert not job.audio
