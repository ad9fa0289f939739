"""Keyword search over segments: PostgreSQL full-text search or SQLite FTS5.

Both rank with the database's own scoring (``ts_rank_cd`` over the GIN-indexed
generated ``search_vector``; FTS5's ``bm25``) and highlight with its own
function (``ts_headline``; ``highlight``), computed only for the page shown.
Highlights come back as escaped HTML with ``<mark>`` around the matches: the
databases mark matches with control characters, the text is escaped, then
the marks become tags, so transcript text can never inject markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet
from django.utils.html import escape

from ..models import Meeting, Segment
from .query import Filters, Hit

_OPEN, _CLOSE = "\x02", "\x03"
_WORD = re.compile(r"\w+", re.UNICODE)
# The pipeline's tsvector configuration (migration 0003): stemmed English.
PG_CONFIG = "english"


class KeywordUnavailable(Exception):
    """This database has no full-text index for segments."""


@dataclass(frozen=True)
class KeywordPage:
    hits: list[Hit]
    total: int


def terms(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def mark(highlighted: str) -> str:
    return escape(highlighted).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")


def _allowed(scope: QuerySet[Meeting], filters: Filters, column: str) -> tuple[str, tuple]:
    """A SQL condition on segment `column`s (``s.``/``f.`` prefixed) keeping the allowed segments."""
    meetings = filters.meetings(scope)
    speakers = filters.speakers(meetings)
    if speakers is None:
        sql, params = meetings.order_by().values("id").query.sql_with_params()
        return f"{column}meeting_id IN ({sql})", params
    sql, params = speakers.order_by().values("id").query.sql_with_params()
    return f"{column}speaker_id IN ({sql})", params


def search(
    scope: QuerySet[Meeting], text: str, filters: Filters, *, offset: int = 0, limit: int = 20
) -> KeywordPage:
    """Segments of meetings in `scope` matching every word of `text`, best first."""
    if not terms(text):
        return KeywordPage([], 0)
    if connection.vendor == "postgresql":
        rows, total = _postgres(text, *_allowed(scope, filters, "s."), offset, limit)
    elif connection.vendor == "sqlite":
        rows, total = _sqlite(text, *_allowed(scope, filters, "s."), offset, limit)
    else:
        raise KeywordUnavailable(connection.vendor)
    return KeywordPage(_hits(rows), total)


def _postgres(
    text: str, allowed_sql: str, params: tuple, offset: int, limit: int
) -> tuple[list[tuple[int, float, str]], int]:
    matched = (
        f"FROM meetings_segment s, websearch_to_tsquery('{PG_CONFIG}', %s) q "
        f"WHERE s.search_vector @@ q AND {allowed_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {matched}", [text, *params])
        total = cursor.fetchone()[0]
        if not total or offset >= total:
            return [], total
        cursor.execute(
            f"""
            WITH page AS (
                SELECT s.id, s.text, ts_rank_cd(s.search_vector, q) AS score, q {matched}
                ORDER BY score DESC, s.id LIMIT %s OFFSET %s
            )
            SELECT id, score, ts_headline('{PG_CONFIG}', text, q,
                'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxWords=40, MinWords=15')
            FROM page ORDER BY score DESC, id
            """,
            [text, *params, limit, offset],
        )
        return cursor.fetchall(), total


def _sqlite(
    text: str, allowed_sql: str, params: tuple, offset: int, limit: int
) -> tuple[list[tuple[int, float, str]], int]:
    # Every word quoted: user text never reaches FTS5's query syntax.
    match = " ".join(f'"{t}"' for t in terms(text))
    matched = (
        "FROM meetings_segment_fts JOIN meetings_segment s ON s.id = meetings_segment_fts.rowid "
        f"WHERE meetings_segment_fts MATCH %s AND {allowed_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {matched}", [match, *params])
        total = cursor.fetchone()[0]
        if not total or offset >= total:
            return [], total
        # bm25 is lower-is-better; negate it so every backend's score grows with relevance.
        cursor.execute(
            f"SELECT s.id, -bm25(meetings_segment_fts), "
            f"highlight(meetings_segment_fts, 0, char(2), char(3)) {matched} "
            f"ORDER BY bm25(meetings_segment_fts), s.id LIMIT %s OFFSET %s",
            [match, *params, limit, offset],
        )
        return cursor.fetchall(), total


def _hits(rows: list[tuple[int, float, str]]) -> list[Hit]:
    segments = Segment.objects.select_related("speaker", "meeting").in_bulk([r[0] for r in rows])
    hits = []
    for segment_id, score, highlighted in rows:
        s = segments[segment_id]
        hits.append(
            Hit(
                meeting_id=str(s.meeting_id),
                job_id=str(s.meeting.job_id),
                title=s.meeting.title,
                start_ms=s.start_ms,
                end_ms=s.end_ms,
                speaker_name=s.speaker.display_name,
                text=s.text,
                highlight=mark(highlighted),
                score=float(score),
                segment_id=s.id,
                segment_index=s.index,
                keyword_match=True,
            )
        )
    return hits
