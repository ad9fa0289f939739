"""ASGI entry point: HTTP through Django, websockets through Channels."""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")
django.setup(set_prefix=False)

from meeting_intel.http.async_middleware import ASGIHandler  # noqa: E402

# What django.core.asgi.get_asgi_application() builds, with every middleware on the loop.
django_asgi_app = ASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from jobs.api.auth import upload_allowed  # noqa: E402
from jobs.web.routing import websocket_urlpatterns  # noqa: E402
from meeting_intel.http.body_limits import BodySizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Oversized bodies, and uploads without credentials, are refused
        # before Django spools them to disk.
        "http": BodySizeLimit(django_asgi_app, upload_allowed),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# What start-up built lives as long as the process: out of the collector's
# reach, so a full collection under load walks the objects of requests only
# (a web process holds some 190,000 objects after start-up; walking them took
# 90-360 ms of the loop in one pass, a stall every request in flight waits out).
gc.freeze()
