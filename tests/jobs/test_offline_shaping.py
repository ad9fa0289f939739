"""The offline providers honour what a client shapes: the local analyser names speakers
from the known participants, fills template sections and keeps the vocabulary's
spelling; the English-only offline transcriber refuses other languages clearly."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from jobs import shaping
from jobs.actions import submit_job
from jobs.errors import PermanentError
from jobs.models import Job
from jobs.pipeline.runner import run_inline
from jobs.providers.base import AnalysisContext, Participant, Section
from jobs.providers.local.analysis import LocalAnalyzer
from meetings.models import Meeting
from meetings.transcript import Transcript, Utterance
from tests.conftest import SAMPLE_AUDIO
from tests.fakes.script import DEFAULT_MEETING

SCRIPT = [*DEFAULT_MEETING[:4], ("A", "Thanks Bob, that helps."), *DEFAULT_MEETING[4:]]
MEETING = Transcript(
    [Utterance(label, i * 5000, i * 5000 + 4000, text) for i, (label, text) in enumerate(SCRIPT)],
    language="en",
)
PEOPLE = (Participant("Alice Smith", "chair"), Participant("Bob Jones"))


def names(context: AnalysisContext) -> dict[str, str | None]:
    data = LocalAnalyzer().run("speaker_names", MEETING, context).data
    return {s["label"]: s["name"] for s in data["speakers"]}


def test_without_participants_names_come_from_the_transcript():
    assert names(AnalysisContext()) == {"A": "Alice", "B": "Bob"}


def test_a_first_name_picks_its_participant():
    assert names(AnalysisContext(participants=PEOPLE)) == {"A": "Alice Smith", "B": "Bob Jones"}


def test_a_name_outside_the_participants_stays_unknown():
    assert names(AnalysisContext(participants=(Participant("Carol White"),))) == {
        "A": None,
        "B": None,
    }


def test_owners_are_given_as_the_participants_are_listed():
    data = LocalAnalyzer().run("action_items", MEETING, AnalysisContext(participants=PEOPLE)).data
    owners = {item["owner"] for item in data["action_items"]}
    assert "Bob Jones" in owners and "Bob" not in owners


def test_a_section_collects_the_sentences_about_its_subject():
    context = AnalysisContext(
        sections=(Section("payments", "Payments", "The payment provider integration"),)
    )
    items = LocalAnalyzer().run("section:payments", MEETING, context).data["items"]
    assert items and all("payment" in i["text"].lower() for i in items)
    assert items[0]["source_start_ms"] == 10000


def test_the_vocabulary_keeps_its_spelling_in_the_offline_texts():
    context = AnalysisContext(vocabulary=("STAGING", "Billing Page"))
    summary = LocalAnalyzer().run("summary", MEETING, context).data["summary"]
    assert "STAGING" in summary or "Billing Page" in summary
    assert "staging" not in summary and "billing page" not in summary


def test_the_offline_analyser_refuses_to_write_another_language():
    with pytest.raises(PermanentError) as caught:
        LocalAnalyzer().run("summary", MEETING, AnalysisContext(output_language="de"))
    assert caught.value.code == "language_unsupported"
    # Names are names in any language.
    LocalAnalyzer().run("speaker_names", MEETING, AnalysisContext(output_language="de"))


def run_job(**fields) -> Job:
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = Job(title="Offline", audio=ContentFile(fh.read(), "standup.wav"), **fields)
    submit_job(job, enqueue=False)
    return run_inline(job.id)


@pytest.mark.django_db(transaction=True)
def test_a_non_english_job_on_the_offline_transcriber_fails_with_language_unsupported(settings):
    settings.TRANSCRIPTION_PROVIDER = "local"
    settings.ANALYSIS_PROVIDER = "local"
    job = run_job(language="de")
    assert job.status == Job.Status.FAILED
    assert job.error_code == "language_unsupported"
    assert "English only" in job.error_message and "'de'" in job.error_message
    assert job.step_retries == 0  # permanent: no retry is paid for


@pytest.mark.django_db(transaction=True)
def test_the_offline_analyser_shapes_a_whole_job(provider_settings, fake_aai):
    provider_settings.ANALYSIS_PROVIDER = "local"
    fake_aai.utterances = SCRIPT
    client_template = {
        "name": "Ops",
        "instructions": "",
        "sections": [{"key": "payments", "title": "Payments", "instructions": "payment provider"}],
    }
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = Job(
            title="Offline",
            audio=ContentFile(fh.read(), "standup.wav"),
            participants=[{"name": "Alice Smith", "role": ""}, {"name": "Bob Jones", "role": ""}],
        )
    job.analysis_template = client_template
    submit_job(job, enqueue=False)
    job = run_inline(job.id)
    assert job.status == Job.Status.COMPLETED, job.error_message
    meeting = Meeting.objects.get(job=job)
    assert {s.label: s.name for s in meeting.speakers.all()} == {
        "A": "Alice Smith",
        "B": "Bob Jones",
    }
    assert meeting.sections["payments"]["items"]
    assert meeting.degraded == []
    assert shaping.hints(job) == ("Alice Smith", "Bob Jones")
