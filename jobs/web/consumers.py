"""Websocket `/ws/jobs/{id}/`: the job's state on connect, then every change."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from jobs.models import Job
from jobs.web.access import can_view, is_staff
from jobs.web.broadcast import group_name, status_message
from jobs.web.tokens import results_url


class JobStatusConsumer(AsyncJsonWebsocketConsumer):
    job_id: str
    token: str | None
    _job: Job
    _under_token: bool = True

    async def connect(self) -> None:
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.token = (query.get("token") or [None])[0]
        message = await self._current_state()
        if message is None:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(group_name(self.job_id), self.channel_name)
        await self.accept()
        await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "job_id", None):
            await self.channel_layer.group_discard(group_name(self.job_id), self.channel_name)

    async def job_status(self, event: dict[str, Any]) -> None:
        # Access is checked again for every message: a revoked token or a
        # demoted user stops receiving updates at once.
        if await self._current_state() is None:
            await self.close(code=4403)
            return
        payload = dict(event["payload"])
        if self._under_token and event.get("meeting_id") and payload.get("results_url"):
            # The broadcast signs a fresh link for staff; a viewer keeps its own token.
            payload["results_url"] = results_url(self._job, event["meeting_id"], self.token)
        await self.send_json(payload)

    @database_sync_to_async
    def _current_state(self) -> dict[str, Any] | None:
        job = Job.objects.select_related("meeting").filter(id=self.job_id).first()
        if job is None or not can_view(self.scope.get("user"), self.token, job):
            return None
        self._job = job
        self._under_token = not is_staff(self.scope.get("user"))
        return dict(status_message(job, self.token if self._under_token else None))
