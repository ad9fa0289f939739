"""Embeddings through the official OpenAI SDK (its client's ``POST /embeddings``).

Texts go in batches of ``BATCH`` inputs. Each request takes its share of the
fleet-wide request and token budgets for the embedding model as it is sent
(``OPENAI_EMBEDDING_REQUESTS_PER_MINUTE`` / ``…_TOKENS_PER_MINUTE``: OpenAI
limits each model separately, so embeddings get their own budget in the
same limiter rather than eating the chat model's; see
jobs.providers.openai.client); the tokens the server reports are what the
call returns. Errors are translated like the chat's.
"""

from __future__ import annotations

import base64
import json

import httpx2
import numpy as np
import openai
from django.conf import settings

from jobs.errors import TransientError
from jobs.providers.embedding import Embedded
from jobs.providers.openai.client import client
from jobs.providers.openai.errors import translate

BATCH = 256


class OpenAIEmbedder:
    def __init__(self) -> None:
        self.model = settings.OPENAI_EMBEDDING_MODEL
        self.name = f"openai:{self.model}"
        self._client = client(settings.OPENAI_TIMEOUT_SECONDS)

    def embed(self, texts: list[str]) -> Embedded:
        """Unit vectors for `texts`, in order. Raises TransientError, PermanentError or Deferred."""
        rows: list[np.ndarray] = []
        tokens = 0
        for start in range(0, len(texts), BATCH):
            batch = [t if t.strip() else " " for t in texts[start : start + BATCH]]
            try:
                # The client's own POST (the SDK's way to an endpoint as is): the
                # resource's create() checks every input against its type hints
                # first, a third of an embedding call's CPU for a meeting's passages.
                response = self._client.post(
                    "/embeddings",
                    body={"model": self.model, "input": batch, "encoding_format": "base64"},
                    cast_to=httpx2.Response,
                )
            except openai.APIError as exc:
                raise translate(exc, "embedding_rejected") from exc
            data, used = _parsed(response.content)
            if len(data) != len(batch):
                raise TransientError(
                    "provider_unavailable",
                    f"OpenAI returned {len(data)} embeddings for {len(batch)} inputs",
                )
            rows.extend(data)
            tokens += used
        vectors = np.array(rows, dtype=np.float32).reshape(len(rows), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return Embedded(vectors / np.maximum(norms, 1e-12), tokens)


def _parsed(content: bytes) -> tuple[list[np.ndarray], int]:
    """The vectors (in input order) and prompt tokens of one answer, from its JSON.

    Asked for as base64 (little-endian float32, as OpenAI sends them), a
    vector is one string to decode instead of 1,536 numbers to parse; a
    server that sends floats anyway is read as well. Read from the JSON, not
    the SDK's models, which build a typed value for every float. A body of
    any other shape is the provider's fault.
    """
    try:
        body = json.loads(content)
        data = sorted(body["data"], key=lambda d: d["index"])
        vectors = [_vector(d["embedding"]) for d in data]
        usage = body.get("usage") or {}
        return vectors, int(usage.get("prompt_tokens") or 0)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TransientError(
            "provider_unavailable", f"OpenAI returned a malformed embeddings answer: {exc}"
        ) from exc


def _vector(value: str | list[float]) -> np.ndarray:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    return np.asarray(value, dtype=np.float32)
