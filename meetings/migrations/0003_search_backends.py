"""The database side of search, per vendor.

PostgreSQL: ``meetings_segment.search_vector``, a stored generated
``tsvector`` (the database keeps it up to date on every write of a segment,
the save step's included), with a GIN index; and, where the server has the
pgvector extension, ``meetings_passage.vec`` with HNSW indexes for the two
embedding sizes in use. SQLite: an FTS5 index over segment text kept in step
by triggers. Other vendors get neither, and search says so.
"""

from __future__ import annotations

from django.db import migrations

PG_KEYWORD = [
    "ALTER TABLE meetings_segment ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX meetings_segment_search ON meetings_segment USING GIN (search_vector)",
]
PG_KEYWORD_UNDO = ["ALTER TABLE meetings_segment DROP COLUMN IF EXISTS search_vector"]

PG_VECTOR = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "ALTER TABLE meetings_passage ADD COLUMN vec vector",
    *(
        f"CREATE INDEX meetings_passage_vec_{dims} ON meetings_passage USING hnsw "
        f"((vec::vector({dims})) vector_cosine_ops) WHERE vector_dims(vec) = {dims}"
        for dims in (384, 1536)
    ),
]
PG_VECTOR_UNDO = ["ALTER TABLE meetings_passage DROP COLUMN IF EXISTS vec"]

SQLITE = [
    "CREATE VIRTUAL TABLE meetings_segment_fts USING fts5("
    "text, content='meetings_segment', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER meetings_segment_fts_ai AFTER INSERT ON meetings_segment BEGIN "
    "INSERT INTO meetings_segment_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER meetings_segment_fts_ad AFTER DELETE ON meetings_segment BEGIN "
    "INSERT INTO meetings_segment_fts(meetings_segment_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER meetings_segment_fts_au AFTER UPDATE OF text ON meetings_segment BEGIN "
    "INSERT INTO meetings_segment_fts(meetings_segment_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO meetings_segment_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO meetings_segment_fts(meetings_segment_fts) VALUES ('rebuild')",
]
SQLITE_UNDO = [
    "DROP TRIGGER IF EXISTS meetings_segment_fts_ai",
    "DROP TRIGGER IF EXISTS meetings_segment_fts_ad",
    "DROP TRIGGER IF EXISTS meetings_segment_fts_au",
    "DROP TABLE IF EXISTS meetings_segment_fts",
]


def pgvector_available(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    return cursor.fetchone() is not None


def _run(schema_editor, statements: list[str]) -> None:
    with schema_editor.connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def forwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_KEYWORD)
        with schema_editor.connection.cursor() as cursor:
            if pgvector_available(cursor):
                _run(schema_editor, PG_VECTOR)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE)


def backwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_VECTOR_UNDO + PG_KEYWORD_UNDO)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_UNDO)


class Migration(migrations.Migration):
    dependencies = [("meetings", "0002_search_index")]

    operations = [migrations.RunPython(forwards, backwards)]
