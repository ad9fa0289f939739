"""A meeting's semantic index: its passages and their vectors.

A passage is a run of consecutive segments of about ``PASSAGE_WORDS`` words
(never split inside a segment), so a hit points at a moment with enough
context to be understood and an embedding sees whole thoughts. Its speaker
is the one who says most of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from meeting_intel.lib.bulk import insert_rows

from ..models import Meeting, Passage
from ..results import segment_rows
from .vectors import store, to_bytes

PASSAGE_WORDS = 120
# A passage's columns, in the order replace_index gives their values.
PASSAGE_FIELDS = (
    "index",
    "speaker_id",
    "first_segment",
    "last_segment",
    "start_ms",
    "end_ms",
    "text",
    "model",
    "embedding",
)


@dataclass(frozen=True)
class Draft:
    first_segment: int
    last_segment: int
    start_ms: int
    end_ms: int
    speaker_id: int | None
    text: str


def drafts(meeting: Meeting) -> list[Draft]:
    """The meeting's segments grouped into passages, in order."""
    out: list[Draft] = []
    group: list = []
    words = 0

    def flush() -> None:
        if not group:
            return
        weight = Counter()
        for s in group:
            weight[s.speaker_id] += len(s.text.split())
        out.append(
            Draft(
                first_segment=group[0].index,
                last_segment=group[-1].index,
                start_ms=group[0].start_ms,
                end_ms=group[-1].end_ms,
                speaker_id=weight.most_common(1)[0][0],
                text=" ".join(s.text.strip() for s in group),
            )
        )

    # Plain rows, kept for the analysis that follows (results.segment_rows).
    for segment in segment_rows(meeting):
        count = len(segment.text.split())
        if group and words + count > PASSAGE_WORDS:
            flush()
            group, words = [], 0
        group.append(segment)
        words += count
    flush()
    return out


def replace_index(meeting: Meeting, items: list[Draft], vectors: np.ndarray, model: str) -> int:
    """Store `items` with their unit `vectors` as the meeting's whole index. Call in a transaction."""
    meeting.passages.all().delete()
    count = insert_index(meeting, items, vectors, model)
    meeting.search_indexed_at = timezone.now()
    meeting.save(update_fields=["search_indexed_at", "updated_at"])
    return count


def insert_index(meeting: Meeting, items: list[Draft], vectors: np.ndarray, model: str) -> int:
    """Add `items` with their unit `vectors` to a meeting that has no passages, and
    return how many; the caller stamps `search_indexed_at`. Call in a transaction.

    The pipeline's index step uses it directly: a meeting's passages are deleted
    wherever its job's `search_index` checkpoint is cleared, and were one left,
    the passages' unique (meeting, index) constraint would refuse the insert.
    """
    rows = [
        (
            i,
            d.speaker_id,
            d.first_segment,
            d.last_segment,
            d.start_ms,
            d.end_ms,
            d.text,
            model,
            to_bytes(vectors[i]),
        )
        for i, d in enumerate(items)
    ]
    ids = insert_rows(
        Passage, PASSAGE_FIELDS, rows, shared={"meeting_id": meeting.id}, returning=("id",)
    )
    passages = [Passage(id=pk, embedding=row[-1]) for (pk,), row in zip(ids, rows, strict=True)]
    if passages and passages[0].pk is None:  # backends without RETURNING
        passages = list(meeting.passages.all())
    store().written(passages)
    return len(passages)


def build_index(meeting: Meeting, embed: Callable[[list[str]], np.ndarray], model: str) -> int:
    """Group, embed and store the meeting's passages; returns how many."""
    items = drafts(meeting)
    vectors = embed([d.text for d in items]) if items else np.zeros((0, 1), np.float32)
    with transaction.atomic():
        return replace_index(meeting, items, vectors, model)


def remove_index(meeting: Meeting) -> None:
    """Drop the semantic index. Keyword search over the transcript stays."""
    with transaction.atomic():
        meeting.passages.all().delete()
        meeting.search_indexed_at = None
        meeting.save(update_fields=["search_indexed_at", "updated_at"])
