"""The Content-Security-Policy of every server-rendered page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

# Pages load nothing from elsewhere and run no inline script, so a transcript
# that slipped past escaping still could not execute. Progress bars are
# <progress>/<meter> elements, so no inline styles are needed either.
# The websocket origin is named too: older browsers do not match ws: to 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self' ws://{host} wss://{host}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def with_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        # get_host() is checked against ALLOWED_HOSTS, so it cannot inject a directive.
        policy = CONTENT_SECURITY_POLICY.format(host=request.get_host())
        response.setdefault("Content-Security-Policy", policy)
        return response

    return wrapped
