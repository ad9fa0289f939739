"""POST /api/v1/ask/: an answer from retrieved passages, with checked citations."""

from __future__ import annotations

import re

import pytest

from jobs.models import Job
from jobs.providers import get_embedder, limits
from meetings.search import passages
from tests.support.api_factories import api_for, make_job, make_meeting, new_client
from tests.support.search import index

pytestmark = pytest.mark.django_db

TURNS = [
    ("A", 0, 4000, "Good morning, this is the weekly product sync."),
    ("B", 4000, 9000, "We decided to move the product launch to the ninth of June."),
    ("A", 9000, 15000, "Carl owns the pricing page and will finish it next week."),
]


@pytest.fixture
def cms():
    client, key = new_client()
    meeting = make_meeting(
        make_job(client, title="Product sync", status=Job.Status.COMPLETED),
        TURNS,
        names={"B": "Bea"},
    )
    index(meeting)
    return api_for(key), meeting


def ask(api, **body):
    response = api.post("/api/v1/ask/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_offline_answers_quote_the_best_passages_and_cite_them(cms, settings):
    settings.ANALYSIS_PROVIDER = "local"
    api, meeting = cms
    body = ask(api, question="When is the product launch?")
    assert body["provider"] == "local" and body["extractive"] is True and body["answerable"] is True
    assert "ninth of June" in body["answer"]
    citation = body["citations"][0]
    assert citation["meeting_id"] == str(meeting.id) and "ninth of June" in citation["text"]
    assert {"start_ms", "end_ms", "speaker_name", "url"} <= set(citation)


def test_offline_a_question_the_meetings_cannot_answer_says_so(cms, settings):
    settings.ANALYSIS_PROVIDER = "local"
    api, _ = cms
    body = ask(api, question="What is the boiling point of mercury?")
    assert body["answerable"] is False and body["citations"] == []
    assert "do not say" in body["answer"]


@pytest.fixture
def openai_answers(cms, provider_settings, fake_openai):
    """The analysis provider is OpenAI, and the meeting was indexed with its embeddings."""
    embedder = get_embedder()
    passages.build_index(cms[1], lambda t: embedder.embed(t).vectors, embedder.name)

    def answer(request: dict) -> dict:
        prompt = request["messages"][-1]["content"]
        ids = re.findall(r"^\[(P\d+)\] .*June", prompt, flags=re.MULTILINE)
        # One real citation and one the model made up.
        return {
            "answerable": True,
            "answer": "The launch moved to 9 June.",
            "passage_ids": [*ids, "P99"],
        }

    fake_openai.responses["meeting_answer"] = answer
    return fake_openai


def test_the_model_answers_with_only_citations_of_retrieved_passages(cms, openai_answers):
    api, meeting = cms
    body = ask(api, question="When is the product launch?")
    assert body["provider"] == "openai" and body["extractive"] is False
    assert body["answer"] == "The launch moved to 9 June." and body["answerable"] is True
    assert len(body["citations"]) == 1 and "ninth of June" in body["citations"][0]["text"]
    chat = [r for r in openai_answers.requests if r.path.endswith("/chat/completions")]
    sent = chat[-1].json
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert "ninth of June" in sent["messages"][-1]["content"]


def test_an_unanswerable_model_reply_cites_nothing(cms, openai_answers):
    api, _ = cms
    openai_answers.responses["meeting_answer"] = {
        "answerable": False,
        "answer": "The meetings do not say.",
        "passage_ids": ["P1"],
    }
    body = ask(api, question="What is the boiling point of mercury?")
    assert body["answerable"] is False and body["citations"] == []
    assert openai_answers.requests[-1].path.endswith("/chat/completions")  # the model was asked


def test_a_provider_outage_answers_503_with_retry_after(cms, openai_answers):
    api, _ = cms
    openai_answers.fail(route="chat", status=503, times=1)
    response = api.post("/api/v1/ask/", {"question": "When is the launch?"}, format="json")
    assert response.status_code == 503 and "Retry-After" in response
    assert response.json()["error"]["code"] == "provider_unavailable"


def test_without_redis_nothing_is_sent_and_the_answer_is_503(cms, openai_answers, settings):
    api, _ = cms
    sent = len(openai_answers.requests)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the limits' Redis: nothing listens there
    limits._client.cache_clear()
    try:
        response = api.post("/api/v1/ask/", {"question": "When is the launch?"}, format="json")
    finally:
        limits._client.cache_clear()
    assert response.status_code == 503 and "Retry-After" in response
    assert "limits cannot be checked" in response.json()["error"]["message"]
    assert len(openai_answers.requests) == sent


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": "x" * 1_000_000}, "question"),
        ({"question": "launch?", "meeting_ids": ["nope"]}, "meeting_ids"),
        ({"question": "launch?", "meeting_ids": "not a list"}, "meeting_ids"),
    ],
)
def test_bad_questions_get_the_error_object(cms, body, field):
    api, _ = cms
    response = api.post("/api/v1/ask/", body, format="json")
    assert response.status_code in (400, 413)
    error = response.json()["error"]
    if response.status_code == 400:
        assert error["code"] == "invalid_request" and field in error["details"]
