"""Every request the OpenAI SDK sends is admitted by the fleet-wide windows as it
is sent, and settled with the usage its answer reports."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from jobs.errors import Deferred, JobLost
from jobs.providers import limits
from jobs.providers.base import guarded
from jobs.providers.limits import Window
from jobs.providers.openai.chat import OpenAIAnalyzer
from jobs.providers.openai.client import EXPECTED_COMPLETION_TOKENS
from jobs.providers.openai.embeddings import OpenAIEmbedder
from meetings.transcript import Transcript, Utterance

TRANSCRIPT = Transcript([Utterance("A", 0, 1000, "We decided to ship on Monday.")])


@pytest.fixture
def windows(provider_settings):
    """Empty OpenAI windows (other tests leave their entries for a minute)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("meeting_intel:limit:openai:*"):
        client.delete(key)
    provider_settings.RATE_LIMIT_MAX_BLOCK_SECONDS = 0
    return provider_settings


def fits(resource: str, cost: int, limit: int) -> bool:
    wait, permit = limits.try_admit([Window(resource, cost, limit)], 1)
    limits.release(permit)
    return permit is not None


def test_a_second_ask_is_a_request_of_its_own(windows, fake_openai):
    windows.OPENAI_REQUESTS_PER_MINUTE = 2
    fake_openai.corrupt_json("decisions", "truncated")
    OpenAIAnalyzer().run("decisions", TRANSCRIPT)
    sent = len(fake_openai.request_times("chat"))
    with pytest.raises(Deferred):
        OpenAIAnalyzer().run("summary", TRANSCRIPT)
    assert len(fake_openai.request_times("chat")) == sent, "the third request was not sent"


def test_the_sdks_own_retries_are_admitted_too(windows, fake_openai):
    windows.OPENAI_REQUESTS_PER_MINUTE = 2
    retrying = OpenAIAnalyzer()._client.with_options(max_retries=3)
    fake_openai.fail(500, times=5, route="chat")
    sent = len(fake_openai.request_times("chat"))
    try:
        with pytest.raises(Deferred):
            retrying.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        fake_openai.clear_faults()
    assert len(fake_openai.request_times("chat")) == sent + 2


def test_the_answers_usage_replaces_the_token_estimate(windows, fake_openai):
    windows.OPENAI_TOKENS_PER_MINUTE = limit = 100_000
    before = fake_openai.max_tokens_in_window(window=1e9, route="chat")  # all of them
    OpenAIAnalyzer().run("decisions", TRANSCRIPT)
    used = fake_openai.max_tokens_in_window(window=1e9, route="chat") - before
    assert 0 < used < EXPECTED_COMPLETION_TOKENS, "less than the estimate, which was settled"
    assert fits("openai:tokens", limit - used, limit)
    assert not fits("openai:tokens", limit - used + 1, limit)


def test_a_fenced_request_is_never_sent_and_takes_nothing(windows, fake_openai):
    windows.OPENAI_REQUESTS_PER_MINUTE = 1

    def lost() -> None:
        raise JobLost("cancelled")

    sent = len(fake_openai.request_times("chat"))
    with guarded(lost), pytest.raises(JobLost):
        OpenAIAnalyzer().run("decisions", TRANSCRIPT)
    assert len(fake_openai.request_times("chat")) == sent
    assert fits("openai:requests", 1, 1)


def test_embeddings_take_the_embedding_models_windows(windows, fake_openai):
    windows.OPENAI_REQUESTS_PER_MINUTE = 1
    windows.OPENAI_EMBEDDING_REQUESTS_PER_MINUTE = 1
    embedder = OpenAIEmbedder()
    embedder.embed(["We ship on Monday."])
    assert fits("openai:requests", 1, 1), "chat's window is untouched"
    with pytest.raises(Deferred):
        embedder.embed(["Another batch."])
    assert len(fake_openai.request_times("embeddings")) >= 1
