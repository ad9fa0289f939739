"""What a search asks for and what it finds, independent of the backends."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from django.db.models import Q, QuerySet

from ..models import Meeting, Speaker

Mode = Literal["keyword", "semantic", "hybrid"]
MODES: tuple[Mode, ...] = ("keyword", "semantic", "hybrid")
MAX_QUERY_CHARS = 500


@dataclass(frozen=True)
class Filters:
    """Narrowing on top of the caller's scope. Dates bound the meeting's creation."""

    meeting_ids: tuple[str, ...] = ()
    speaker: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def meetings(self, scope: QuerySet[Meeting]) -> QuerySet[Meeting]:
        if self.meeting_ids:
            scope = scope.filter(id__in=self.meeting_ids)
        if self.since:
            scope = scope.filter(created_at__gte=self.since)
        if self.until:
            scope = scope.filter(created_at__lt=self.until)
        return scope

    def speakers(self, meetings: QuerySet[Meeting]) -> QuerySet[Speaker] | None:
        """The speakers a speaker filter keeps (by name or label, any case), or None for all."""
        if not self.speaker:
            return None
        return Speaker.objects.filter(meeting__in=meetings).filter(
            Q(name__iexact=self.speaker) | Q(label__iexact=self.speaker)
        )


@dataclass(frozen=True)
class Hit:
    """One moment found. ``passage_id`` is set when the hit is (inside) an indexed passage."""

    meeting_id: str
    job_id: str
    title: str
    start_ms: int
    end_ms: int
    speaker_name: str
    text: str
    highlight: str
    score: float
    passage_id: int | None = None
    segment_id: int | None = None
    segment_index: int | None = None
    keyword_match: bool = False  # the segment matched the query's words
    similarity: float | None = None  # cosine to the query, when found by meaning

    def with_score(self, score: float) -> Hit:
        return replace(self, score=score)


# What a hit shows of its segment or passage, read as plain values: building
# model instances (row, speaker, meeting) for a hundred candidates cost more
# CPU than the query that found them (bench scenario 8).
HIT_FIELDS = (
    "id",
    "meeting_id",
    "meeting__job_id",
    "meeting__title",
    "start_ms",
    "end_ms",
    "speaker__name",
    "speaker__label",
    "text",
)


def hit_from_values(row: tuple, score: float, **more: object) -> Hit:
    """A hit, highlight empty, from a row of ``HIT_FIELDS`` (and any after them)."""
    _, meeting_id, job_id, title, start_ms, end_ms, name, label, text = row[: len(HIT_FIELDS)]
    return Hit(
        meeting_id=str(meeting_id),
        job_id=str(job_id),
        title=title,
        start_ms=start_ms,
        end_ms=end_ms,
        speaker_name=Speaker.name_for(name, label),
        text=text,
        highlight="",
        score=score,
        **more,
    )
