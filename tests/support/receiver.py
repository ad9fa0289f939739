"""A local HTTP endpoint that receives webhooks, for tests.

Built on the fakes' server, so the same faults apply (`fail`, `rate_limit`,
`delay_responses`); every delivery is kept with its raw body for signature
checks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tests.fakes.base import FakeServer, Reply, Request, json_reply


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class WebhookReceiver(FakeServer):
    """POST {url}/hooks/<anything> is recorded and answered 200 unless a fault says otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self._arrived = threading.Condition(self._lock)
        self._add_route("hook", "POST", r"/hooks/.*", self._hook)

    def hook_url(self, name: str = "cms") -> str:
        return f"{self.url}/hooks/{name}"

    def _authorize(self, request: Request) -> Reply | None:
        return None

    def _error(self, status: int, message: str) -> Reply:
        return json_reply({"error": message}, status)

    def _hook(self, request: Request) -> Reply:
        with self._arrived:
            self.received.append(
                Received(request.path, request.headers, request.body, time.monotonic())
            )
            self._arrived.notify_all()
        return json_reply({"ok": True})

    def wait_for(self, count: int = 1, timeout: float = 60.0) -> list[Received]:
        """Block until `count` webhooks have reached the hook handler.

        Requests answered by a scripted fault never reach it; count those with
        `request_times("hook")`.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.received)} of {count} webhooks arrived")
                self._arrived.wait(left)
            return list(self.received)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
        self.clear_faults()
