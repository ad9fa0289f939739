"""Sentence embeddings for search: OpenAI's embeddings API when the analysis
provider is ``openai``, else the offline MiniLM model.

The embedder's ``name`` is stored with every passage it embedded; a query is
only ever compared with passages of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.conf import settings


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # float32, one unit-length row per text
    tokens: int


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> Embedded: ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 in this process (``jobs.providers.local.embeddings``)."""

    def __init__(self) -> None:
        from .local import embeddings

        self._model = embeddings.model()
        self.name = f"local:{embeddings.MODEL_NAME}"

    def embed(self, texts: list[str]) -> Embedded:
        return Embedded(self._model.embed(texts), self._model.count_tokens(texts))


def get_embedder() -> Embedder:
    if settings.ANALYSIS_PROVIDER == "openai":
        from .openai.embeddings import OpenAIEmbedder

        return OpenAIEmbedder()
    return LocalEmbedder()
