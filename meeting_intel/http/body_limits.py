"""Request bodies the API accepts: size caps that bite while the body streams in.

Two layers refuse a body over UPLOAD_MAX_BYTES, so nothing large is read
only to be thrown away:

- ``BodySizeLimit`` wraps the ASGI application. Django's ASGI handler reads a
  whole body (spooled to disk) before any view runs, so the cap must act
  before it: a declared ``Content-Length`` over the cap is answered 413 at
  once, and a body that grows past it (chunked uploads) is cut off.
- ``UploadLimitHandler`` is the first Django upload handler, for servers
  that hand Django the raw stream (WSGI, the test client): it stops the
  multipart parser as soon as a file passes the cap.

Either way the answer is SPEC's error object with status 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from meeting_intel.http import strict_json

# Room for the multipart framing and the form fields beside the file.
BODY_OVERHEAD_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def body_limit() -> int:
    return settings.UPLOAD_MAX_BYTES + BODY_OVERHEAD_BYTES


def too_large_message() -> str:
    return f"The upload exceeds the limit of {settings.UPLOAD_MAX_BYTES} bytes."


class UploadTooLarge(RequestDataTooBig):
    """A body or file over UPLOAD_MAX_BYTES; the API answers 413."""


class UploadLimitHandler(FileUploadHandler):
    """Passes chunks on to the next handler until a file passes UPLOAD_MAX_BYTES."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        if content_length and content_length > body_limit():
            raise UploadTooLarge(too_large_message())

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.UPLOAD_MAX_BYTES:
            raise UploadTooLarge(too_large_message())
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser made strict: 400 for NaN, ±Infinity, lone surrogates, deep nesting."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            return strict_json.loads(raw.decode(encoding))
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {encoding}.") from None
        except strict_json.StrictJSONError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "file_too_large",
                "message": too_large_message(),
                "details": {"max_bytes": settings.UPLOAD_MAX_BYTES},
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware: 413 for HTTP bodies over UPLOAD_MAX_BYTES (plus form overhead)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit()
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django treats a disconnect as an aborted request and
                    # sends nothing; the 413 is sent below instead.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _send_413(send)
