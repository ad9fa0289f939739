"""Analysis through the official OpenAI SDK with Structured Outputs.

The SDK's own retries are off: retry policy lives in the pipeline, which
honours `Retry-After` beyond the SDK's 120-second ceiling without holding a
worker. Errors are translated here into TransientError or PermanentError.
"""

from __future__ import annotations

import json

import openai
from django.conf import settings
from pydantic import ValidationError

from .. import analysis
from ..errors import PermanentError, TransientError
from .base import StepOutput, Transcript


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


class OpenAIAnalyzer:
    name = "openai"

    def __init__(self) -> None:
        self._client = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=0,
        )

    def run(self, step: str, transcript: Transcript) -> StepOutput:
        """Ask the model for one step's answer in the step's strict JSON schema."""
        try:
            completion = self._client.chat.completions.create(
                model=settings.OPENAI_MODEL,
                messages=[
                    {"role": "system", "content": analysis.PROMPTS[step]},
                    {"role": "user", "content": transcript.as_prompt()},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": step,
                        "schema": analysis.json_schema(step),
                        "strict": True,
                    },
                },
            )
        except openai.RateLimitError as exc:
            raise TransientError("provider_rate_limited", str(exc), _retry_after(exc)) from exc
        except openai.APITimeoutError as exc:
            raise TransientError("provider_timeout", f"OpenAI timed out: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise TransientError("provider_unreachable", f"OpenAI: {exc}") from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise PermanentError("provider_auth", "OpenAI rejected the API key") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise TransientError(
                    "provider_unavailable", str(exc), _retry_after(exc)
                ) from exc
            raise PermanentError("analysis_rejected", str(exc)) from exc

        choice = completion.choices[0]
        usage = completion.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        if choice.message.refusal:
            raise PermanentError("analysis_refused", choice.message.refusal)
        if choice.finish_reason == "length":
            raise PermanentError("analysis_truncated", f"The {step} answer was cut off")
        try:
            data = analysis.validate(step, choice.message.content or "")
        except (ValidationError, json.JSONDecodeError) as exc:
            raise PermanentError("analysis_invalid", f"The {step} answer was malformed: {exc}")
        return StepOutput(data=data, prompt_tokens=tokens[0], completion_tokens=tokens[1])
