"""A step task reads and claims its job in one statement on PostgreSQL (jobs.step_claim).

The claim keeps jobs.state.claim's semantics: a run that starts says "Attempt N
started" on its timeline, a redelivery is counted, a lease held by another task
drops the message, and a stale or early message claims nothing. Elsewhere the
read and the claim are two statements, with the same results.
"""

from __future__ import annotations

import copy
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobEvent
from jobs.pipeline import runner
from jobs.pipeline.queue import STEP_TASK_NAMES
from jobs.pipeline.steps import ANALYZE, FINALIZE, INDEX, POLL, TRANSCRIBE, next_step
from jobs.providers.analysis_steps import ANALYSIS_STEPS
from jobs.step_claim import PRECONDITIONS, read_for_step

pytestmark = pytest.mark.django_db

TASK = "task-1"
ONE_STATEMENT = connection.vendor == "postgresql"
SAVED = {"transcript_saved_at": timezone.now(), "transcript_external_id": "tx-1"}
INDEXED = {**SAVED, "search_index": "done"}

# A job whose next step is the key, and the seq its poll message carries.
JOBS: dict[str, dict[str, Any]] = {
    TRANSCRIBE: {},
    POLL: {"transcript_external_id": "tx-1", "transcript_polls": 3},
    INDEX: SAVED,
    ANALYZE: {**INDEXED, "analysis_steps_done": ["summary"]},
    FINALIZE: {**INDEXED, "analysis_steps_done": list(ANALYSIS_STEPS)},
}


@pytest.fixture(autouse=True)
def _empty_query_log() -> None:
    connection.queries_log.clear()  # a full log (DEBUG) would capture nothing


@pytest.fixture
def steps_ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Job, str]]:
    """Replace every step with one that records the job (a copy) and holder it got, and is done."""
    ran: list[tuple[str, Job, str]] = []
    for step in runner.STEP_FUNCTIONS:

        def done(job: Job, holder: str, step: str = step) -> None:
            ran.append((step, copy.copy(job), holder))
            _statements_at_step.append(len(connection.queries_log))

        monkeypatch.setitem(runner.STEP_FUNCTIONS, step, done)
    return ran


_statements_at_step: list[int] = []


def make_job(**fields: Any) -> Job:
    fields.setdefault("status", Job.Status.PENDING)
    return Job.objects.create(**fields)


def run(job: Job, step: str, task_id: str = TASK, seq: int | None = None) -> tuple[Any, int]:
    """Run the step's task (steps_ran stands in for the step); its result and the
    statements it ran before the step (all of them if the step did not run)."""
    _statements_at_step.clear()
    with CaptureQueriesContext(connection) as captured:
        result = runner.run_step(job.id, step, task_id, seq=seq)
    if _statements_at_step:
        return result, _statements_at_step[0] - captured.initial_queries
    return result, len(captured.captured_queries)


def test_every_step_has_a_sql_precondition() -> None:
    assert set(PRECONDITIONS) == set(STEP_TASK_NAMES) == set(runner.STEP_FUNCTIONS)


@pytest.mark.parametrize("step", list(JOBS))
def test_the_claim_of_each_step_is_one_statement(step: str, steps_ran: list) -> None:
    job = make_job(status=Job.Status.PROCESSING, attempts=1, **JOBS[step])
    assert next_step(job) == step
    (delay, _), statements = run(job, step, seq=job.transcript_polls if step == POLL else None)
    assert statements == (1 if ONE_STATEMENT else 2)
    [(ran, claimed, holder)] = steps_ran
    assert (ran, holder, claimed.lease_task, claimed.status) == (step, TASK, TASK, "processing")
    stored = Job.objects.get(id=job.id)
    assert (stored.lease_task, stored.due_at) == ("", None)  # released after the step
    assert stored.heartbeat_at == claimed.heartbeat_at
    assert (stored.attempts, stored.redeliveries, stored.message) == (1, 0, claimed.message)
    assert not JobEvent.objects.filter(job=job).exists()


def test_a_run_that_starts_records_attempt_n_started(steps_ran: list) -> None:
    past = timezone.now() - timedelta(seconds=1)
    job = make_job(status=Job.Status.RETRYING, attempts=2, next_attempt_at=past, **SAVED)
    saved: list[JobEvent] = []

    def event_saved(instance: JobEvent, created: bool, **_: Any) -> None:
        saved.append(instance)

    post_save.connect(event_saved, sender=JobEvent)
    try:
        (delay, _), statements = run(job, INDEX)
    finally:
        post_save.disconnect(event_saved, sender=JobEvent)
    assert statements == (1 if ONE_STATEMENT else 3)
    [(_, claimed, _)] = steps_ran
    stored = Job.objects.get(id=job.id)
    assert (claimed.status, claimed.message, claimed.attempts) == (
        "processing",
        "Attempt 2 started",
        2,
    )
    assert (stored.message, stored.next_attempt_at, stored.started_at) == (
        "Attempt 2 started",
        None,
        claimed.started_at,
    )
    [event] = JobEvent.objects.filter(job=job)
    assert (event.status, event.stage, event.attempt, event.message) == (
        "processing",
        job.stage,
        2,
        "Attempt 2 started",
    )
    # The ops wiring logs every event it is told was saved.
    assert [(e.id, e.message, e.created_at) for e in saved] == [
        (event.id, event.message, event.created_at)
    ]


def test_a_first_run_counts_attempt_one(steps_ran: list) -> None:
    job = make_job()
    run(job, TRANSCRIBE)
    stored = Job.objects.get(id=job.id)
    assert (stored.attempts, stored.message, stored.redeliveries) == (1, "Attempt 1 started", 0)
    assert stored.started_at is not None
    assert list(JobEvent.objects.filter(job=job).values_list("message", flat=True)) == [
        "Attempt 1 started"
    ]


def test_a_step_of_a_running_job_writes_its_opening_note(steps_ran: list) -> None:
    job = make_job(status=Job.Status.PROCESSING, attempts=1, message="Transcript saved", **SAVED)
    run(job, INDEX)
    [(_, claimed, _)] = steps_ran
    assert claimed.message == runner.OPENING_NOTES[INDEX]
    assert Job.objects.get(id=job.id).message == runner.OPENING_NOTES[INDEX]
    assert not JobEvent.objects.filter(job=job).exists()


def test_a_redelivered_claim_counts_a_redelivery(steps_ran: list) -> None:
    held = timezone.now() + timedelta(minutes=1)
    job = make_job(
        status=Job.Status.PROCESSING, attempts=1, lease_task=TASK, lease_expires=held, **SAVED
    )
    (_, _), statements = run(job, INDEX)
    assert statements == (1 if ONE_STATEMENT else 2)
    [(_, claimed, _)] = steps_ran
    assert claimed.redeliveries == 1
    assert Job.objects.get(id=job.id).redeliveries == 1


def test_a_redelivery_past_the_limit_fails_the_job(settings: Any, steps_ran: list) -> None:
    held = timezone.now() + timedelta(minutes=1)
    job = make_job(
        status=Job.Status.PROCESSING,
        lease_task=TASK,
        lease_expires=held,
        redeliveries=settings.JOB_MAX_REDELIVERIES,
    )
    assert runner.run_step(job.id, TRANSCRIBE, TASK) == (None, None)
    assert not steps_ran
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.error_code) == ("failed", "redelivery_limit")


def test_a_job_whose_lease_another_holds_is_not_claimed(steps_ran: list) -> None:
    held = timezone.now() + timedelta(minutes=1)
    job = make_job(status=Job.Status.PROCESSING, lease_task="task-2", lease_expires=held, **SAVED)
    result, statements = run(job, INDEX)
    assert result == (None, None)
    assert statements == (1 if ONE_STATEMENT else 2)
    assert not steps_ran
    stored = Job.objects.get(id=job.id)
    assert (stored.lease_task, stored.redeliveries, stored.updated_at) == (
        "task-2",
        0,
        job.updated_at,
    )


def test_an_expired_lease_and_a_retry_of_the_same_task_are_free(steps_ran: list) -> None:
    lapsed = timezone.now() - timedelta(seconds=1)
    job = make_job(status=Job.Status.PROCESSING, lease_task="task-2", lease_expires=lapsed)
    run(job, TRANSCRIBE)
    held = timezone.now() + timedelta(minutes=1)
    other = make_job(status=Job.Status.PROCESSING, lease_task=TASK, lease_expires=held)
    runner.run_step(other.id, TRANSCRIBE, TASK, celery_retries=2)
    assert [(job_.id, holder) for _, job_, holder in steps_ran] == [
        (job.id, TASK),
        (other.id, f"{TASK}#2"),
    ]
    assert Job.objects.get(id=other.id).redeliveries == 0


def test_a_stale_poll_is_one_statement_and_claims_nothing(steps_ran: list) -> None:
    job = make_job(status=Job.Status.PROCESSING, **JOBS[POLL])
    (delay, returned), statements = run(job, POLL, seq=2)
    assert (delay, returned.id, returned.transcript_polls) == (None, job.id, 3)
    assert statements == 1
    # A trailing poll after the transcript was saved is stale too.
    saved = make_job(status=Job.Status.PROCESSING, **SAVED)
    (delay, returned), statements = run(saved, POLL, seq=0)
    assert (delay, returned.id, statements) == (None, saved.id, 1)
    assert not steps_ran
    assert Job.objects.filter(lease_task=TASK).count() == 0


def test_a_step_due_later_returns_its_delay_without_a_claim(steps_ran: list) -> None:
    later = timezone.now() + timedelta(seconds=30)
    job = make_job(status=Job.Status.RETRYING, next_attempt_at=later, **SAVED)
    (delay, returned), statements = run(job, INDEX)
    assert 25 < delay <= 30 and returned.id == job.id
    assert statements == 1
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.lease_task, stored.message) == ("retrying", "", "")


def test_a_message_for_another_step_or_an_ended_job_claims_nothing(steps_ran: list) -> None:
    for step in (TRANSCRIBE, POLL, ANALYZE, FINALIZE):
        job = make_job(**SAVED)
        (delay, returned), statements = run(job, step)
        assert (delay, returned.id, statements) == (None, job.id, 1)
    ended = make_job(status=Job.Status.CANCELLED)
    assert runner.run_step(ended.id, TRANSCRIBE, TASK)[0] is None
    assert runner.run_step(Job().id, TRANSCRIBE, TASK) == (None, None)
    assert not steps_ran
    assert not Job.objects.filter(lease_task=TASK).exists()
    assert not JobEvent.objects.exists()


@pytest.mark.parametrize("template", [{}, {"sections": [{"key": "risks"}]}, {"sections": None}])
def test_the_sql_preconditions_agree_with_next_step(template: dict) -> None:
    states = [
        *JOBS.values(),
        {"transcript_external_id": "tx-1", "search_index": "done"},
        {**INDEXED, "analysis_steps_failed": list(ANALYSIS_STEPS)},
        {
            **INDEXED,
            "analysis_steps_done": ["summary", "decisions"],
            "analysis_steps_failed": ["speaker_names", "action_items"],
        },
        {**INDEXED, "analysis_steps_done": [*ANALYSIS_STEPS, "section:risks"]},
        {**SAVED, "search_index": "failed", "analysis_steps_done": list(ANALYSIS_STEPS)},
    ]
    for fields in states:
        job = make_job(analysis_template=template, **fields)
        for step in PRECONDITIONS:
            read = read_for_step(job.id, step, f"{TASK}-{step}", "", job.transcript_polls)
            landed = read.claim() is not None if next_step(read.job) == step else read.landed
            assert landed == (next_step(job) == step), (fields, template, step)
            if landed:
                Job.objects.filter(id=job.id).update(lease_task="", status=Job.Status.PENDING)


@pytest.mark.skipif(not ONE_STATEMENT, reason="one statement on PostgreSQL only")
def test_a_claim_the_sql_made_but_next_step_refuses_is_given_back(steps_ran: list) -> None:
    # A template section keyed True: Python names its step "section:True", SQL "section:true".
    done = [*ANALYSIS_STEPS, "section:True"]
    job = make_job(
        analysis_template={"sections": [{"key": True}]}, analysis_steps_done=done, **INDEXED
    )
    assert next_step(job) == FINALIZE
    read = read_for_step(job.id, ANALYZE, TASK, "", None)
    assert read.landed and Job.objects.get(id=job.id).lease_task == TASK
    read.give_back()
    assert Job.objects.get(id=job.id).lease_task == ""
    (delay, returned), statements = run(job, ANALYZE)
    assert (delay, returned.status, returned.lease_task) == (None, "pending", "")
    stored = Job.objects.get(id=job.id)
    assert (stored.status, stored.lease_task, stored.message, stored.attempts) == (
        "pending",
        "",
        "",
        0,
    )
    assert (stored.started_at, stored.updated_at) == (None, job.updated_at)
    assert not JobEvent.objects.filter(job=job).exists()
    # The step the SQL refused but next_step names is claimed the two-statement way.
    runner.run_step(job.id, FINALIZE, TASK)
    assert [step for step, _, _ in steps_ran] == [FINALIZE]
    assert list(JobEvent.objects.filter(job=job).values_list("message", flat=True)) == [
        "Attempt 1 started"
    ]


@pytest.mark.skipif(not ONE_STATEMENT, reason="one statement on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_of_two_deliveries_at_once_one_claims() -> None:
    job = make_job()
    start = threading.Barrier(2)
    reads: list[bool] = []

    def deliver(task_id: str) -> None:
        try:
            start.wait()
            read = read_for_step(job.id, TRANSCRIBE, task_id, "", None)
            reads.append(read.landed)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(f"task-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(reads) == [False, True]
    assert JobEvent.objects.filter(job=job).count() == 1


@pytest.mark.parametrize("step", [INDEX, ANALYZE, FINALIZE])
def test_a_step_that_reads_the_meeting_gets_it_with_its_claim(step: str) -> None:
    from meetings.models import Meeting

    job = make_job(**JOBS[step])
    meeting = Meeting.objects.create(job=job, title="Planning", degraded=["decisions"])
    with CaptureQueriesContext(connection) as captured:
        read = read_for_step(job.id, step, TASK, "", None)
        got = read.job.meeting
    assert (got.id, got.title, got.degraded) == (meeting.id, "Planning", ["decisions"])
    assert got.job is read.job
    assert len(captured.captured_queries) == (1 if ONE_STATEMENT else 2)


def test_a_step_whose_job_has_no_meeting_yet_reads_none() -> None:
    job = make_job(**JOBS[INDEX])
    read = read_for_step(job.id, INDEX, TASK, "", None)
    assert read.job.id == job.id and "meeting" not in read.job._state.fields_cache


def test_the_transcribe_claim_enters_the_transcribing_stage(steps_ran: list) -> None:
    # The stage change, its timing and the run's first line are the claim's own
    # statement: the transcribe step writes nothing before its first request.
    queued_at = timezone.now() - timedelta(seconds=4)
    job = make_job(stage_started_at=queued_at)
    (_, _), statements = run(job, TRANSCRIBE)
    assert statements == (1 if ONE_STATEMENT else 3)
    [(_, claimed, _)] = steps_ran
    stored = Job.objects.get(id=job.id)
    for row in (claimed, stored):
        assert (row.stage, row.progress, row.message) == ("transcribing", 5, "Attempt 1 started")
        assert 4 <= row.stage_seconds["queued"] < 60
        assert row.stage_started_at > queued_at
    [event] = JobEvent.objects.filter(job=job)
    assert (event.stage, event.progress, event.message) == ("transcribing", 5, "Attempt 1 started")


def test_a_transcribe_claim_after_a_wait_says_it_sends_the_audio(steps_ran: list) -> None:
    job = make_job(status=Job.Status.PROCESSING, attempts=1, stage=Job.Stage.TRANSCRIBING)
    job.stage_seconds = {"queued": 2.5}
    job.save()
    run(job, TRANSCRIBE)
    stored = Job.objects.get(id=job.id)
    assert (stored.stage, stored.message) == ("transcribing", runner.OPENING_NOTES[TRANSCRIBE])
    assert stored.stage_seconds == {"queued": 2.5}  # no stage ended
