"""Request bodies: a cap per route that bites before (or while) the body is read.

Only the upload routes (``settings.UPLOAD_PATHS``: the API's submit and the
admin's add-a-job form) take a multipart body up to UPLOAD_MAX_BYTES; every
other body, and any non-multipart body on those routes, is capped at
REQUEST_BODY_MAX_BYTES. Three layers hold the caps, each answering 413 with
SPEC's error object:

- ``BodySizeLimit`` wraps the ASGI application. Django's ASGI handler reads a
  whole body (spooled to disk) before any view runs, so the cap must act
  before it: a declared ``Content-Length`` over the route's cap is answered at
  once, a body that grows past it (chunked uploads) is cut off, and a POST to
  an upload route whose credentials ``upload_allowed`` refuses is answered
  401 before a byte of its body is read.
- ``UploadLimitHandler`` is the first Django upload handler, for servers that
  hand Django the raw stream (WSGI, the test client): it stops the multipart
  parser as soon as a file passes the cap.
- ``JSONParser`` and ``FormParser`` read at most the small cap (DRF's own
  parsers ignore DATA_UPLOAD_MAX_MEMORY_SIZE); a multipart text field over
  DATA_UPLOAD_MAX_MEMORY_SIZE raises Django's RequestDataTooBig, which the
  API's error handler answers 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from meeting_intel.http import strict_json

# Room for the multipart framing and the form fields beside the file.
BODY_OVERHEAD_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
UploadCheck = Callable[[Scope], Awaitable[bool]]


def body_limit() -> int:
    """The cap of a multipart body on an upload route."""
    return settings.UPLOAD_MAX_BYTES + BODY_OVERHEAD_BYTES


def too_large_message() -> str:
    return f"The upload exceeds the limit of {settings.UPLOAD_MAX_BYTES} bytes."


def body_too_large_message() -> str:
    return f"The request body exceeds the limit of {settings.REQUEST_BODY_MAX_BYTES} bytes."


class UploadTooLarge(RequestDataTooBig):
    """A body or file over UPLOAD_MAX_BYTES; the API answers 413 `file_too_large`."""


class BodyTooLarge(RequestDataTooBig):
    """A non-upload body over REQUEST_BODY_MAX_BYTES; the API answers 413 `body_too_large`."""


def is_upload(method: str, path: str, content_type: str) -> bool:
    return (
        method == "POST"
        and path in settings.UPLOAD_PATHS
        and content_type.split(";")[0].strip().lower() == "multipart/form-data"
    )


class UploadLimitHandler(FileUploadHandler):
    """Passes chunks on to the next handler until a file passes its route's cap."""

    def _upload_route(self) -> bool:
        request = self.request
        if request is None:
            return True
        return is_upload(request.method or "", request.path, request.content_type or "")

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        if not self._upload_route():
            if content_length and content_length > settings.REQUEST_BODY_MAX_BYTES:
                raise BodyTooLarge(body_too_large_message())
            self._cap = settings.REQUEST_BODY_MAX_BYTES
            return
        self._cap = settings.UPLOAD_MAX_BYTES
        if content_length and content_length > body_limit():
            raise UploadTooLarge(too_large_message())

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        cap = getattr(self, "_cap", settings.UPLOAD_MAX_BYTES)
        if start + len(raw_data) > cap:
            if cap == settings.UPLOAD_MAX_BYTES:
                raise UploadTooLarge(too_large_message())
            raise BodyTooLarge(body_too_large_message())
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _read_capped(stream: Any) -> bytes:
    if stream is None:
        return b""
    cap = settings.REQUEST_BODY_MAX_BYTES
    raw = stream.read(cap + 1)
    if len(raw) > cap:
        raise BodyTooLarge(body_too_large_message())
    return raw


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, capped and strict: 413 over the cap; 400 for NaN,
    ±Infinity, lone surrogates and deep nesting."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = _read_capped(stream)
        try:
            return strict_json.loads(raw.decode(encoding), allow_nul=True)
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {encoding}.") from None
        except strict_json.StrictJSONError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class FormParser(parsers.FormParser):
    """DRF's form parser, capped at REQUEST_BODY_MAX_BYTES (413 beyond)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = _read_capped(stream)
        try:
            return QueryDict(raw, encoding=encoding)
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {encoding}.") from None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def error_json(code: str, message: str, details: dict[str, Any]) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_413(send: Send, upload: bool) -> None:
    if upload:
        body = error_json(
            "file_too_large", too_large_message(), {"max_bytes": settings.UPLOAD_MAX_BYTES}
        )
    else:
        body = error_json(
            "body_too_large",
            body_too_large_message(),
            {"max_bytes": settings.REQUEST_BODY_MAX_BYTES},
        )
    await _answer(send, 413, body, [])


async def _send_401(send: Send, scope: Scope) -> None:
    if scope.get("path", "").startswith("/api/"):
        body = error_json(
            "unauthenticated", "An active API key is needed: 'Authorization: Bearer <key>'.", {}
        )
        await _answer(send, 401, body, [(b"www-authenticate", b'Bearer realm="api"')])
    else:
        body = error_json("forbidden", "A staff login with permission to add jobs is needed.", {})
        await _answer(send, 403, body, [])


class BodySizeLimit:
    """ASGI middleware: each route's body cap, and credentials before an upload is read."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        upload_allowed: UploadCheck | None = None,
    ) -> None:
        self.app = app
        self.upload_allowed = upload_allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
        upload = is_upload(scope.get("method", "POST"), scope.get("path", ""), content_type)
        if upload and self.upload_allowed is not None and not await self.upload_allowed(scope):
            await _send_401(send, scope)
            return
        limit = body_limit() if upload else settings.REQUEST_BODY_MAX_BYTES
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, upload)
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
            await _send_413(send, upload)
