"""What one state change costs the database (issue 14, "one state change, one round trip").

A step's state write is one conditional UPDATE and one JobEvent; a chunk's
answer of a long analysis is one UPDATE with no read and no row lock; stage
timings are columns the migration fills from the timeline.
"""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.errors import JobLost
from jobs.models import Job, JobEvent
from jobs.pipeline.checkpoints import save_chunk_answer
from jobs.pipeline.finalize import complete
from jobs.state import update_job
from meeting_intel.lib.bulk import Rows
from meetings.models import Decision, Meeting
from meetings.results import DECISION_FIELDS

pytestmark = pytest.mark.django_db

HOLDER = "task-1"


@pytest.fixture
def running() -> Job:
    return Job.objects.create(
        status=Job.Status.PROCESSING,
        stage=Job.Stage.ANALYZING,
        lease_task=HOLDER,
        lease_expires=timezone.now() + timedelta(minutes=1),
        analysis_partials={"decisions": {"0": {"decisions": []}}},
        prompt_tokens=10,
    )


@pytest.fixture(autouse=True)
def _empty_query_log() -> None:
    connection.queries_log.clear()  # a full log (DEBUG) would capture nothing


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def test_a_state_write_is_one_update_and_one_event(running: Job) -> None:
    with CaptureQueriesContext(connection) as captured:
        update_job(running, "Summary ready", holder=HOLDER, progress=60)
    sql = statements(captured)
    if connection.vendor == "postgresql":
        # One round trip: the UPDATE is a CTE and the event is inserted from its RETURNING.
        assert len(sql) == 1, sql
        assert sql[0].startswith('WITH "updated" AS (UPDATE "jobs_job"')
        assert 'INSERT INTO "jobs_jobevent"' in sql[0]
    else:
        assert len(sql) == 2, sql
        assert sql[0].startswith("UPDATE") and "jobs_jobevent" in sql[1]
    assert not any("SAVEPOINT" in s or "FOR UPDATE" in s or s.startswith("SELECT") for s in sql)
    [event] = JobEvent.objects.filter(job=running)
    assert (event.status, event.stage, event.progress, event.message) == (
        Job.Status.PROCESSING,
        Job.Stage.ANALYZING,
        60,
        "Summary ready",
    )
    stored = Job.objects.get(id=running.id)
    assert (stored.progress, stored.message) == (60, "Summary ready")


def test_a_state_write_that_lost_its_lease_records_no_event(running: Job) -> None:
    with pytest.raises(JobLost):
        update_job(running, "Summary ready", holder="another-task", progress=60)
    assert not JobEvent.objects.filter(job=running).exists()
    assert Job.objects.get(id=running.id).progress == 0


def _meeting_with_decision(job: Job) -> Meeting:
    meeting = Meeting.objects.create(job=job, title="m", summary="old")
    Decision.objects.create(meeting=meeting, index=0, text="Old decision")
    return meeting


def _riders(meeting: Meeting) -> list:
    return [
        (Meeting.objects.filter(pk=meeting.pk), {"summary": "new"}),
        (meeting.decisions.all(), None),
        Rows(Decision, DECISION_FIELDS, [(0, "New decision", 1000)], {"meeting_id": meeting.id}),
    ]


def test_a_steps_results_ride_in_its_state_write(running: Job) -> None:
    meeting = _meeting_with_decision(running)
    with CaptureQueriesContext(connection) as captured:
        update_job(running, "Summary ready", holder=HOLDER, also=_riders(meeting), progress=60)
    sql = statements(captured)
    if connection.vendor == "postgresql":
        assert len(sql) == 1, sql
        assert 'UPDATE "meetings_meeting"' in sql[0] and 'DELETE FROM "meetings_decision"' in sql[0]
        assert 'INSERT INTO "meetings_decision"' in sql[0]
    stored = Meeting.objects.get(pk=meeting.pk)
    assert stored.summary == "new"
    assert list(stored.decisions.values_list("text", "source_start_ms")) == [("New decision", 1000)]
    assert Job.objects.get(id=running.id).progress == 60


def test_results_riding_on_a_write_that_lost_its_lease_change_nothing(running: Job) -> None:
    # Outside any transaction: on PostgreSQL each rider is conditional on the job's UPDATE.
    meeting = _meeting_with_decision(running)
    with pytest.raises(JobLost):
        update_job(running, "Summary ready", holder="another-task", also=_riders(meeting))
    stored = Meeting.objects.get(pk=meeting.pk)
    assert stored.summary == "old"
    assert list(stored.decisions.values_list("text", flat=True)) == ["Old decision"]
    assert not JobEvent.objects.filter(job=running).exists()


def test_a_chunk_answer_is_checkpointed_in_one_statement_without_a_lock(running: Job) -> None:
    with CaptureQueriesContext(connection) as captured:
        save_chunk_answer(running, HOLDER, "decisions", 1, {"decisions": [{"text": "Ship"}]}, 5, 2)
        save_chunk_answer(running, HOLDER, "section:risks", 0, {"items": []}, 1, 1)
    sql = statements(captured)
    assert len(sql) == 2, sql
    assert all(s.startswith("UPDATE") and "FOR UPDATE" not in s for s in sql)

    stored = Job.objects.get(id=running.id)
    expected = {
        "decisions": {"0": {"decisions": []}, "1": {"decisions": [{"text": "Ship"}]}},
        "section:risks": {"0": {"items": []}},
    }
    assert stored.analysis_partials == running.analysis_partials == expected
    assert (stored.prompt_tokens, stored.completion_tokens) == (16, 3)
    assert (running.prompt_tokens, running.completion_tokens) == (16, 3)


def test_a_step_that_lost_its_lease_checkpoints_nothing(running: Job) -> None:
    Job.objects.filter(id=running.id).update(status=Job.Status.CANCELLED)
    with pytest.raises(JobLost):
        save_chunk_answer(running, HOLDER, "decisions", 1, {"decisions": []}, 5, 2)
    with pytest.raises(JobLost):
        save_chunk_answer(running, "another-task", "decisions", 1, {"decisions": []}, 5, 2)
    stored = Job.objects.get(id=running.id)
    assert stored.analysis_partials == {"decisions": {"0": {"decisions": []}}}
    assert stored.prompt_tokens == 10


def test_the_migration_fills_stage_timings_from_the_timeline() -> None:
    from django.apps import apps

    backfill = importlib.import_module("jobs.migrations.0009_stage_timings").backfill_from_timeline
    start = timezone.now() - timedelta(hours=2)
    job = Job.objects.create(created_at=start)
    for status, stage, seconds in (
        ("pending", "queued", 0),
        ("processing", "transcribing", 4),
        ("failed", "transcribing", 10),
        ("failed", "transcribing", 20),  # a note after the end
        ("pending", "queued", 3600),  # a retry: a new run
        ("processing", "transcribing", 3601),
        ("processing", "analyzing", 3603),
    ):
        JobEvent.objects.create(
            job=job, status=status, stage=stage, created_at=start + timedelta(seconds=seconds)
        )
    backfill(apps, None)
    job.refresh_from_db()
    assert job.run_started_at == start + timedelta(seconds=3600)
    assert job.stage_started_at == start + timedelta(seconds=3603)
    assert job.stage_seconds == {"queued": 1, "transcribing": 2}


def test_the_last_answer_and_the_completion_are_one_write(running: Job) -> None:
    # The summary's UPDATE of the meeting and the `degraded` list the completion
    # writes become one UPDATE: one statement must not update a row twice.
    meeting = Meeting.objects.create(job=running, title="m", summary="old")
    running.analysis_steps_failed = ["decisions"]
    summary = (Meeting.objects.filter(pk=meeting.pk), {"summary": "new"})
    with CaptureQueriesContext(connection) as captured:
        complete(running, HOLDER, {"analysis_steps_done": ["summary"]}, [summary])
    if connection.vendor == "postgresql":
        [sql] = statements(captured)
        assert sql.count('UPDATE "meetings_meeting"') == 1
    stored = Meeting.objects.get(pk=meeting.pk)
    assert (stored.summary, stored.degraded) == ("new", ["decisions"])
    job = Job.objects.get(id=running.id)
    assert (job.status, job.analysis_steps_done, job.lease_task) == ("completed", ["summary"], "")
    assert list(job.events.values_list("message", flat=True)) == ["Completed (without decisions)"]
