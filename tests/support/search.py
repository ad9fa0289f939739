"""Search fixtures: meetings indexed with the real offline model, as the index step would."""

from __future__ import annotations

from jobs.providers.local.embeddings import LocalEmbedder
from meetings.models import Meeting
from meetings.search import passages


def index(meeting: Meeting) -> int:
    """Build the meeting's semantic index with all-MiniLM-L6-v2, like the pipeline's index step."""
    embedder = LocalEmbedder()
    return passages.build_index(meeting, lambda texts: embedder.embed(texts).vectors, embedder.name)
