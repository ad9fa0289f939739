"""meeting_intel.lib.bulk.insert_rows stores rows as bulk_create would, in one statement."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from meeting_intel.lib.bulk import insert_rows
from meetings.models import Meeting, Passage, Segment, Speaker

pytestmark = pytest.mark.django_db


def _meeting() -> tuple[Meeting, Speaker]:
    meeting = Meeting.objects.create(job=Job.objects.create(title="bulk"))
    return meeting, Speaker.objects.create(meeting=meeting, label="A")


def test_it_stores_every_value_and_returns_ids_in_the_order_given() -> None:
    meeting, speaker = _meeting()
    fields = ("index", "speaker_id", "first_segment", "last_segment", "start_ms", "end_ms")
    fields += ("text", "model", "embedding")
    rows = [
        (2, speaker.id, 4, 5, 40, 50, 'quotes " \\ and ünïcode', "m", b"\x00\xff\x10"),
        (0, None, 0, 3, 0, 30, "", "m", b""),
        (1, speaker.id, 4, 4, 40, 41, "line\nbreak", "m", bytes(range(256))),
    ]

    with CaptureQueriesContext(connection) as captured:
        ids = insert_rows(
            Passage, fields, rows, shared={"meeting_id": meeting.id}, returning=("id", "index")
        )

    assert len(captured) == 1
    assert [index for _, index in ids] == [2, 0, 1]
    for (pk, _), row in zip(ids, rows, strict=True):
        stored = Passage.objects.values_list("meeting_id", *fields).get(id=pk)
        assert (*stored[:-1], bytes(stored[-1])) == (meeting.id, *row)


def test_it_inserts_nothing_for_no_rows() -> None:
    assert insert_rows(Segment, ("meeting_id", "index"), [], returning=("id",)) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite keeps any length")
def test_it_refuses_a_value_too_long_for_its_column() -> None:
    meeting, _ = _meeting()
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(Speaker, ("meeting_id", "label"), [(meeting.id, "x" * 17)])


def test_it_keeps_the_tables_constraints() -> None:
    meeting, speaker = _meeting()
    fields = ("meeting_id", "speaker_id", "index", "start_ms", "end_ms", "text")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Segment, fields, [(meeting.id, speaker.id, 0, 0, 1, "a")] * 2)
