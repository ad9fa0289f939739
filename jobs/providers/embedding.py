"""Sentence embeddings for search, as the index step and search ask of an embedder.

``jobs.providers.get_embedder`` picks OpenAI's embeddings API when the
analysis provider is ``openai``, else the offline MiniLM model.

The embedder's ``name`` is stored with every passage it embedded; a query is
only ever compared with passages of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # float32, one unit-length row per text
    tokens: int


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> Embedded: ...
