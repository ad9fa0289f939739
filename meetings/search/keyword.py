"""Keyword search over segments: PostgreSQL full-text search or SQLite FTS5.

At most ``MAX_RANKED`` matches are ranked, the newest first, and ``total``
stops there: a rare term's matches are all ranked, while a term found in
most segments is read back from the newest rows instead of being scored
across hundreds of thousands (bench scenario 8). Both rank with the
database's own scoring (``ts_rank_cd`` over the GIN-indexed
generated ``search_vector``; FTS5's ``bm25``) and highlight with its own
function (``ts_headline``; ``highlight``), computed only for the page shown.
Highlights come back as escaped HTML with ``<mark>`` around the matches: the
databases mark matches with control characters, the text is escaped, then
the marks become tags, so transcript text can never inject markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from django.db import connection
from django.db.models import QuerySet
from django.utils.html import escape

from ..models import Meeting, Segment
from .query import HIT_FIELDS, Filters, Hit, hit_from_values

_OPEN, _CLOSE = "\x02", "\x03"
_WORD = re.compile(r"\w+", re.UNICODE)
# The pipeline's tsvector configuration (migration 0003): stemmed English.
PG_CONFIG = "english"
# At most this many matches are ranked, the newest first; `total` stops there.
MAX_RANKED = 2000
EXPLICIT_SCOPE = 1000


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


def mark_terms(text: str, query: str) -> str:
    """Escaped `text` with the query's words (and words starting with them) in ``<mark>``."""
    pattern = _term_pattern(query)
    escaped = escape(text)
    if pattern is None:
        return escaped
    return pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped)


@lru_cache(maxsize=256)
def _term_pattern(query: str) -> re.Pattern[str] | None:
    words = sorted({w for w in terms(query) if len(w) > 2}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\w*", re.IGNORECASE)


def highlighted(hits: list[Hit], query: str) -> list[Hit]:
    """`hits` with each empty highlight filled by marking the query's words in its text."""
    return [h if h.highlight else replace(h, highlight=mark_terms(h.text, query)) for h in hits]


def _allowed(scope: QuerySet[Meeting], filters: Filters) -> tuple[str, tuple]:
    """A SQL condition on segments ``s`` keeping the allowed ones.

    On PostgreSQL a scope of up to EXPLICIT_SCOPE meetings is passed as a
    list of ids rather than a subquery, so the planner knows how few rows it
    holds and reads them by meeting instead of walking the whole table.
    """
    meetings = filters.meetings(scope)
    speakers = filters.speakers(meetings)
    if speakers is not None:
        sql, params = speakers.order_by().values("id").query.sql_with_params()
        return f"s.speaker_id IN ({sql})", params
    if connection.vendor == "postgresql":
        ids = list(meetings.order_by().values_list("id", flat=True)[: EXPLICIT_SCOPE + 1])
        if len(ids) <= EXPLICIT_SCOPE:
            return "s.meeting_id = ANY(%s)", (ids,)
    sql, params = meetings.order_by().values("id").query.sql_with_params()
    return f"s.meeting_id IN ({sql})", params


def search(
    scope: QuerySet[Meeting],
    text: str,
    filters: Filters,
    *,
    offset: int = 0,
    limit: int = 20,
    headlines: bool = True,
) -> KeywordPage:
    """Segments of meetings in `scope` matching every word of `text`, best first.

    ``headlines=False`` leaves PostgreSQL's ts_headline out and the hits'
    highlights empty, for a caller that shows only some of them: it marks the
    query's words in those it shows (``highlighted``).
    """
    if not terms(text):
        return KeywordPage([], 0)
    if connection.vendor == "postgresql":
        rows, total = _postgres(text, *_allowed(scope, filters), offset, limit, headlines)
    elif connection.vendor == "sqlite":
        rows, total = _sqlite(text, *_allowed(scope, filters), offset, limit)
    else:
        raise KeywordUnavailable(connection.vendor)
    return KeywordPage(_hits(rows, text), total)


def _postgres(
    text: str, allowed_sql: str, params: tuple, offset: int, limit: int, headlines: bool
) -> tuple[list[tuple[int, float, str | None]], int]:
    # The newest MAX_RANKED matches are ranked: a rare term's are all of them,
    # and a term in most segments ("budget" in a finance team's meetings) is
    # read back from the newest rows by the primary key, not ranked across
    # hundreds of thousands of rows (README "Search and ask", scenario 8).
    with connection.cursor() as cursor:
        # The query is spelled out where used (not a CTE) so the planner sees a
        # constant and estimates its selectivity from the column statistics.
        query = f"websearch_to_tsquery('{PG_CONFIG}', %s)"
        headline = (
            f"ts_headline('{PG_CONFIG}', text, {query}, 'StartSel=' || chr(2) || ', StopSel=' "
            "|| chr(3) || ', MaxWords=40, MinWords=15')"
            if headlines
            else "NULL"
        )
        cursor.execute(
            f"""
            WITH ranked AS MATERIALIZED (
                SELECT s.id, s.text, ts_rank_cd(s.search_vector, {query}) AS score
                FROM meetings_segment s
                WHERE s.search_vector @@ {query} AND {allowed_sql}
                ORDER BY s.id DESC LIMIT {MAX_RANKED}
            ),
            page AS (
                SELECT id, text, score FROM ranked ORDER BY score DESC, id LIMIT %s OFFSET %s
            )
            SELECT id, score, {headline}, (SELECT count(*) FROM ranked)
            FROM page ORDER BY score DESC, id
            """,
            [text, text, *params, limit, offset, *([text] if headlines else [])],
        )
        rows = cursor.fetchall()
        if not rows:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM meetings_segment s "
                f"WHERE s.search_vector @@ websearch_to_tsquery('{PG_CONFIG}', %s) "
                f"AND {allowed_sql} LIMIT {MAX_RANKED}) capped",
                [text, *params],
            )
            return [], cursor.fetchone()[0]
        return [row[:3] for row in rows], rows[0][3]


def _sqlite(
    text: str, allowed_sql: str, params: tuple, offset: int, limit: int
) -> tuple[list[tuple[int, float, str]], int]:
    # Every word quoted: user text never reaches FTS5's query syntax.
    match = " ".join(f'"{t}"' for t in terms(text))
    ranked = (
        "SELECT s.id AS id, bm25(meetings_segment_fts) AS rank, "
        "highlight(meetings_segment_fts, 0, char(2), char(3)) AS marked "
        "FROM meetings_segment_fts JOIN meetings_segment s ON s.id = meetings_segment_fts.rowid "
        f"WHERE meetings_segment_fts MATCH %s AND {allowed_sql} "
        f"ORDER BY meetings_segment_fts.rowid DESC LIMIT {MAX_RANKED}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({ranked})", [match, *params])
        total = cursor.fetchone()[0]
        if not total or offset >= total:
            return [], total
        # bm25 is lower-is-better; negate it so every backend's score grows with relevance.
        cursor.execute(
            f"SELECT id, -rank, marked FROM ({ranked}) ORDER BY rank, id LIMIT %s OFFSET %s",
            [match, *params, limit, offset],
        )
        return cursor.fetchall(), total


def _hits(rows: list[tuple[int, float, str | None]], query: str) -> list[Hit]:
    found = Segment.objects.filter(id__in=[r[0] for r in rows]).values_list(*HIT_FIELDS, "index")
    segments = {row[0]: row for row in found}
    hits = []
    for segment_id, score, marked in rows:
        row = segments[segment_id]
        hit = hit_from_values(
            row, float(score), segment_id=segment_id, segment_index=row[-1], keyword_match=True
        )
        hits.append(replace(hit, highlight=mark(marked)) if marked else hit)
    return hits
