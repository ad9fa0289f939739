"""The one translation of OpenAI SDK errors into pipeline errors.

Clients are built with max_retries=0, so every failure reaches us at once:
rate limits, timeouts, connection errors, 408, 409 and 5xx are transient
(with the server's Retry-After when it sent one); bad credentials and every
other refusal are permanent.
"""

from __future__ import annotations

import openai

from jobs.errors import PermanentError, PipelineError, TransientError


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def translate(exc: openai.APIError, rejected_code: str) -> PipelineError:
    """The pipeline error for `exc`; `rejected_code` names a permanent 4xx refusal."""
    if isinstance(exc, openai.RateLimitError):
        return TransientError("provider_rate_limited", str(exc), _retry_after(exc))
    if isinstance(exc, openai.APITimeoutError):  # before its base class, APIConnectionError
        return TransientError("provider_timeout", f"OpenAI timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return TransientError("provider_unreachable", f"OpenAI: {exc}")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return PermanentError("provider_auth", "OpenAI rejected the API key")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            return TransientError("provider_unavailable", str(exc), _retry_after(exc))
        return PermanentError(rejected_code, str(exc))
    # An APIError without a status: the server answered with something unreadable.
    return TransientError("provider_unavailable", f"OpenAI: {exc}")
