"""What every recovery test checks at the end: each job completed exactly once,
paid for once, and announced by one webhook."""

from __future__ import annotations

import json

from jobs.models import Job, JobEvent
from meetings.models import Meeting
from tests.conftest import wait_until
from tests.fakes.script import DEFAULT_MEETING


def wait_all_terminal(ids: list[str], timeout: float = 120) -> list[Job]:
    return wait_until(
        lambda: (
            (jobs := list(Job.objects.filter(id__in=ids)))
            and all(j.is_terminal for j in jobs)
            and jobs
        ),
        timeout=timeout,
        interval=0.25,
    )


def assert_each_completed_exactly_once(
    ids, receiver, fake_aai, submissions_before: int, timeout: float = 120
) -> list[Job]:
    jobs = wait_all_terminal(ids, timeout)
    submissions = len(fake_aai.submissions) - submissions_before
    assert {j.status for j in jobs} == {"completed"}, [(j.status, j.error_message) for j in jobs]
    for job in jobs:
        assert JobEvent.objects.filter(job=job, status="completed").count() == 1
        meeting = Meeting.objects.get(job=job)
        assert meeting.segments.count() == len(DEFAULT_MEETING)
        assert meeting.speakers.count() == 2
        assert meeting.action_items.count() == 1 and meeting.decisions.count() == 1
        assert meeting.degraded == []
    assert submissions == len(ids), "every job is submitted to AssemblyAI exactly once"
    hooks = receiver.wait_for(len(ids), timeout=30)
    events: dict[str, set[str]] = {}
    for hook in hooks:
        body = json.loads(hook.body)
        events.setdefault(body["data"]["job_id"], set()).add(hook.headers["webhook-id"])
        assert body["type"] == "job.completed"
    assert set(events) == set(ids)
    assert all(len(webhook_ids) == 1 for webhook_ids in events.values())
    return jobs
