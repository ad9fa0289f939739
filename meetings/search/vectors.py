"""Where passage vectors are searched: pgvector in PostgreSQL, or numpy in process.

One interface, two stores, chosen per database: ``PgvectorStore`` where the
migration could add ``meetings_passage.vec`` (the server has the pgvector
extension; HNSW indexes per embedding size), else ``NumpyStore``, which
scores every passage of the meetings in scope with one matrix product. The
numpy store keeps each meeting's matrix in this process's memory, keyed by
the meeting's ``search_indexed_at``, so a search reads from the database
only the meetings indexed since it last looked; it holds at most
``MAX_CACHED_VECTORS`` vectors (least recently used go first), plus one
matrix for each of the last ``COMBINED_SCOPES`` scopes searched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
from django.db import connection, transaction
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast

from meeting_intel.lib import blas

from ..models import Meeting, Passage
from .query import Filters

MAX_CACHED_VECTORS = 500_000
COMBINED_SCOPES = 4  # scopes whose vectors are also kept as one matrix


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")


class VectorStore(Protocol):
    name: str

    def written(self, passages: list[Passage]) -> None:
        """Called after `passages` (with their embeddings) were inserted."""

    def prepare(self, scope: QuerySet[Meeting], filters: Filters) -> Prepared | None:
        """The database reads a search needs before its vector, or None for a store that
        ranks in the database (then only ``search`` ranks)."""

    def search(
        self, scope: QuerySet[Meeting], filters: Filters, model: str, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """The `k` passages of `model` nearest to unit `vector`: (passage id, cosine), best first."""


def _allowed_passages(
    scope: QuerySet[Meeting], filters: Filters, model: str | None
) -> QuerySet[Passage]:
    meetings = filters.meetings(scope)
    passages = Passage.objects.filter(meeting__in=meetings)
    if model is not None:
        passages = passages.filter(model=model)
    speakers = filters.speakers(meetings)
    if speakers is not None:
        passages = passages.filter(speaker__in=speakers)
    return passages


@dataclass(frozen=True)
class Prepared:
    """What the numpy store read from the database for one search, before the query's vector.

    ``rank`` then needs no database, so it can run in any thread: hybrid
    search ranks there while the keyword half waits on the database.
    """

    store: NumpyStore
    fingerprint: tuple
    keep: frozenset[int] | None  # passages a speaker filter allows, else None for all

    def rank(self, model: str, vector: np.ndarray, k: int) -> list[tuple[int, float]] | None:
        """The best `k`, or None when this scope's matrix for `model` is not in memory."""
        combined = self.store.cached(model, self.fingerprint)
        return None if combined is None else self.store.top(*combined, self.keep, vector, k)


def _indexed(scope: QuerySet[Meeting], filters: Filters) -> QuerySet[Meeting]:
    return filters.meetings(scope).filter(search_indexed_at__isnull=False)


def _fingerprint(meetings: QuerySet[Meeting]) -> tuple:
    """What identifies the vectors of these meetings: each one's id and index time.

    On PostgreSQL the database digests the list (one row back, not a
    thousand to read and sort in Python); elsewhere it is the sorted list.
    Two scopes share a matrix only if they hold the very same meetings
    indexed at the very same moments.
    """
    if connection.vendor == "postgresql":
        sql, params = meetings.order_by().values("id", "search_indexed_at").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), md5(string_agg(m.id::text || '@' || m.search_indexed_at::text, "
                f"',' ORDER BY m.id)) FROM ({sql}) m",
                params,
            )
            return tuple(cursor.fetchone())
    rows = meetings.annotate(stamp=Cast("search_indexed_at", CharField())).values_list(
        "id", "stamp"
    )
    return tuple(sorted((str(m), str(stamp)) for m, stamp in rows))


class NumpyStore:
    name = "numpy"

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], tuple[object, np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._cached_rows = 0
        self._combined: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def written(self, passages: list[Passage]) -> None:
        return None  # the cache notices the meeting's new search_indexed_at

    def prepare(self, scope: QuerySet[Meeting], filters: Filters) -> Prepared:
        keep = None
        if filters.speaker:
            allowed = _allowed_passages(scope, filters, None)
            keep = frozenset(allowed.values_list("id", flat=True).iterator())
        return Prepared(self, _fingerprint(_indexed(scope, filters)), keep)

    def search(
        self, scope: QuerySet[Meeting], filters: Filters, model: str, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        prepared = self.prepare(scope, filters)
        found = prepared.rank(model, vector, k)
        if found is not None:
            return found
        meetings = list(
            # The stamp as text: parsing a thousand datetimes costs more than the search.
            _indexed(scope, filters)
            .annotate(stamp=Cast("search_indexed_at", CharField()))
            .values_list("id", "stamp")
        )
        ids, matrix = self._matrix(meetings, model, prepared.fingerprint)
        return self.top(ids, matrix, prepared.keep, vector, k)

    @staticmethod
    def top(
        ids: np.ndarray, matrix: np.ndarray, keep: frozenset[int] | None, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        if not len(ids):
            return []
        blas.one_thread()
        scores = matrix @ vector
        if keep is not None:
            mask = np.fromiter((i in keep for i in ids.tolist()), bool, len(ids))
            ids, scores = ids[mask], scores[mask]
        if len(ids) > k:
            top = np.argpartition(-scores, k)[:k]
            ids, scores = ids[top], scores[top]
        order = np.argsort(-scores, kind="stable")
        return [(int(ids[i]), float(scores[i])) for i in order]

    def cached(self, model: str, fingerprint: tuple) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            combined = self._combined.get((model, fingerprint))
            if combined is not None:
                self._combined.move_to_end((model, fingerprint))
            return combined

    def _matrix(self, meetings: list[tuple[object, object]], model: str, fingerprint: tuple):
        """Every vector of these meetings as one matrix; the last few scopes' are kept.

        A client searching again (the common case) costs one matrix product,
        not one per meeting.
        """
        blocks = self._blocks(meetings, model)
        if not blocks:
            return np.zeros(0, np.int64), np.zeros((0, 1), np.float32)
        combined = (np.concatenate([b[0] for b in blocks]), np.vstack([b[1] for b in blocks]))
        with self._lock:
            self._combined[(model, fingerprint)] = combined
            while len(self._combined) > COMBINED_SCOPES:
                self._combined.popitem(last=False)
        return combined

    def _blocks(self, meetings: list[tuple[object, object]], model: str) -> list[tuple]:
        blocks: list[tuple] = []
        missing: dict[str, object] = {}
        with self._lock:
            for meeting_id, stamp in meetings:
                key = (str(meeting_id), model)
                entry = self._cache.get(key)
                if entry is not None and entry[0] == stamp:
                    self._cache.move_to_end(key)
                    blocks.append(entry[1:])
                else:
                    missing[str(meeting_id)] = stamp
        if missing:
            blocks.extend(self._load(missing, model))
        return blocks

    def _load(self, missing: dict[str, object], model: str) -> list[tuple]:
        rows: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        found = Passage.objects.filter(meeting_id__in=list(missing), model=model).values_list(
            "meeting_id", "id", "embedding"
        )
        for meeting_id, passage_id, embedding in found.iterator(chunk_size=5000):
            ids, vectors = rows.setdefault(str(meeting_id), ([], []))
            ids.append(passage_id)
            vectors.append(from_bytes(embedding))
        blocks = []
        with self._lock:
            for meeting_id, (ids, vectors) in rows.items():
                block = (np.array(ids, dtype=np.int64), np.vstack(vectors))
                blocks.append(block)
                key = (meeting_id, model)
                old = self._cache.pop(key, None)
                if old is not None:
                    self._cached_rows -= len(old[1])
                self._cache[key] = (missing[meeting_id], *block)
                self._cached_rows += len(ids)
            while self._cached_rows > MAX_CACHED_VECTORS and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached_rows -= len(evicted[1])
        return blocks

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._combined.clear()
            self._cached_rows = 0


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


class PgvectorStore:
    """Cosine distance in PostgreSQL, through the HNSW index for the vector's size.

    ``hnsw.iterative_scan`` (pgvector 0.8+) keeps scanning the graph until
    enough rows pass the scope filter, so a small client among many still
    gets `k` answers; with an older pgvector a small scope may get fewer.
    Not exercised on this project's CI machine, whose PostgreSQL has no
    pgvector (tests/jobs/test_search_pgvector.py runs where it has).
    """

    name = "pgvector"

    def prepare(self, scope: QuerySet[Meeting], filters: Filters) -> None:
        return None  # the ranking is the database's

    def written(self, passages: list[Passage]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE meetings_passage SET vec = %s::vector WHERE id = %s",
                [(_literal(from_bytes(p.embedding)), p.id) for p in passages],
            )

    def search(
        self, scope: QuerySet[Meeting], filters: Filters, model: str, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        allowed_sql, params = (
            _allowed_passages(scope, filters, model).order_by().values("id").query.sql_with_params()
        )
        dims = len(vector)
        with transaction.atomic(), connection.cursor() as cursor:
            if _pgvector_version(connection.alias) >= (0, 8):
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cursor.execute(
                f"SELECT id, 1 - (vec::vector({dims}) <=> %s::vector({dims})) AS cosine "
                f"FROM meetings_passage WHERE vector_dims(vec) = {dims} AND id IN ({allowed_sql}) "
                f"ORDER BY vec::vector({dims}) <=> %s::vector({dims}) LIMIT %s",
                [_literal(vector), *params, _literal(vector), k],
            )
            rows = cursor.fetchall()
        return sorted(((int(i), float(c)) for i, c in rows), key=lambda r: -r[1])


@cache
def _pgvector_version(alias: str) -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return tuple(int(p) for p in row[0].split(".") if p.isdigit()) if row else ()


@cache
def _has_pgvector_column(alias: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'meetings_passage' AND column_name = 'vec'"
        )
        return cursor.fetchone() is not None


_numpy = NumpyStore()
_pgvector = PgvectorStore()


def store() -> VectorStore:
    """The store for the default database: pgvector where its column exists, else numpy."""
    if connection.vendor == "postgresql" and _has_pgvector_column(connection.alias):
        return _pgvector
    return _numpy
