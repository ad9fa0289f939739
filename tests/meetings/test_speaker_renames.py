"""A speaker renamed by a person keeps the name when the analysis runs again, and a
rename moves the action items of that speaker only, not those of a namesake."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from jobs.actions import reprocess_job, submit_job
from jobs.models import Job
from jobs.pipeline.runner import run_inline
from meetings import results
from meetings.models import Meeting
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import api_for, make_job, make_meeting, new_client


def rename(key: str, meeting: Meeting, label: str, name: str) -> None:
    response = api_for(key).patch(
        f"/api/v1/meetings/{meeting.id}/speakers/{label}/", {"name": name}, format="json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_a_rename_survives_reprocess_from_analysis(provider_settings, fake_openai):
    client, key = new_client()
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(Job(client=client, audio=ContentFile(fh.read(), "a.wav")), enqueue=False)
    job = run_inline(job.id)
    meeting = Meeting.objects.get(job=job)
    assert dict(meeting.speakers.values_list("label", "name"))["A"] == "Alice"
    rename(key, meeting, "A", "Dr. Alice Moreau")
    assert reprocess_job(job, "analysis")
    job = run_inline(job.id)
    assert job.status == Job.Status.COMPLETED
    names = dict(meeting.speakers.values_list("label", "name"))
    assert names == {"A": "Dr. Alice Moreau", "B": "Bob"}


@pytest.mark.django_db
def test_a_rename_moves_only_that_speakers_items():
    client, key = new_client()
    job = make_job(client, status=Job.Status.COMPLETED)
    meeting = make_meeting(
        job, [("A", 0, 1000, "Hi."), ("B", 1000, 2000, "Hello.")], names={"A": "Alex", "B": "Alex"}
    )
    # The analysis's answer, as the pipeline saves it: owners by label.
    from jobs.pipeline import answers

    context = answers.AnswerContext(
        duration_ms=2000, speaker_names={"A": "Alex", "B": "Alex"}, spoken_text="hi. hello."
    )
    data = answers.clean(
        "action_items",
        {
            "action_items": [
                {"text": "Book the room", "owner": "A", "due_date": None, "source_start_ms": 0},
                {"text": "Send slides", "owner": "B", "due_date": None, "source_start_ms": 1000},
            ]
        },
        context,
    )
    results.save_step(meeting, "action_items", data)
    rename(key, meeting, "A", "Alexandra")
    owners = dict(meeting.action_items.values_list("text", "owner"))
    assert owners == {"Book the room": "Alexandra", "Send slides": "Alex"}
