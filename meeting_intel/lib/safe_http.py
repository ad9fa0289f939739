"""Outbound HTTP to URLs a client gave us, without letting them reach inside.

Used for webhook deliveries and for fetching a job's `audio_url`. The contract:

- ``check_url(url)`` returns None when the URL may be fetched, else raises
  ``UnsafeURL(reason)``: only http/https, no credentials in the URL, no
  decimal/octal/hex/short IPv4 spellings (``2130706433``, ``0177.0.0.1``,
  ``0x7f.1``), and every address the host resolves to must be public: not
  private, loopback, link-local (169.254.169.254 included), CGNAT, ULA,
  multicast, reserved, unspecified, IPv4-mapped IPv6, NAT64, 6to4 or Teredo.
- ``safe_request(method, url, timeout=, max_bytes=)`` does the same checks,
  then connects to the very address it checked (the IP is pinned; the Host
  header, TLS SNI and certificate check still use the hostname), so a DNS
  answer that changes between check and connect (rebinding) cannot slip
  through. ``timeout`` is a total deadline over connecting, sending and
  reading, enforced by a watchdog that shuts the socket, so a server that
  trickles bytes cannot hold the caller. At most ``max_bytes`` of the body
  are kept (``truncated`` says whether there was more). Redirects are not
  followed unless asked; each followed hop is checked and pinned again.
  Proxy environment variables are ignored: a proxy would defeat the pinning.

``WEBHOOK_ALLOW_PRIVATE_HOSTS`` (development and tests) allows loopback,
private, CGNAT and ULA addresses. Link-local (cloud metadata), multicast and
unspecified addresses and odd IP spellings stay refused.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import certifi
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
# A label that inet_aton would read as a number: 127, 0177, 0x7f.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_TRANSITION_NETWORKS = [
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64 (well-known prefix)
    ipaddress.ip_network("64:ff9b:1::/48"),  # NAT64 (local-use prefix)
    ipaddress.ip_network("2002::/16"),  # 6to4
    ipaddress.ip_network("2001::/32"),  # Teredo
]
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # CGNAT
_NOT_UNICAST = [
    ipaddress.ip_network("0.0.0.0/8"),  # "this network"
    ipaddress.ip_network("fec0::/10"),  # deprecated IPv6 site-local
]
_DNS_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssrf-dns")


class UnsafeURL(ValueError):
    """The URL may not be fetched. `reason` says why, for logs and API errors.

    `transient` is True when the refusal may clear by itself (the host did
    not resolve), so a sender can retry later; policy refusals are permanent.
    """

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class FetchError(OSError):
    """The request failed on the network (refused, reset, TLS, bad HTTP)."""


class DeadlineExceeded(FetchError):
    """The total deadline passed; `response` holds what arrived before it, if anything."""

    def __init__(self, message: str, response: SafeResponse | None = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass
class SafeResponse:
    """An answer read under the caps. Header names are lower-case."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    truncated: bool
    url: str
    elapsed: float
    history: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


def check_url(url: str) -> None:
    """Raise UnsafeURL unless `url` may be fetched (this resolves the host)."""
    _resolve(url, None)


def address_problem(ip: IPAddress, *, allow_private: bool | None = None) -> str | None:
    """Why connecting to `ip` is refused, or None when it is allowed."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE_HOSTS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"{ip} is an IPv4-mapped IPv6 address"
        if any(ip in network for network in _TRANSITION_NETWORKS):
            return f"{ip} is a NAT64/6to4/Teredo address"
    if ip.is_link_local:
        return f"{ip} is link-local (cloud metadata lives here)"
    if (
        ip.is_multicast
        or ip.is_unspecified
        or (ip.is_reserved and not ip.is_loopback)
        or any(ip in network for network in _NOT_UNICAST)
    ):
        return f"{ip} is not a unicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_NETWORK:
        return f"{ip} is a carrier-grade NAT address"
    if ip.is_private or not ip.is_global:
        return f"{ip} is a private address"
    return None


def _host_literal(host: str) -> IPAddress | None:
    """The IP a host names literally; UnsafeURL for non-canonical IPv4 spellings."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    labels = host.split(".")
    if any(_NUMERIC_LABEL.match(label) for label in labels) and all(
        _NUMERIC_LABEL.match(label) or label == "" for label in labels
    ):
        raise UnsafeURL(f"{host!r} is an IP address in a non-canonical spelling")
    return None


def _lookup(host: str, port: int, watchdog: _Watchdog | None) -> list[Any]:
    if watchdog is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # getaddrinfo cannot be interrupted, so it runs aside and is waited for
    # only until the deadline.
    lookup = _DNS_POOL.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return lookup.result(timeout=watchdog.remaining())
    except TimeoutError:
        raise DeadlineExceeded(f"deadline exceeded while resolving {host}") from None


def _resolve(url: str, watchdog: _Watchdog | None) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("the URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURL("the host name is not valid") from None
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    literal = _host_literal(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        try:
            infos = _lookup(host, port, watchdog)
        except DeadlineExceeded:
            raise
        except (OSError, UnicodeError) as exc:
            raise UnsafeURL(f"could not resolve {host}: {exc}", transient=True) from None
        # Drop an IPv6 zone id ("fe80::1%eth0") before parsing.
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        addresses = tuple(dict.fromkeys(found))
        if not addresses:
            raise UnsafeURL(f"{host} has no addresses", transient=True)
    for ip in addresses:
        # One bad address refuses the host: a round-robin answer must not be
        # a coin toss between the internet and the metadata service.
        problem = address_problem(ip)
        if problem:
            if literal is None:
                problem = f"{host} resolves to a refused address: {problem}"
            raise UnsafeURL(problem)
    return _Target(parts.scheme, host, port, path, addresses)


class _Watchdog:
    """Shuts the current socket when the deadline passes, whatever it is blocked on.

    It holds the socket's file descriptor, not the object, because TLS
    wrapping moves the descriptor to a new socket object mid-connect.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.fired:
            raise TimeoutError("deadline exceeded")
        return left

    def watch(self, sock: socket.socket | None) -> None:
        """Watch `sock`; None before the caller closes it, so a reused fd is never shut."""
        with self._lock:
            self._fd = None if sock is None else sock.fileno()
            if self.fired:
                self._shut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        if self._fd is None or self._fd < 0:
            return
        view = socket.socket(fileno=self._fd)
        try:
            view.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            view.detach()

    def cancel(self) -> None:
        self._timer.cancel()


def _connection(target: _Target, watchdog: _Watchdog) -> http.client.HTTPConnection:
    def connect_pinned(
        _address: tuple[str, int], timeout: float, source: object = None
    ) -> socket.socket:
        errors = []
        for ip in target.addresses:
            try:
                sock = socket.create_connection((str(ip), target.port), watchdog.remaining())
            except OSError as exc:
                if time.monotonic() >= watchdog.deadline:
                    raise TimeoutError("deadline exceeded while connecting") from exc
                errors.append(f"{ip}: {exc}")
                continue
            watchdog.watch(sock)
            return sock
        raise FetchError("could not connect: " + "; ".join(errors))

    timeout = watchdog.remaining()
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        context = ssl.create_default_context(cafile=certifi.where())
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    # http.client connects through this hook; the Host header and the TLS
    # server name keep using target.host.
    conn._create_connection = connect_pinned  # type: ignore[attr-defined]
    return conn


def _one_request(
    target: _Target,
    url: str,
    method: str,
    headers: dict[str, str],
    data: bytes | None,
    max_bytes: int,
    sink: IO[bytes] | None,
    watchdog: _Watchdog,
    started: float,
) -> SafeResponse:
    conn: http.client.HTTPConnection | None = None
    partial: SafeResponse | None = None
    try:
        conn = _connection(target, watchdog)
        conn.connect()
        # Kept here: http.client drops conn.sock once a response says it will close.
        sock = conn.sock
        conn.request(method, target.path, body=data, headers=headers)
        response = conn.getresponse()
        partial = SafeResponse(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            b"",
            False,
            url,
            0.0,
        )
        kept, size, truncated = [], 0, False
        while not truncated:
            sock.settimeout(watchdog.remaining())
            # Ask for one byte past the cap, to learn whether there was more.
            chunk = response.read(min(CHUNK_BYTES, max_bytes + 1 - size))
            if watchdog.fired:
                raise TimeoutError("deadline exceeded")
            if not chunk:
                break
            if size + len(chunk) > max_bytes:
                chunk, truncated = chunk[: max_bytes - size], True
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
            else:
                kept.append(chunk)
        partial.content = b"".join(kept)
        partial.truncated = truncated
        partial.elapsed = time.monotonic() - started
        return partial
    except TimeoutError as exc:
        if partial is not None:
            partial.elapsed = time.monotonic() - started
        raise DeadlineExceeded("deadline exceeded", partial) from exc
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if watchdog.fired:
            raise DeadlineExceeded("deadline exceeded", partial) from exc
        if isinstance(exc, FetchError):
            raise
        raise FetchError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        watchdog.watch(None)
        if conn is not None:
            conn.close()


def safe_request(
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    allow_redirects: bool = False,
    sink: IO[bytes] | None = None,
) -> SafeResponse:
    """Make one request to a client-supplied URL under the guard and the caps.

    Raises UnsafeURL before any connection when the URL (or a redirect's
    target) is refused, DeadlineExceeded when `timeout` seconds pass (total,
    including every redirect hop), FetchError for other network failures.
    An HTTP error status is not an exception. With `sink`, the body is
    written there instead of `content` (for large downloads); `truncated`
    still reports a body longer than `max_bytes`.
    """
    started = time.monotonic()
    watchdog = _Watchdog(timeout)
    history: list[str] = []
    try:
        while True:
            target = _resolve(url, watchdog)
            response = _one_request(
                target, url, method, dict(headers or {}), data, max_bytes, sink, watchdog, started
            )
            response.history = history
            if not (allow_redirects and response.is_redirect):
                return response
            if len(history) >= MAX_REDIRECTS:
                raise FetchError(f"more than {MAX_REDIRECTS} redirects")
            history.append(url)
            url = urljoin(url, response.headers["location"])
            if response.status_code in (301, 302, 303) and method != "HEAD":
                method, data = "GET", None
            if sink is not None:
                sink.seek(0)
                sink.truncate()
    finally:
        watchdog.cancel()
