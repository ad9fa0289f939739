"""pgvector: where the PostgreSQL server has the extension, passages are searched in
the database with the same answers as the numpy store."""

from __future__ import annotations

import pytest
from django.db import connection

from jobs.models import Job
from meetings.models import Meeting
from meetings.search import vectors
from meetings.search.query import Filters
from tests.support.api_factories import make_job, make_meeting, new_client
from tests.support.search import index

pytestmark = pytest.mark.django_db


def _pgvector_column() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'meetings_passage' AND column_name = 'vec'"
        )
        return cursor.fetchone() is not None


def test_pgvector_and_numpy_rank_passages_alike():
    if not _pgvector_column():
        pytest.skip(
            "needs PostgreSQL with the pgvector extension (docker-compose's image has it; "
            "this server has none, so the numpy store is what runs here)"
        )
    assert vectors.store().name == "pgvector"
    client, _ = new_client()
    meeting = make_meeting(
        make_job(client, status=Job.Status.COMPLETED),
        [
            ("A", i * 1000, i * 1000 + 900, f"Topic {i}: " + w)
            for i, w in enumerate(
                ["budget and spending", "travel to Lisbon", "hiring engineers", "the launch date"]
                * 40
            )
        ],
    )
    index(meeting)
    from jobs.providers.local.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    query = embedder.embed(["flights and hotels"]).vectors[0]
    scope = Meeting.objects.filter(id=meeting.id)
    in_db = vectors.store().search(scope, Filters(), embedder.name, query, 5)
    in_process = vectors.NumpyStore().search(scope, Filters(), embedder.name, query, 5)
    assert [i for i, _ in in_db] == [i for i, _ in in_process]


def test_the_store_is_numpy_without_the_extension():
    if _pgvector_column():
        pytest.skip("this database has pgvector")
    assert vectors.store().name == "numpy"
