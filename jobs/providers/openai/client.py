"""The OpenAI SDK client every OpenAI module uses, admitting each request as it is sent.

The fleet-wide limits (jobs.providers.limits) are charged inside the
client's HTTP transport, right before a request's bytes go out, and settled
when its answer is in: whatever the SDK sends (a schema fallback, a repair's
second ask, an embedding batch, a retry of its own) passes through here, so
no request reaches OpenAI unadmitted and none is admitted long before it is
sent. The job's fence (jobs.providers.base.before_paid_request) runs here
too, after admission, so a cancelled job pays for nothing more.

A request counts from the moment it is admitted until a full window after
its answer arrived: OpenAI counts it somewhere in between, so no minute at
the provider holds more than the limit, however late a loaded host delivers
it. A request's tokens are estimated from its size (about four characters a
token, the way OpenAI estimates them) plus the answer's cap
(`max_completion_tokens`, else EXPECTED_COMPLETION_TOKENS), and settled with
the `usage` the answer reports.

A transport rather than the SDK's `event_hooks`: a hook cannot see the
answer's body (the usage) before the SDK reads it, nor take a request back
when the fence refuses it. The SDK's HTTP library is httpx2; its retries stay
off (`max_retries=0`) since retry policy lives in the pipeline.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
from django.conf import settings

from jobs.providers import limits
from jobs.providers.base import before_paid_request
from meetings.transcript import estimate_tokens

# Budgeted for an answer whose request sets no cap, until its real size is known.
EXPECTED_COMPLETION_TOKENS = 800


def client(timeout: float) -> openai.OpenAI:
    """An SDK client on OPENAI_BASE_URL whose every request is admitted by the limits."""
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=timeout,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(
            transport=AdmittingTransport(httpx2.HTTPTransport(), hold=timeout)
        ),
    )


class AdmittingTransport(httpx2.BaseTransport):
    """Admit, fence, send, settle: one request at a time, on the caller's thread.

    `hold` bounds how long an unanswered request keeps its entries (the
    client's timeout): a worker that dies mid-request frees them after that.
    Deferred (a long wait) and JobLost (the fence) propagate unchanged; the
    SDK wraps only its HTTP library's errors.
    """

    def __init__(self, inner: httpx2.BaseTransport, hold: float) -> None:
        self._inner = inner
        self._hold = hold

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        needed = windows(request)
        permit = limits.admit(needed, self._hold)
        try:
            before_paid_request()
        except BaseException:
            limits.release(permit)
            raise
        try:
            response = self._inner.handle_request(request)
            response.read()
        except BaseException:
            limits.settle(permit)  # it may have reached OpenAI: the estimate stands
            raise
        limits.settle(permit, used_tokens(needed, response))
        return response

    def close(self) -> None:
        self._inner.close()


def windows(request: httpx2.Request) -> list[limits.Window]:
    """The windows one request to OpenAI takes a share of, by its endpoint.

    OpenAI limits each model separately: chat (OPENAI_MODEL) and the
    embedding model have request and token budgets, transcription a request
    budget; anything else counts as a chat request.
    """
    path = request.url.path
    if path.endswith("/audio/transcriptions"):
        return [
            limits.Window(
                f"openai:{settings.OPENAI_TRANSCRIPTION_MODEL}:requests",
                1,
                settings.OPENAI_TRANSCRIPTION_REQUESTS_PER_MINUTE,
            )
        ]
    body = _json(request.content) if "json" in request.headers.get("content-type", "") else {}
    prompt = estimate_tokens(request.content.decode(errors="replace")) if body else 0
    if path.endswith("/embeddings"):
        model = str(body.get("model") or settings.OPENAI_EMBEDDING_MODEL)
        return [
            limits.Window(
                f"openai:{model}:requests", 1, settings.OPENAI_EMBEDDING_REQUESTS_PER_MINUTE
            ),
            limits.Window(
                f"openai:{model}:tokens",
                prompt,
                settings.OPENAI_EMBEDDING_TOKENS_PER_MINUTE,
                estimated=True,
            ),
        ]
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or EXPECTED_COMPLETION_TOKENS
    return [
        limits.Window("openai:requests", 1, settings.OPENAI_REQUESTS_PER_MINUTE),
        limits.Window(
            "openai:tokens", prompt + int(cap), settings.OPENAI_TOKENS_PER_MINUTE, estimated=True
        ),
    ]


def used_tokens(needed: list[limits.Window], response: httpx2.Response) -> dict[str, int]:
    """The tokens the answer reports, by token window (empty: the estimates stand)."""
    usage = _json(response.content).get("usage") if response.status_code < 400 else None
    if not isinstance(usage, dict) or not isinstance(usage.get("total_tokens"), int):
        return {}
    return {w.resource: usage["total_tokens"] for w in needed if w.resource.endswith(":tokens")}


def _json(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
