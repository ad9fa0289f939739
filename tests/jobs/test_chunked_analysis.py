"""A 3-hour transcript is analysed in chunks by a token budget: every chunk is
analysed, answers are merged without duplicates, progress is reported per chunk,
and nothing is truncated."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline import chunking
from jobs.pipeline.runner import run_inline
from meetings.models import Meeting
from meetings.transcript import Transcript, Utterance, estimate_tokens
from tests.conftest import SAMPLE_AUDIO

pytestmark = pytest.mark.django_db(transaction=True)

TOPICS = ["budget", "hiring", "roadmap", "security", "pricing", "support", "launch", "travel"]


def three_hour_script() -> list[tuple[str, str]]:
    """About 27,000 words in 1,800 turns: 3 hours at 150 words a minute."""
    turns = []
    for i in range(1800):
        topic = TOPICS[i * len(TOPICS) // 1800]
        words = f"turn {i} about the {topic} plan with several details to discuss".split()
        turns.append(("AB"[i % 2], " ".join((words * 2)[:15]) + "."))
    return turns


def first_turn(request: dict) -> int:
    user = request["messages"][-1]["content"]
    return int(re.search(r"turn (\d+)", user).group(1))


def test_split_keeps_every_utterance_and_respects_the_budget():
    long = Utterance("A", 0, 600_000, " ".join(["word"] * 5000))
    transcript = Transcript(
        [Utterance("B", 0, 10, "hello"), long, Utterance("B", 600_001, 600_010, "bye")]
    )
    chunks = chunking.split(transcript, budget=500)
    assert all(estimate_tokens(c.as_prompt()) <= 500 + 20 for c in chunks)
    words = " ".join(u.text for c in chunks for u in c.utterances).split()
    assert words == " ".join(u.text for u in transcript.utterances).split()


def test_a_three_hour_meeting_is_analysed_chunk_by_chunk(provider_settings, fake_aai, fake_openai):
    provider_settings.ANALYSIS_CHUNK_TOKENS = 6000
    fake_aai.utterances = three_hour_script()
    fake_aai.ms_per_word = 340
    fake_openai.responses["action_items"] = lambda req: {
        "action_items": [
            {
                "text": f"Follow up on turn {first_turn(req)}",
                "owner": None,
                "due_date": None,
                "source_start_ms": None,
            },
            {"text": "Send the minutes", "owner": "A", "due_date": None, "source_start_ms": None},
        ]
    }
    requests_before = len(fake_openai.requests)
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = submit_job(Job(title="long", audio=ContentFile(fh.read(), "long.wav")), enqueue=False)
    job = run_inline(job.id)
    assert job.status == Job.Status.COMPLETED, job.error_message
    meeting = Meeting.objects.get(job=job)
    assert meeting.segments.count() == 1800
    assert meeting.duration_seconds >= 3 * 3600 * 0.9

    chunks = chunking.split(
        Transcript(
            [
                Utterance(s.speaker.label, s.start_ms, s.end_ms, s.text)
                for s in meeting.segments.select_related("speaker")
            ]
        ),
        6000,
    )
    assert len(chunks) >= 5
    calls = [
        r for r in fake_openai.requests[requests_before:] if r.path.endswith("/chat/completions")
    ]
    by_step: dict[str, list[dict]] = {}
    for call in calls:
        by_step.setdefault(call.json["response_format"]["json_schema"]["name"], []).append(
            call.json
        )
    for step in ("speaker_names", "action_items", "decisions"):
        assert len(by_step[step]) == len(chunks), step
        seen = "\n".join(r["messages"][-1]["content"] for r in by_step[step])
        assert all(f"turn {i} " in seen for i in range(1800)), f"{step} missed a turn"
    # One summary per chunk, then the summaries are summarised.
    assert len(by_step["summary"]) == len(chunks) + 1
    assert "Part 1 summary" in by_step["summary"][-1]["messages"][-1]["content"]

    items = list(meeting.action_items.values_list("text", flat=True))
    assert items.count("Send the minutes") == 1
    assert len(items) == len(chunks) + 1
    assert meeting.degraded == [] and meeting.analysis_provider == "openai"
    messages = list(job.events.values_list("message", flat=True))
    assert f"Analyzing chunk 1/{len(chunks)}" in messages
    # Chunk progress moves the bar without a timeline event per chunk.
    assert sum(m.startswith("Analyzing chunk") for m in messages) < len(chunks)
    assert job.prompt_tokens > 27_000 // 4 * 4 and job.completion_tokens > 0
    assert job.analysis_partials == {}
