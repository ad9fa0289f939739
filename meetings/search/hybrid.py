"""Search modes over one scope of meetings, and the retrieval ``ask`` builds on.

``hybrid`` (the default) fuses the keyword and semantic rankings by
reciprocal rank fusion (Cormack et al., 2009: score = Σ 1/(60 + rank)), so
neither backend's raw scores, which are not comparable, decide alone. A
keyword hit inside an indexed passage counts for that passage; the hit
shown is the matching segment (the precise moment, highlighted), else the
passage. Meetings without a semantic index (not yet built, degraded, or
removed with the audio) still answer through keyword search.

The caller embeds the query (``QueryEmbedder``): meetings knows no provider.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from django.db import connection, connections
from django.db.models import QuerySet

from ..models import Meeting, Passage
from . import keyword
from .query import HIT_FIELDS, Filters, Hit, Mode, hit_from_values
from .vectors import store

# (model name, unit vector) for a query text.
QueryEmbedder = Callable[[str], tuple[str, np.ndarray]]

RRF_K = 60
CANDIDATES = 100  # per ranking fused; also the most hits a semantic or hybrid search pages over
# Runs the semantic half of hybrid searches beside the keyword half: the numpy store's
# ranking touches no database; pgvector's runs on the thread's own connection.
_SEMANTIC = ThreadPoolExecutor(max_workers=4, thread_name_prefix="search-semantic")


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    total: int


def search(
    scope: QuerySet[Meeting],
    text: str,
    mode: Mode,
    filters: Filters,
    embed_query: QueryEmbedder | None,
    *,
    offset: int = 0,
    limit: int = 20,
) -> Page:
    if mode == "keyword":
        found = keyword.search(scope, text, filters, offset=offset, limit=limit)
        return Page(found.hits, found.total)
    if embed_query is None:
        raise ValueError(f"{mode} search needs a query embedder")
    if mode == "semantic":
        hits = semantic(scope, text, filters, embed_query, CANDIDATES)
    else:
        hits = fused(scope, text, filters, embed_query, CANDIDATES)
    return Page(keyword.highlighted(hits[offset : offset + limit], text), len(hits))


def semantic(
    scope: QuerySet[Meeting], text: str, filters: Filters, embed_query: QueryEmbedder, k: int
) -> list[Hit]:
    model, vector = embed_query(text)
    return _passage_hits(store().search(scope, filters, model, vector, k))


def fused(
    scope: QuerySet[Meeting], text: str, filters: Filters, embed_query: QueryEmbedder, k: int
) -> list[Hit]:
    """Keyword and semantic rankings fused by RRF, best first, highlights left empty.

    The semantic half runs in a thread of its own while the keyword search
    waits on the database: the query's embedding and, for the numpy store,
    the matrix product (the store reads what it needs from the database
    first, ``prepare``, so that thread touches none), or pgvector's query on
    a connection of that thread's own. The offline model's
    and the store's BLAS and OpenAI's round trip all let the GIL go, so the
    two halves overlap instead of adding up.
    Only the hits shown get highlights (``keyword.highlighted``), from Python:
    ts_headline for a hundred candidates costs more.
    """
    vectors = store()
    prepared = vectors.prepare(scope, filters)
    # A store that ranks in the database (pgvector) ranks on that thread's own
    # connection, beside the keyword query on this one; only outside a
    # transaction, whose uncommitted rows another connection would not see.
    in_database = prepared is None and not connection.in_atomic_block

    def semantic_half() -> tuple[str, np.ndarray, list[tuple[int, float]] | None]:
        model, vector = embed_query(text)
        if prepared is not None:
            return model, vector, prepared.rank(model, vector, k)
        if not in_database:
            return model, vector, None
        try:
            return model, vector, vectors.search(scope, filters, model, vector, k)
        finally:
            connections.close_all()  # this thread's connection, back to the pool

    half = _SEMANTIC.submit(semantic_half)
    try:
        words = keyword.search(scope, text, filters, limit=k, headlines=False).hits
    except BaseException:
        half.cancel()  # one already running finishes unheard
        raise
    model, vector, ranked = half.result()
    if ranked is None:  # the store ranks in the database, or its matrix was not in memory
        ranked = vectors.search(scope, filters, model, vector, k)
    meanings = _passage_hits(ranked)
    containing = _containing_passages(words, model)
    scores: dict[tuple[str, int], float] = {}
    shown: dict[tuple[str, int], Hit] = {}
    for rank, hit in enumerate(words, start=1):
        passage_id = containing.get(hit.segment_id or 0)
        key = ("p", passage_id) if passage_id else ("s", hit.segment_id or 0)
        if key not in shown:
            scores[key] = scores.get(key, 0.0) + 1 / (RRF_K + rank)
            shown[key] = replace(hit, passage_id=passage_id)
    for rank, hit in enumerate(meanings, start=1):
        key = ("p", hit.passage_id or 0)
        scores[key] = scores.get(key, 0.0) + 1 / (RRF_K + rank)
        shown[key] = replace(shown[key], similarity=hit.similarity) if key in shown else hit
    order = sorted(scores, key=lambda key: -scores[key])
    return [shown[key].with_score(round(scores[key], 6)) for key in order]


def retrieve(
    scope: QuerySet[Meeting], text: str, filters: Filters, embed_query: QueryEmbedder, k: int
) -> list[Hit]:
    """The best `k` passages for a question (hybrid), each with its whole passage text.

    A keyword hit outside any passage is kept as its segment.
    """
    hits = keyword.highlighted(fused(scope, text, filters, embed_query, CANDIDATES)[:k], text)
    whole = {
        p.passage_id: p
        for p in keyword.highlighted(
            _passage_hits([(h.passage_id, 0.0) for h in hits if h.passage_id]), text
        )
    }
    out = []
    for h in hits:
        p = whole.get(h.passage_id) if h.passage_id else None
        out.append(
            replace(
                h,
                text=p.text,
                highlight=p.highlight,
                start_ms=p.start_ms,
                end_ms=p.end_ms,
                speaker_name=p.speaker_name,
            )
            if p
            else h
        )
    return out


def _containing_passages(hits: list[Hit], model: str) -> dict[int, int]:
    """segment id → id of the passage (of `model`) that contains it, in one indexed join."""
    ids = [h.segment_id for h in hits if h.segment_id is not None]
    if not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, p.id FROM meetings_segment s JOIN meetings_passage p "
            'ON p.meeting_id = s.meeting_id AND p.first_segment <= s."index" '
            'AND p.last_segment >= s."index" AND p.model = %s '
            f"WHERE s.id IN ({marks})",
            [model, *ids],
        )
        return dict(cursor.fetchall())


def _passage_hits(ranked: list[tuple[int, float]]) -> list[Hit]:
    """Hits for ranked passage ids, read as plain values (as keyword hits are), no highlights."""
    found = Passage.objects.filter(id__in=[i for i, _ in ranked]).values_list(*HIT_FIELDS)
    passages = {row[0]: row for row in found}
    return [
        hit_from_values(passages[i], round(score, 6), passage_id=i, similarity=round(score, 6))
        for i, score in ranked
        if i in passages  # else reindexed meanwhile
    ]
