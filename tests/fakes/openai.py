"""A fake of OpenAI's chat completions (Structured Outputs) and audio transcription APIs.

Point the official SDK at it with::

    client = OpenAI(api_key=fake.api_key, base_url=f"{fake.url}/v1", max_retries=0)

The SDK's paths are relative to a base URL that ends in ``/v1``.

Routes, by the names that ``route=`` fault arguments take:

* ``chat``: ``POST /v1/chat/completions``. With ``response_format`` of type
  ``json_schema``, ``message.content`` is JSON for ``json_schema.schema``: the
  canned :attr:`FakeOpenAI.responses` entry for ``json_schema.name`` when there is
  one, else an instance generated from the schema by :func:`example_instance`.
  Otherwise the content is :attr:`FakeOpenAI.text_content`. Streaming is refused (400).
  Chat requests are *tagged* with their ``json_schema.name``, so ``tag="decisions"``
  aims a fault at one schema.
* ``embeddings``: ``POST /v1/embeddings`` (``input`` a string or a list of strings,
  optional ``dimensions``, default 1536, and ``encoding_format`` ``float`` or ``base64``:
  little-endian float32, as OpenAI sends it). Each vector
  is a hashed bag of the input's lower-cased words (suffixes ``s``/``ed``/``ing`` cut),
  normalised: texts sharing words are close, so ranking by meaning is testable.
* ``transcription``: ``POST /v1/audio/transcriptions`` (multipart: ``file``,
  ``model``, ``response_format`` = ``json`` | ``verbose_json`` | ``diarized_json`` |
  ``text``), built from :attr:`FakeOpenAI.utterances`.

Every request needs ``Authorization: Bearer <api_key>``. Errors use OpenAI's
shape ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import math
import re
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tests.fakes.base import FakeServer, Reply, Request, json_reply, max_in_window, text_reply
from tests.fakes.script import DEFAULT_MEETING, Script, duration_ms, time_script

CorruptionMode = Literal["truncated", "invalid", "fenced", "schema_violation"]
CannedResponse = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]

_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}
_CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "truncated": lambda text: text[: len(text) // 2],
    "invalid": lambda text: text[:-1] + ",}" if text.endswith("}") else text + ",",
    "fenced": lambda text: f"```json\n{text}\n```",
    "schema_violation": lambda text: '{"unexpected": true}',
}


@dataclass
class _Corruption:
    mode: CorruptionMode
    times: int | None


class FakeOpenAI(FakeServer):
    """Fake OpenAI server; see the module docstring for the protocol.

    Attributes that tests may change at any time: ``api_key``, ``responses``
    (schema name → dict, or callable taking the request JSON and returning a
    dict), ``text_content`` (content for chats without a json_schema),
    ``reject_strict`` (answer 400 to ``"strict": true`` schemas, like some
    compatible servers), ``utterances``, ``ms_per_word``, ``gap_ms``.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-openai-key",
        utterances: Script = DEFAULT_MEETING,
        ms_per_word: int = 300,
        gap_ms: int = 700,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.responses: dict[str, CannedResponse] = {}
        self.text_content = "OK"
        self.reject_strict = False
        self.utterances: list[tuple[str, str]] = list(utterances)
        self.ms_per_word = ms_per_word
        self.gap_ms = gap_ms
        self._corruptions: dict[str, _Corruption] = {}
        self._transcription_forms: list[dict[str, list[str]]] = []
        self._usage: list[tuple[str, float, int]] = []
        self._add_route("chat", "POST", r"/v1/chat/completions", self._chat)
        self._add_route("transcription", "POST", r"/v1/audio/transcriptions", self._transcription)
        self._add_route("embeddings", "POST", r"/v1/embeddings", self._embeddings)

    def corrupt_json(
        self, schema: str, mode: CorruptionMode = "invalid", *, times: int | None = 1
    ) -> None:
        """Damage the content of the next ``times`` answers for json_schema ``schema`` (None: until cleared).

        Modes: ``truncated`` (first half of the JSON, ``finish_reason: "length"``, as when
        max_tokens runs out), ``invalid`` (a trailing comma), ``fenced`` (wrapped in a
        ```json markdown fence) and ``schema_violation`` (valid JSON that breaks the schema).
        """
        with self._lock:
            self._corruptions[schema] = _Corruption(mode, times)

    def clear_faults(self) -> None:
        """Drop scripted faults and JSON corruptions."""
        super().clear_faults()
        with self._lock:
            self._corruptions.clear()

    # -- inspection --------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of every chat completion request received, in order."""
        return [
            r.json
            for r in self.requests
            if r.path.endswith("/chat/completions") and isinstance(r.json, dict)
        ]

    def max_tokens_in_window(
        self, window: float = 60.0, route: str | None = None, since: float = 0.0
    ) -> int:
        """Largest number of tokens (the ``usage.total_tokens`` answered, counted when
        the request arrived) of the requests to ``route`` (arrived from monotonic
        ``since``) within any ``window`` seconds."""
        with self._lock:
            usage = [(t, n) for name, t, n in self._usage if route in (None, name) and t >= since]
        return max_in_window(usage, window)

    def _count_usage(self, route: str, arrived: float, tokens: int) -> None:
        with self._lock:
            self._usage.append((route, arrived, tokens))

    @property
    def transcription_forms(self) -> list[dict[str, list[str]]]:
        """The form fields (all but ``file``) of every transcription request, in order."""
        with self._lock:
            return [dict(form) for form in self._transcription_forms]

    # -- FakeServer hooks ------------------------------------------------------------

    def _authorize(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return self._error(401, "Incorrect API key provided.")

    def _error(self, status: int, message: str, param: str | None = None) -> Reply:
        kind, code = _ERROR_KINDS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return json_reply(
            {"error": {"message": message, "type": kind, "param": param, "code": code}}, status
        )

    def _tag(self, request: Request) -> str | None:
        json_schema = _json_schema(request.json)
        return json_schema.get("name") if json_schema is not None else None

    # -- chat ------------------------------------------------------------------------

    def _chat(self, request: Request) -> Reply:
        body = request.json
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or "model" not in body
        ):
            return self._error(400, "'model' and 'messages' are required.")
        if body.get("stream"):
            return self._error(400, "Streaming is not supported by the fake.", "stream")
        json_schema = _json_schema(body)
        finish_reason = "stop"
        if json_schema is None:
            content = self.text_content
        elif self.reject_strict and json_schema.get("strict"):
            return self._error(
                400, "'strict' is not supported for response_format json_schema.", "response_format"
            )
        else:
            name = json_schema.get("name", "")
            canned = self.responses.get(name)
            if canned is None:
                instance = example_instance(json_schema.get("schema") or {})
            else:
                instance = canned(body) if callable(canned) else canned
            content = json.dumps(instance)
            mode = self._take_corruption(name)
            if mode is not None:
                content = _CORRUPTIONS[mode](content)
                finish_reason = "length" if mode == "truncated" else finish_reason
        prompt_tokens = max(1, sum(len(_message_text(m)) for m in body["messages"]) // 4)
        completion_tokens = max(1, len(content) // 4)
        self._count_usage("chat", request.arrived, prompt_tokens + completion_tokens)
        return json_reply(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": content,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
            }
        )

    def _take_corruption(self, schema: str) -> CorruptionMode | None:
        with self._lock:
            corruption = self._corruptions.get(schema)
            if corruption is None:
                return None
            if corruption.times is not None:
                corruption.times -= 1
                if corruption.times <= 0:
                    del self._corruptions[schema]
            return corruption.mode

    # -- embeddings ------------------------------------------------------------------

    def _embeddings(self, request: Request) -> Reply:
        body = request.json
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or "model" not in body:
            return self._error(400, "'model' and a non-empty 'input' are required.")
        if not all(isinstance(text, str) and text for text in inputs):
            return self._error(400, "'input' must not contain empty strings.", "input")
        dimensions = int(body.get("dimensions") or 1536)
        encode = _as_base64 if body.get("encoding_format") == "base64" else (lambda v: v)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode(bag_of_words_vector(text, dimensions)),
            }
            for i, text in enumerate(inputs)
        ]
        tokens = sum(max(1, len(text) // 4) for text in inputs)
        self._count_usage("embeddings", request.arrived, tokens)
        return json_reply(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- audio -----------------------------------------------------------------------

    def _transcription(self, request: Request) -> Reply:
        form = _parse_multipart(request.headers.get("content-type", ""), request.body)
        with self._lock:
            self._transcription_forms.append({k: v for k, v in form.items() if k != "file"})
        if not form.get("file") or not form.get("model"):
            return self._error(400, "'file' and 'model' are required.")
        response_format = form.get("response_format", ["json"])[0]
        turns = time_script(self.utterances, ms_per_word=self.ms_per_word, gap_ms=self.gap_ms)
        text = " ".join(t.text for t in turns)
        seconds = duration_ms(turns) / 1000
        if response_format == "text":
            return text_reply(text)
        if response_format == "json":
            return json_reply({"text": text, "usage": {"type": "duration", "seconds": seconds}})
        if response_format == "diarized_json":
            segments = [
                {
                    "type": "transcript.text.segment",
                    "id": f"seg_{i}",
                    "speaker": t.speaker,
                    "start": t.start / 1000,
                    "end": t.end / 1000,
                    "text": t.text,
                }
                for i, t in enumerate(turns)
            ]
            return json_reply(
                {"task": "transcribe", "duration": seconds, "text": text, "segments": segments}
            )
        if response_format != "verbose_json":
            return self._error(
                400, f"response_format {response_format!r} is not supported by the fake."
            )
        segments = [
            {
                "id": i,
                "seek": 0,
                "start": t.start / 1000,
                "end": t.end / 1000,
                "text": f" {t.text}",
                "tokens": [50364 + j for j in range(len(t.words))],
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.3,
                "no_speech_prob": 0.01,
            }
            for i, t in enumerate(turns)
        ]
        verbose: dict[str, Any] = {
            "task": "transcribe",
            "language": "english",
            "duration": seconds,
            "text": text,
            "segments": segments,
            "usage": {"type": "duration", "seconds": seconds},
        }
        if "word" in form.get("timestamp_granularities[]", []):
            verbose["words"] = [
                {"word": w.text, "start": w.start / 1000, "end": w.end / 1000}
                for t in turns
                for w in t.words
            ]
        return json_reply(verbose)


def _as_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def bag_of_words_vector(text: str, dimensions: int) -> list[float]:
    """The fake's embedding: words hashed (stably, md5) into buckets, then normalised."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        stem = re.sub(r"(ing|ed|s)$", "", word) if len(word) > 4 else word
        digest = hashlib.md5(stem.encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def example_instance(
    schema: dict[str, Any], root: dict[str, Any] | None = None, key: str = "value"
) -> Any:
    """A deterministic instance of JSON ``schema``: every property of an object, one array item,
    the first ``enum`` value or non-null ``anyOf``/``oneOf``/``allOf`` branch, ``$ref`` resolved."""
    root = schema if root is None else root
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return example_instance(
            {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, root, key
        )
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            options = [o for o in schema[combinator] if o.get("type") != "null"] or schema[
                combinator
            ]
            return example_instance(options[0], root, key)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {
            name: example_instance(sub, root, name)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array" or (kind is None and "items" in schema):
        count = max(1, schema.get("minItems", 1))
        return [example_instance(schema.get("items", {}), root, key) for _ in range(count)]
    if kind in ("integer", "number"):
        value: float = 1 if kind == "integer" else 0.5
        value = max(
            value, schema.get("minimum", value), schema.get("exclusiveMinimum", value - 1) + 1
        )
        return min(value, schema.get("maximum", value))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema, key)


def _example_string(schema: dict[str, Any], key: str) -> str:
    by_format = {
        "date-time": "2025-01-06T09:00:00Z",
        "date": "2025-01-06",
        "time": "09:00:00",
        "email": "alice@example.com",
        "uri": "https://example.com/",
        "uuid": str(uuid.UUID(int=1)),
    }
    text = by_format.get(schema.get("format", ""), f"Example {key.replace('_', ' ')}")
    text = text.ljust(schema.get("minLength", 0), "x")
    return text[: schema["maxLength"]] if "maxLength" in schema else text


def _json_schema(body: Any) -> dict[str, Any] | None:
    """The ``response_format.json_schema`` object of a chat request, if it has one."""
    response_format = body.get("response_format") if isinstance(body, dict) else None
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        json_schema = response_format.get("json_schema")
        return json_schema if isinstance(json_schema, dict) else {}
    return None


def _message_text(message: Any) -> str:
    """All text of a chat message, whether ``content`` is a string or a list of parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _parse_multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The values of each field of a ``multipart/form-data`` body, decoded as UTF-8 (lossily for files)."""
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields.setdefault(name, []).append(
                (part.get_payload(decode=True) or b"").decode(errors="replace")
            )
    return fields
