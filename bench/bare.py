"""The framework's floor: a bare Django ASGI app, no apps, no middleware, one JSON view.

Scenario 6 serves it with the Procfile's `web` command (only the module swapped:
same uvicorn flags, same WEB_CONCURRENCY workers) beside the platform, so the
API's figures have a baseline taken on the same machine in the same run.
The view answers a body of the same size as GET /api/v1/jobs/{id}/.
"""

from __future__ import annotations

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-bare-not-for-production",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

BODY = {"id": "00000000-0000-0000-0000-000000000000", "padding": "x" * 480}


def job(request: HttpRequest, pk: object) -> JsonResponse:
    return JsonResponse(BODY)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("job/<uuid:pk>/", job), path("healthz", healthz)]
application = get_asgi_application()
