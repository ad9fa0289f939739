"""Shared machinery of the fake provider HTTP servers.

A :class:`FakeServer` is a stdlib ``ThreadingHTTPServer`` bound to
``127.0.0.1`` on an ephemeral port, served from a daemon thread of the test
process. Other processes (e.g. Celery workers) reach it over HTTP at
:attr:`FakeServer.url`, so every piece of state lives on the server object and
is guarded by ``self._lock``.

Every request goes through the same pipeline: read the body (fixed length or
chunked), log it, route it, authenticate it, apply the scripted
:class:`Fault` s, then call the route's handler. Subclasses supply the routes
(:meth:`FakeServer._add_route`), the authentication check and the provider's
error body shape.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit


def max_in_window(weighted: list[tuple[float, int]], window: float) -> int:
    """Largest sum of weights whose stamps fall within any ``window`` seconds
    (``[t, t + window)``, as a provider's sliding minute counts them)."""
    events = sorted(weighted)
    best = total = first = 0
    for stamp, weight in events:
        total += weight
        while stamp - events[first][0] >= window:
            total -= events[first][1]
            first += 1
        best = max(best, total)
    return best


class LoggedRequest(NamedTuple):
    """One request as received. ``timestamp`` is ``time.monotonic()``; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    timestamp: float


@dataclass
class Request:
    """A routed request as handed to a route handler."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any | None
    route: str
    params: dict[str, str]
    tag: str | None = None
    arrived: float = 0.0  # time.monotonic(), as logged


@dataclass
class Reply:
    """What a handler answers: status, raw body, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply."""
    return Reply(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def text_reply(text: str, status: int = 200) -> Reply:
    """A ``text/plain`` reply."""
    return Reply(status, text.encode(), "text/plain; charset=utf-8")


@dataclass
class Fault:
    """A scripted misbehaviour, applied to the next ``times`` matching requests.

    A request matches when ``route`` (a route name, see the fake's docs) and
    ``tag`` (a fake-specific sub-target, e.g. FakeOpenAI's json_schema name)
    are ``None`` or equal to the request's. ``times=None`` keeps the fault
    until :meth:`FakeServer.clear_faults`. A matching fault first sleeps
    ``delay`` seconds; then, if ``status`` is set, the request is answered with
    that error status (and ``Retry-After: retry_after`` when given) instead of
    reaching its handler. Delay-only faults (``status=None``) all apply; of the
    faults with a status only the first matching one is used up.
    """

    status: int | None = None
    times: int | None = 1
    route: str | None = None
    tag: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    message: str | None = None

    def matches(self, request: Request) -> bool:
        """Whether this fault applies to ``request``."""
        return (
            self.times != 0
            and self.route in (None, request.route)
            and self.tag in (None, request.tag)
        )


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class _Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block stop()
    fake: FakeServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    disable_nagle_algorithm = (
        True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    )
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    do_POST = do_DELETE = do_GET  # noqa: N815

    def _serve(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake._dispatch(self.command, self.path, headers, self._read_body())
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line."""


class FakeServer:
    """Base of the fakes: lifecycle, request log, faults and measurements.

    Use as a context manager (``with FakeX() as fake:``) or call
    :meth:`start` / :meth:`stop`. Route names used by ``route=`` arguments
    are listed by each subclass.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._in_flight: dict[str | None, int] = {}
        self._max_in_flight: dict[str | None, int] = {}
        self._server: _HTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and serve from a daemon thread."""
        if self._server is None:
            self._server = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
            self._server.fake = self
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"{type(self).__name__}-http",
                daemon=True,
            ).start()
        return self

    def stop(self) -> None:
        """Stop accepting connections and release the port (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:43123``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- faults ----------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Script ``fault``; returns it (its ``times`` counts down as it is used)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        route: str | None = None,
        tag: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with HTTP ``status``."""
        return self.add_fault(Fault(status, times, route, tag, message=message))

    def rate_limit(
        self,
        *,
        times: int | None = 1,
        retry_after: float = 1,
        route: str | None = None,
        tag: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with 429 and ``Retry-After: retry_after``."""
        return self.add_fault(Fault(429, times, route, tag, retry_after=retry_after))

    def delay_responses(
        self,
        seconds: float,
        *,
        times: int | None = None,
        route: str | None = None,
        tag: str | None = None,
    ) -> Fault:
        """Sleep ``seconds`` before handling the next ``times`` matching requests."""
        return self.add_fault(Fault(None, times, route, tag, delay=seconds))

    def clear_faults(self) -> None:
        """Drop every scripted fault."""
        with self._lock:
            self._faults.clear()

    # -- measurements --------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._log)

    def request_times(self, route: str | None = None) -> list[float]:
        """Monotonic arrival times of the requests (to ``route`` when given)."""
        return [
            r.timestamp
            for r in self.requests
            if route is None or self._match(r.method, r.path)[0] == route
        ]

    def max_requests_in_window(
        self, window: float = 60.0, route: str | None = None, since: float = 0.0
    ) -> int:
        """Largest number of requests (to ``route``, arrived from monotonic ``since``)
        that arrived within any ``window`` seconds."""
        stamps = [(t, 1) for t in self.request_times(route) if t >= since]
        return max_in_window(stamps, window)

    def max_concurrency(self, route: str | None = None) -> int:
        """Most requests (to ``route``, or to any route) being handled at the same time."""
        with self._lock:
            return self._max_in_flight.get(route, 0)

    # -- subclass hooks --------------------------------------------------------------

    def _add_route(self, name: str, method: str, pattern: str, handler: Handler) -> None:
        """Route ``method`` requests whose path fully matches ``pattern`` to ``handler``."""
        self._routes.append(_Route(name, method, re.compile(pattern), handler))

    def _authorize(self, request: Request) -> Reply | None:
        """Return an error reply when ``request`` is not authenticated."""
        raise NotImplementedError

    def _error(self, status: int, message: str) -> Reply:
        """The provider's error reply for ``status``."""
        raise NotImplementedError

    def _tag(self, request: Request) -> str | None:
        """The sub-target that :attr:`Fault.tag` is compared with."""
        return None

    # -- pipeline --------------------------------------------------------------------

    def _match(self, method: str, path: str) -> tuple[str | None, Handler | None, dict[str, str]]:
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route.name, route.handler, found.groupdict()
        return None, None, {}

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        try:
            payload = (
                json.loads(body) if "json" in headers.get("content-type", "") and body else None
            )
        except ValueError:
            payload = None
        arrived = time.monotonic()
        with self._lock:
            self._log.append(LoggedRequest(method, parts.path, headers, payload, arrived))
        name, handler, params = self._match(method, parts.path)
        if handler is None or name is None:
            return self._error(404, f"No route for {method} {parts.path}")
        request = Request(
            method,
            parts.path,
            parse_qs(parts.query),
            headers,
            body,
            payload,
            name,
            params,
            arrived=arrived,
        )
        request.tag = self._tag(request)
        denied = self._authorize(request)
        if denied is not None:
            return denied
        self._enter(name)
        try:
            return self._apply_faults(request) or handler(request)
        except Exception as exc:  # a bug in the fake: say so rather than drop the connection
            traceback.print_exc()
            return self._error(500, f"fake server error: {exc!r}")
        finally:
            self._leave(name)

    def _apply_faults(self, request: Request) -> Reply | None:
        delay, failing = 0.0, None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(request) or (fault.status is not None and failing is not None):
                    continue
                delay += fault.delay
                failing = fault if fault.status is not None else failing
                if fault.times is not None:
                    fault.times -= 1
            self._faults = [fault for fault in self._faults if fault.times != 0]
        if delay:
            time.sleep(delay)
        if failing is None or failing.status is None:
            return None
        reply = self._error(
            failing.status, failing.message or f"Injected fault: HTTP {failing.status}"
        )
        if failing.retry_after is not None:
            seconds = failing.retry_after
            reply.headers["Retry-After"] = (
                str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            )
        return reply

    def _enter(self, route: str) -> None:
        with self._lock:
            for key in (None, route):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
                self._max_in_flight[key] = max(
                    self._max_in_flight.get(key, 0), self._in_flight[key]
                )

    def _leave(self, route: str) -> None:
        with self._lock:
            for key in (None, route):
                self._in_flight[key] -= 1
