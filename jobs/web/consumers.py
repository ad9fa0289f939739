"""Websocket `/ws/jobs/{id}/`: the job's state on connect, then every change.

Access is decided at connect (a staff session, or a viewer token's signature,
expiry and version against the job's row) and afterwards from what arrives,
without a query per message: each broadcast carries the job's viewer-token
version, so a socket under a revoked token closes on the next event (the
admin's revoke action sends one at once); a token socket closes when its token
expires; a staff socket closes when its session logs out or its user is
demoted (signals in jobs/apps.py), and every socket re-checks its grant every
STAFF_SOCKET_RECHECK_SECONDS as a backstop (one query), so nothing outlives
its access by more than that.

If Redis (the channel layer) is unreachable a socket is accepted and closed
with 1013 (try again later), and an open one is closed the same way when the
layer fails under it: the page falls back to polling.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

import redis
from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from jobs.broadcast import (
    group_name,
    staff_session_group,
    staff_user_group,
    status_message,
)
from jobs.models import Job
from jobs.tokens import ViewerClaims, claims_allow, read_viewer_token, results_url
from jobs.web.access import is_staff

logger = logging.getLogger(__name__)

FORBIDDEN = 4403
TRY_AGAIN_LATER = 1013
_LAYER_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError)


class JobStatusConsumer(AsyncJsonWebsocketConsumer):
    job_id: str
    token: str | None = None
    claims: ViewerClaims | None = None  # None for a staff socket
    _job: Job
    _groups: tuple[str, ...] = ()
    _recheck: asyncio.Task[None] | None = None
    _layer_lost = False
    _closed = False

    # -- the channel layer, guarded ------------------------------------------------

    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._guarded_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        # Channels sets this to the layer's receive; a Redis error there would
        # end the consumer with an exception. Turned into a close instead.
        self._layer_receive = receive

    async def _guarded_receive(self) -> dict[str, Any]:
        if not self._layer_lost:
            try:
                return await self._layer_receive()
            except _LAYER_ERRORS:
                logger.warning("websocket: channel layer unreachable", exc_info=True)
                self._layer_lost = True
                return {"type": "layer.lost"}
        await asyncio.Event().wait()  # only the client's side is left to listen to
        raise AssertionError("unreachable")

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes old database connections before every message (a thread
        # hop per subscriber per broadcast); this consumer reaches the database
        # only through database_sync_to_async, which does that itself.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def layer_lost(self, message: dict[str, Any]) -> None:
        if self.accepted:
            await self.close(code=TRY_AGAIN_LATER)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        # Once only: a lost layer, a revocation and a re-check may all decide to close.
        if not self._closed:
            self._closed = True
            await super().close(code=code, reason=reason)

    # -- the websocket ---------------------------------------------------------------

    accepted = False

    async def connect(self) -> None:
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.token = (query.get("token") or [None])[0]
        message = await self._grant()
        if message is None:
            await self.close(code=FORBIDDEN)
            return
        groups = [group_name(self.job_id)]
        if self.claims is None:
            user = self.scope["user"]
            groups.append(staff_user_group(user.pk))
            session_key = getattr(self.scope.get("session"), "session_key", None)
            if session_key:
                groups.append(staff_session_group(session_key))
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except _LAYER_ERRORS:
            logger.warning("websocket: channel layer unreachable at connect", exc_info=True)
            self._groups = tuple(groups)
            await self.accept()
            self.accepted = True
            await self.close(code=TRY_AGAIN_LATER)
            return
        self._groups = tuple(groups)
        await self.accept()
        self.accepted = True
        await self.send_json(message)
        self._recheck = asyncio.create_task(self._recheck_periodically())

    async def disconnect(self, code: int) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
        if self._layer_lost:
            return
        try:
            for group in self._groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except _LAYER_ERRORS:
            logger.warning("websocket: could not leave groups; they expire", exc_info=True)

    async def job_status(self, event: dict[str, Any]) -> None:
        if self.claims is not None and not claims_allow(
            self.claims, self.job_id, event.get("viewer_token_version", self.claims.version)
        ):
            await self.close(code=FORBIDDEN)  # revoked or expired: decided from the event
            return
        payload = dict(event["payload"])
        if self.claims is not None and event.get("meeting_id") and payload.get("results_url"):
            # The broadcast signs a fresh link for staff; a viewer keeps its own token.
            payload["results_url"] = results_url(self._job, event["meeting_id"], self.token)
        await self.send_json(payload)

    async def staff_revoked(self, event: dict[str, Any]) -> None:
        if self.claims is None:
            await self.close(code=FORBIDDEN)

    # -- access ----------------------------------------------------------------------

    @database_sync_to_async
    def _grant(self) -> dict[str, Any] | None:
        """The current state if this socket may see the job (one query), else None."""
        job = Job.objects.select_related("meeting").filter(id=self.job_id).first()
        if job is None:
            return None
        self._job = job
        if is_staff(self.scope.get("user")):
            self.claims = None
            return dict(status_message(job))
        claims = read_viewer_token(self.token)
        if claims is None or not claims_allow(claims, job.id, job.viewer_token_version):
            return None
        self.claims = claims
        return dict(status_message(job, self.token))

    async def _still_allowed(self) -> bool:
        if self.claims is None:
            # A fresh store re-reads the session (the scope's has it cached), then
            # channels loads its user and checks the session's auth hash.
            session_key = getattr(self.scope.get("session"), "session_key", None)
            store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
            return is_staff(await get_user({"session": store}))
        version = await database_sync_to_async(
            lambda: (
                Job.objects.filter(id=self.job_id)
                .values_list("viewer_token_version", flat=True)
                .first()
            )
        )()
        return version is not None and claims_allow(self.claims, self.job_id, version)

    async def _recheck_periodically(self) -> None:
        interval = settings.STAFF_SOCKET_RECHECK_SECONDS
        while True:
            # Spread out, so sockets opened together do not all query together.
            delay = interval * random.uniform(0.8, 1.0)
            if self.claims is not None:
                delay = max(0.0, min(delay, self.claims.expires_at - time.time()))
            await asyncio.sleep(delay)
            try:
                allowed = await self._still_allowed()
            except Exception:
                logger.warning("websocket: access re-check failed; retrying", exc_info=True)
                continue
            if not allowed:
                await self.close(code=FORBIDDEN)
                return
