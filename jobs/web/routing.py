from __future__ import annotations

from django.urls import path

from jobs.web.consumers import JobStatusConsumer

websocket_urlpatterns = [
    path("ws/jobs/<uuid:job_id>/", JobStatusConsumer.as_asgi()),
]
