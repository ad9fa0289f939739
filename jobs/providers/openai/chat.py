"""Analysis through the official OpenAI SDK (its client's ``POST /chat/completions``)
with Structured Outputs.

The SDK's own retries are off: retry policy lives in the pipeline, which
honours `Retry-After` beyond the SDK's 120-second ceiling without holding a
worker. Every request is admitted by the fleet-wide limits as it is sent
(jobs.providers.openai.client). Errors are translated here into
TransientError or PermanentError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from django.conf import settings
from pydantic import ValidationError

from jobs.errors import PermanentError, TransientError
from jobs.providers import analysis_steps as analysis
from jobs.providers.base import NO_CONTEXT, AnalysisContext, StepOutput
from jobs.providers.openai.client import client
from jobs.providers.openai.errors import translate
from meetings.transcript import Transcript

# A malformed answer is asked for again once before the step degrades.
MAX_ANSWERS = 2


class OpenAIAnalyzer:
    name = "openai"

    def __init__(self) -> None:
        self._client = client(settings.OPENAI_TIMEOUT_SECONDS)
        self._strict_schema = True

    def run(
        self, step: str, transcript: Transcript, context: AnalysisContext = NO_CONTEXT
    ) -> StepOutput:
        """Ask the model for one step's answer in the step's strict JSON schema.

        The client's shaping (`context`: instructions, participants, vocabulary)
        travels in a message of its own between our system prompt and the
        transcript, so it reads as data and cannot replace the schema.

        The answer is validated whatever the server claims: a malformed one is
        repaired (code fences, trailing commas) or asked for again once, and
        the step fails permanently if it stays malformed. Every request takes
        its share of the fleet-wide request and token budgets as it is sent
        (jobs.providers.openai.client); a long wait raises Deferred.
        """
        prompt = transcript.as_prompt()
        schema = analysis.json_schema(step, context)
        messages = [{"role": "system", "content": analysis.system_prompt(step, context)}]
        if guidance := analysis.guidance(step, context):
            messages.append({"role": "user", "content": guidance})
        messages.append({"role": "user", "content": prompt})
        asked = len(messages)
        output = StepOutput(data={})
        problem = ""
        for _ in range(MAX_ANSWERS):
            if problem:
                messages = [
                    *messages[:asked],
                    {
                        "role": "user",
                        "content": f"{problem} Answer again with only a JSON "
                        f"object matching this schema: {json.dumps(schema)}",
                    },
                ]
            choice = self._complete(step, schema, messages, output)
            if choice.refusal:
                raise PermanentError("analysis_refused", choice.refusal)
            try:
                output.data = analysis.validate(step, repair_json(choice.content or ""), context)
                return output
            except (ValidationError, ValueError) as exc:
                cut = choice.finish_reason == "length"
                problem = (
                    "Your previous answer was cut off."
                    if cut
                    else f"Your previous answer was not valid: {str(exc)[:300]}."
                )
        code = "analysis_truncated" if "cut off" in problem else "analysis_invalid"
        raise PermanentError(code, f"The {step} answer stayed malformed: {problem}")

    def _complete(
        self, step: str, schema: dict[str, Any], messages: list[dict], output: StepOutput
    ) -> Choice:
        """One chat completion, in the strict schema where the server supports it.

        A server that rejects `json_schema` (some compatible servers do) is asked
        again, and from then on, with the schema in the prompt instead.
        """
        kwargs: dict[str, Any] = {"model": settings.OPENAI_MODEL, "messages": messages}
        if self._strict_schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": analysis.schema_name(step),
                    "schema": schema,
                    "strict": True,
                },
            }
        else:
            kwargs["messages"] = [
                {
                    "role": "system",
                    "content": f"{messages[0]['content']} Reply with only a JSON "
                    f"object matching this schema: {json.dumps(schema)}",
                },
                *messages[1:],
            ]
        try:
            # The client's own POST (the SDK's way to an endpoint as is): the
            # resource's create() walks the request against its type hints and
            # builds a typed model of the answer, most of a call's CPU here.
            response = self._client.post("/chat/completions", body=kwargs, cast_to=httpx2.Response)
        except openai.BadRequestError as exc:
            if self._strict_schema and "response_format" in f"{exc.param} {exc}":
                self._strict_schema = False
                return self._complete(step, schema, messages, output)
            raise translate(exc, "analysis_rejected") from exc
        except openai.APIError as exc:
            raise translate(exc, "analysis_rejected") from exc
        return _first_choice(response.content, output)


@dataclass(frozen=True)
class Choice:
    """What the pipeline reads of a completion's first choice."""

    content: str | None
    refusal: str | None
    finish_reason: str | None


def _first_choice(content: bytes, output: StepOutput) -> Choice:
    """The first choice of a chat completion's JSON; its usage is added to `output`.

    A body of another shape is the provider's fault (transient, like an answer
    the SDK cannot read).
    """
    try:
        body = json.loads(content)
        usage = body.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        first = body["choices"][0]
        message = first.get("message") or {}
        choice = Choice(
            content=_text_or_none(message.get("content")),
            refusal=_text_or_none(message.get("refusal")),
            finish_reason=_text_or_none(first.get("finish_reason")),
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise TransientError(
            "provider_unavailable", f"OpenAI returned a malformed chat completion: {exc}"
        ) from exc
    output.prompt_tokens += prompt_tokens
    output.completion_tokens += completion_tokens
    return choice


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def repair_json(text: str) -> str:
    """The JSON object inside a model's answer: without code fences, prose around
    it, or trailing commas. Raises ValueError when there is no object at all."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the answer holds no JSON object")
    candidate = re.sub(r",\s*([}\]])", r"\1", text[start : end + 1])
    json.loads(candidate)
    return candidate
