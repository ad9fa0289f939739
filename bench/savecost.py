"""Scenario 4: saving a 3-hour meeting's transcript, in this process.

Also used by tests/ops/test_bench_queries.py, the one benchmark figure asserted
in CI: the number of queries must not grow with the number of segments.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import AutoField
from django.test.utils import CaptureQueriesContext

from bench.report import Result, Row
from jobs.models import Job
from meetings.models import Segment
from meetings.results import save_transcript
from meetings.transcript import Transcript, Utterance

if TYPE_CHECKING:
    from bench.harness import Harness

THREE_HOURS_MS = 3 * 3600 * 1000
WORDS = 27_000  # three hours at 150 words a minute


def three_hour_transcript(segments: int) -> Transcript:
    """`segments` speaker turns evenly over three hours, four speakers, 27,000 words in all."""
    span = THREE_HOURS_MS // segments
    text = " ".join(["word"] * max(1, WORDS // segments))
    return Transcript(
        utterances=[
            Utterance("ABCD"[i % 4], i * span, (i + 1) * span, text) for i in range(segments)
        ],
        language="en",
        duration_seconds=THREE_HOURS_MS / 1000,
    )


def save_queries(segments: int) -> int:
    """Queries run by save_transcript for a new meeting of `segments` segments."""
    job = Job.objects.create(title=f"save {segments}")
    transcript = three_hour_transcript(segments)
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        save_transcript(job, transcript, "assemblyai")
    return len(captured)


def save_seconds(segments: int) -> float:
    """Wall time of save_transcript for a new meeting of `segments` segments."""
    job = Job.objects.create(title=f"save {segments}")
    transcript = three_hour_transcript(segments)
    started = time.perf_counter()
    with transaction.atomic():
        save_transcript(job, transcript, "assemblyai")
    return time.perf_counter() - started


def segment_insert_batches(segments: int) -> int:
    """INSERT statements Django needs for `segments` segments on this database.

    One on PostgreSQL; on SQLite Django caps a statement at 999 parameters,
    so a bulk insert is split into batches there.
    """
    fields = [f for f in Segment._meta.concrete_fields if not isinstance(f, AutoField)]
    return math.ceil(segments / connection.ops.bulk_batch_size(fields, [None] * segments))


def save_scenario(h: Harness) -> Result:
    """4. Time and queries to save a 3-hour meeting, at two granularities."""
    small, large = h.sizes.s4_segments
    counts = {n: save_queries(n) for n in (small, large)}
    seconds = {n: save_seconds(n) for n in (small, large)}
    notes = [
        f"save_transcript of a new meeting (three hours, {WORDS:,} words) in the bench process; "
        "the baseline saves with the same function, so it has no separate figure.",
    ]
    if segment_insert_batches(large) > 1:
        notes.append(
            f"On SQLite Django splits the segment INSERT into batches of 999 parameters "
            f"({segment_insert_batches(small)} and {segment_insert_batches(large)} statements); "
            "apart from those the count is constant. On PostgreSQL it is one statement."
        )
    return Result(
        4,
        "Saving a 3-hour meeting",
        [
            Row(f"queries, {small:,} segments", counts[small]),
            Row(f"queries, {large:,} segments", counts[large]),
            Row(f"seconds, {small:,} segments", seconds[small]),
            Row(f"seconds, {large:,} segments", seconds[large]),
        ],
        notes,
        {"queries": counts, "seconds": seconds},
    )
