"""Django's built-in middleware, run on the event loop.

In an async stack Django runs each ``MiddlewareMixin`` middleware's
``process_request`` and ``process_response`` through ``sync_to_async``: two
hops between the event loop and a thread per middleware per request, around
a view that needs at most one. The hooks below do no I/O (they read headers
and cookies, set attributes and lazy objects), so these subclasses call them
inline on the loop. The two places that can do I/O keep their thread: a
session save (the database) and CSRF's check of an unsafe non-exempt request
(it may parse a form body).

Two more savings: /api/v1/ paths run API_MIDDLEWARE, the part of the chain
the API needs; and a GET whose view is marked ``serves_on_loop`` (the hot job
read) is handled without Django's per-request thread and the request signals
sent to it (``ASGIHandler._handle_on_loop``).

MIDDLEWARE keeps Django's own names (its deploy checks look for them); the
ASGI handler loads these subclasses in their place (``ASGIHandler`` below).
Hand-written because Django ships no async variants of these (each is a thin
subclass of Django's own class; the logic stays Django's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi, base
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class InlineHooks:
    """``__acall__`` that runs the middleware's hooks on the loop, without a thread."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[attr-defined]
        if hasattr(self, "process_response"):
            response = await self.aprocess_response(request, response)
        return response

    async def aprocess_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if self.response_needs_thread(request):
            return await sync_to_async(self.process_response)(request, response)  # type: ignore[attr-defined]
        return self.process_response(request, response)  # type: ignore[attr-defined]

    def response_needs_thread(self, request: HttpRequest) -> bool:
        """Whether process_response may do I/O for this request (never, by default)."""
        return False


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """request.user stays lazy: it is loaded in the view's thread, if the view asks."""


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    pass


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """Saving a changed session is database work: that alone goes to a thread."""

    def response_needs_thread(self, request: HttpRequest) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Storing messages may read the session (the database): only then in a thread."""

    def response_needs_thread(self, request: HttpRequest) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """Safe methods and exempt views (the API) are decided inline; the rest may read a form body."""

    async def process_view(
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponse | None:
        check = super().process_view
        if request.method in _SAFE_METHODS or getattr(callback, "csrf_exempt", False):
            return check(request, callback, callback_args, callback_kwargs)
        return await sync_to_async(check)(request, callback, callback_args, callback_kwargs)


INLINE = {
    "django.middleware.security.SecurityMiddleware": SecurityMiddleware,
    "django.contrib.sessions.middleware.SessionMiddleware": SessionMiddleware,
    "django.middleware.common.CommonMiddleware": CommonMiddleware,
    "django.middleware.csrf.CsrfViewMiddleware": CsrfViewMiddleware,
    "django.contrib.auth.middleware.AuthenticationMiddleware": AuthenticationMiddleware,
    "django.contrib.messages.middleware.MessageMiddleware": MessageMiddleware,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
}


@contextmanager
def _inline_middleware(listed: list[str]) -> Iterator[None]:
    """MIDDLEWARE set to `listed` with Django's classes replaced by the inline ones,
    while a chain is built."""
    shipped = settings.MIDDLEWARE
    settings.MIDDLEWARE = [
        f"{INLINE[path].__module__}.{INLINE[path].__qualname__}" if path in INLINE else path
        for path in listed
    ]
    try:
        yield
    finally:
        settings.MIDDLEWARE = shipped


class _ApiChain(base.BaseHandler):
    """The chain of API_MIDDLEWARE, for /api/v1/ paths."""

    def load_middleware(self, is_async: bool = False) -> None:
        with _inline_middleware(settings.API_MIDDLEWARE):
            super().load_middleware(is_async)

    def resolve_request(self, request: HttpRequest) -> Any:
        """The on-loop lane resolved the path already: that match, not a second resolve."""
        match = request.__dict__.pop("_lane_match", None)
        if match is None or hasattr(request, "urlconf"):
            return super().resolve_request(request)
        request.resolver_match = match
        return match


class ASGIHandler(asgi.ASGIHandler):
    """Django's ASGI handler with the middleware chains built from the inline classes.

    /api/v1/ paths run API_MIDDLEWARE, the part of MIDDLEWARE the API needs (the
    security headers, the error object, the log context); sessions, CSRF,
    auth, messages and static files serve the pages and admin only.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        with _inline_middleware(settings.MIDDLEWARE):
            super().load_middleware(is_async)
        self._api = _ApiChain()
        self._api.load_middleware(is_async)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PREFIX):
            return await self._api.get_response_async(request)
        return await super().get_response_async(request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = _on_loop_match(scope) if scope["type"] == "http" else None
        if match is not None:
            await self._handle_on_loop(scope, receive, send, match)
        else:
            await super().__call__(scope, receive, send)

    async def _handle_on_loop(
        self, scope: dict[str, Any], receive: Any, send: Any, match: ResolverMatch
    ) -> None:
        """Django's `handle` for a view that serves on the loop: the API chain and the
        view, without the per-request thread and the request signals' hops to it.

        Django runs each request in a ThreadSensitiveContext (a thread started
        and joined per request) and sends request_started and request_finished
        in it, so their receivers can close that thread's database
        connections. A view marked `serves_on_loop` uses no Django connection
        on the loop; whatever it hands to a thread closes its connections
        there itself (`meeting_intel.lib.async_db.own_connections`).
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(asgi.get_script_prefix(scope))
        try:
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                response = error_response
            else:
                request.served_on_loop = True  # type: ignore[attr-defined]
                request._lane_match = match  # type: ignore[attr-defined]
                response = await self._api.get_response_async(request)
            response._handler_class = self.__class__
            try:
                await self.send_response(response, send)
            finally:
                # HttpResponse.close() without its request_finished signal.
                for closer in response._resource_closers:
                    try:
                        closer()
                    except Exception:  # as HttpResponse.close() does
                        pass
                response._resource_closers.clear()
                response.closed = True
        finally:
            body_file.close()


def _on_loop_match(scope: dict[str, Any]) -> ResolverMatch | None:
    """The match of a GET under /api/v1/ whose view says it serves on the loop
    (`serves_on_loop()`), else None."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if scope["method"] != "GET" or not path.startswith(API_PREFIX):
        return None
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return None
    serves = getattr(match.func, "serves_on_loop", None)
    return match if serves is not None and serves() else None


# The API proper; /api/docs/ (a page for people, with the session) and the schema keep the full chain.
API_PREFIX = "/api/v1/"
