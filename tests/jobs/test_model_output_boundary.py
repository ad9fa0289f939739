"""Schema-valid but hostile model output is fixed at one boundary before it is saved:
timestamps clamped to the meeting, control characters and NUL stripped, lengths capped,
repeats within one answer dropped, owners matched against the meeting's people; and an
answer the database still refuses degrades its own step only."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from jobs.actions import reprocess_job, submit_job
from jobs.models import Job
from jobs.pipeline import answers
from jobs.pipeline.runner import run_inline
from meetings.models import Meeting
from meetings.transcript import Transcript, Utterance
from tests.conftest import SAMPLE_AUDIO

HUGE_MS = 1_593_925_740_563_301


def new_job() -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        return submit_job(Job(audio=ContentFile(fh.read(), "a.wav")), enqueue=False)


HOSTILE = {
    "speaker_names": {
        "speakers": [
            {"label": "A", "name": "Ali\x00ce\x1b[31m"},
            {"label": "A", "name": "Mallory"},
            {"label": "Z", "name": "Nobody"},
            {"label": "B", "name": "Bob " + "b" * 500},
        ]
    },
    "summary": {"summary": "Plan\x00ned the launch.\x07 " + "x" * 50_000},
    "action_items": {
        "action_items": [
            {
                "text": "Send the\x00 report",
                "owner": "bob",
                "due_date": "2026-11-27",
                "source_start_ms": HUGE_MS,
            }
        ]
        * 13
        + [
            {"text": "SEND  the report", "owner": None, "due_date": None, "source_start_ms": 5},
            {
                "text": "Update the docs",
                "owner": "Zed the intern",
                "due_date": None,
                "source_start_ms": -40,
            },
            {"text": "Ask Carol", "owner": "carol", "due_date": None, "source_start_ms": 3_000},
        ]
    },
    "decisions": {"decisions": [{"text": "Ship on Monday\x00", "source_start_ms": 3_000_000_000}]},
}


@pytest.mark.django_db(transaction=True)
def test_hostile_answers_are_cleaned_and_the_job_completes(provider_settings, fake_openai):
    fake_openai.responses.update(HOSTILE)
    job = run_inline(new_job().id)
    assert job.status == Job.Status.COMPLETED, (job.error_code, job.error_message)
    meeting = Meeting.objects.get(job=job)
    duration_ms = max(meeting.segments.values_list("end_ms", flat=True))
    duration_ms = max(duration_ms, int((meeting.duration_seconds or 0) * 1000))
    assert meeting.degraded == []

    names = dict(meeting.speakers.values_list("label", "name"))
    assert names["A"] == "Alice[31m" and len(names["B"]) <= 120

    assert "\x00" not in meeting.summary and "\x07" not in meeting.summary
    assert len(meeting.summary) <= answers.SUMMARY_MAX_CHARS

    items = list(meeting.action_items.order_by("index").values("text", "owner", "source_start_ms"))
    assert [i["text"] for i in items] == ["Send the report", "Update the docs", "Ask Carol"]
    assert items[0]["owner"] == "bob" and items[0]["source_start_ms"] == duration_ms
    assert items[1]["owner"] == "" and items[1]["source_start_ms"] is None
    assert items[2]["owner"] == "carol" and items[2]["source_start_ms"] == 3_000

    decision = meeting.decisions.get()
    assert decision.text == "Ship on Monday" and decision.source_start_ms == duration_ms


def test_the_boundary_helpers():
    context = answers.AnswerContext.of(
        Transcript([Utterance("A", 0, 1_000, "Hi Dana."), Utterance("B", 1_000, 2_500, "Hi.")]),
        names={"A": "Erin"},
        participants=["Frank Ocean"],
    )
    assert context.duration_ms == 2_500
    assert answers.timestamp(HUGE_MS, context) == 2_500
    assert answers.timestamp(True, context) is None and answers.timestamp("7", context) is None
    assert answers.text("a\x00b\ud800c\u0085d\n\te  f") == "abcd\ne f"
    assert answers.owner("A", context) == "Erin"
    assert answers.owner("B", context) == "B"  # a speaker whose name is not known yet
    assert answers.owner("erin", context) == "Erin"
    assert answers.owner("frank ocean", context) == "Frank Ocean"
    assert answers.owner("dana", context) == "dana"  # named in the meeting
    assert answers.owner("Danaher", context) == ""
    assert answers.dedupe([{"text": "X y"}, {"text": " x  Y "}, {"text": ""}]) == [{"text": "X y"}]


@pytest.mark.django_db(transaction=True)
def test_an_answer_the_database_refuses_degrades_that_step_only(
    provider_settings, fake_openai, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores NUL and any integer; PostgreSQL refuses them")
    job = run_inline(new_job().id)
    assert job.status == Job.Status.COMPLETED
    chats = len(fake_openai.request_times("chat"))
    # What a cleaner that missed something would let through.
    monkeypatch.setitem(answers.CLEANERS, "decisions", lambda data, context: data)
    fake_openai.responses["decisions"] = {
        "decisions": [{"text": "Ship\x00", "source_start_ms": 3_000_000_000}]
    }
    assert reprocess_job(job, "analysis")
    job = run_inline(job.id)
    assert job.status == Job.Status.COMPLETED
    assert job.analysis_steps_failed == ["decisions"]
    assert sorted(job.analysis_steps_done) == ["action_items", "speaker_names", "summary"]
    assert len(fake_openai.request_times("chat")) == chats + 4, "no step ran twice"
    meeting = Meeting.objects.get(job=job)
    assert meeting.degraded == ["decisions"] and meeting.action_items.count() == 1
