"""Steps due at once on the same queue run in one task: index, analyze and finalize
follow each other without a trip through the broker, while the task is young."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

import jobs.tasks  # registers the step tasks
from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline import runner
from jobs.pipeline.steps import next_step
from jobs.step_claim import StepRead
from tests.conftest import SAMPLE_AUDIO
from tests.support.broker import run_queued

QUEUES = ("transcription", "analysis")


def run_job(broker) -> tuple[Job, list[str]]:
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(Job(title="Chained", audio=ContentFile(fh.read(), "a.wav")))
    ran = [name for name, _ in run_queued(broker, QUEUES, stop_after=50)]
    return Job.objects.get(id=job.id), ran


@pytest.mark.django_db(transaction=True)
def test_index_analyze_and_finalize_run_in_one_task(provider_settings, private_broker):
    job, ran = run_job(private_broker)
    assert job.status == Job.Status.COMPLETED, job.error_message
    assert [name for name in ran if name not in ("jobs.transcribe", "jobs.poll_transcript")] == [
        "jobs.index"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_chain_holds_one_lease_from_index_to_finalize(
    provider_settings, private_broker, monkeypatch
):
    # No release, read or claim between chained steps; finalize's own write gives the lease back.
    seen: list[tuple[str, str | None]] = []
    claim, release = StepRead.claim, runner.release

    def claiming(read):
        seen.append(("claim", next_step(read.job)))
        return claim(read)

    def releasing(job, *args, **kwargs):
        seen.append(("release", next_step(job)))
        return release(job, *args, **kwargs)

    monkeypatch.setattr(StepRead, "claim", claiming)
    monkeypatch.setattr(runner, "release", releasing)
    job, _ = run_job(private_broker)
    assert job.status == Job.Status.COMPLETED, job.error_message
    assert seen[seen.index(("claim", "index")) :] == [("claim", "index")]
    assert (job.lease_task, job.lease_expires, job.due_at) == ("", None, None)


@pytest.mark.django_db(transaction=True)
def test_an_old_task_hands_the_next_step_to_the_queue(
    provider_settings, private_broker, monkeypatch
):
    monkeypatch.setattr(jobs.tasks, "CHAIN_WHILE_YOUNGER_THAN", 0)
    job, ran = run_job(private_broker)
    assert job.status == Job.Status.COMPLETED, job.error_message
    # The analysis's last answer completes the job in its own write: no finalize task.
    assert ran[-2:] == ["jobs.index", "jobs.analyze"]
    assert "jobs.finalize" not in ran


def test_a_chain_ends_inside_the_shipped_soft_limit(settings):
    # The last step a chain may start is an analyze: it stops taking calls
    # after its budget, and its calls in flight end within their timeout.
    assert jobs.tasks.CHAIN_WHILE_YOUNGER_THAN == 30
    worst = (
        jobs.tasks.CHAIN_WHILE_YOUNGER_THAN
        + settings.ANALYSIS_TASK_BUDGET_SECONDS
        + settings.PROVIDER_TIMEOUT_SECONDS
    )
    assert worst < settings.TASK_SOFT_TIME_LIMIT


@pytest.mark.django_db(transaction=True)
def test_a_chain_reuses_what_its_first_step_read(provider_settings, private_broker):
    # The transcript is read once for the index and the analysis; the index starts
    # from no passages (the transcript's save deleted them); a meeting that
    # degraded nothing gets no `degraded` write.
    with CaptureQueriesContext(connection) as captured:
        job, _ = run_job(private_broker)
    assert job.status == Job.Status.COMPLETED, job.error_message
    sql = [q["sql"] for q in captured.captured_queries]
    assert len([s for s in sql if s.startswith("SELECT") and 'FROM "meetings_segment"' in s]) == 1
    assert len([s for s in sql if s.startswith('DELETE FROM "meetings_passage"')]) == 1
    assert not [s for s in sql if s.startswith('UPDATE "meetings_meeting" SET "degraded"')]
    assert job.meeting.passages.exists() and job.meeting.degraded == []
    # One chunk: the index's "Search index ready" stands until the first step lands.
    messages = list(job.events.order_by("id").values_list("message", flat=True))
    ready = next(i for i, m in enumerate(messages) if m.startswith("Search index ready"))
    assert messages[ready + 1].endswith(" ready"), messages
    # The last answer's checkpoint is the completion's write.
    steps = [m for m in messages[ready + 1 :] if m.endswith(" ready")]
    assert len(steps) == len(job.analysis_steps_done) - 1 and messages[-1] == "Completed", messages
