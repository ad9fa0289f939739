"""OpenAI-compatible servers without strict JSON schema support: answers are
validated, repaired or asked for again, never trusted blindly."""

from __future__ import annotations

import pytest

from jobs.errors import PermanentError, TransientError
from jobs.providers.base import StepOutput
from jobs.providers.openai.chat import Choice, OpenAIAnalyzer, _first_choice
from meetings.transcript import Transcript, Utterance

TRANSCRIPT = Transcript([Utterance("A", 0, 1000, "We decided to ship on Monday.")])


@pytest.fixture
def analyzer(provider_settings):
    return OpenAIAnalyzer()


@pytest.mark.parametrize("mode", ["fenced", "invalid"])
def test_a_broken_json_answer_is_repaired(analyzer, fake_openai, mode):
    fake_openai.corrupt_json("decisions", mode)
    calls = len(fake_openai.request_times("chat"))
    output = analyzer.run("decisions", TRANSCRIPT)
    assert output.data == {"decisions": [{"text": "Ship on Monday", "source_start_ms": 0}]}
    assert len(fake_openai.request_times("chat")) == calls + 1


@pytest.mark.parametrize("mode", ["truncated", "schema_violation"])
def test_an_unrepairable_answer_is_asked_for_again(analyzer, fake_openai, mode):
    fake_openai.corrupt_json("decisions", mode)
    calls = len(fake_openai.request_times("chat"))
    output = analyzer.run("decisions", TRANSCRIPT)
    assert output.data["decisions"][0]["text"] == "Ship on Monday"
    assert len(fake_openai.request_times("chat")) == calls + 2
    retry = fake_openai.requests[-1].json["messages"][-1]["content"]
    assert "previous answer" in retry and "schema" in retry


def test_an_answer_that_stays_malformed_degrades_the_step(analyzer, fake_openai):
    fake_openai.corrupt_json("decisions", "schema_violation", times=5)
    with pytest.raises(PermanentError) as failure:
        analyzer.run("decisions", TRANSCRIPT)
    assert failure.value.code == "analysis_invalid"


def test_a_server_without_strict_schemas_gets_the_schema_in_the_prompt(analyzer, fake_openai):
    fake_openai.reject_strict = True
    fake_openai.text_content = 'Here you go: {"summary": "They will ship on Monday.",}'
    try:
        output = analyzer.run("summary", TRANSCRIPT)
        analyzer.run("summary", TRANSCRIPT)
    finally:
        fake_openai.reject_strict = False
        fake_openai.text_content = "OK"
    assert output.data == {"summary": "They will ship on Monday."}
    rejected, *answered = [r.json for r in fake_openai.requests[-3:]]
    assert rejected["response_format"]["json_schema"]["strict"] is True
    for request in answered:  # the analyzer remembers: no second strict attempt
        assert "response_format" not in request
        assert "matching this schema" in request["messages"][0]["content"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"choices": []}', b'{"choices": [{"message": {"content": 3}}]}'],
)
def test_a_completion_of_another_shape_is_the_providers_fault(body) -> None:
    with pytest.raises(TransientError) as failed:
        _first_choice(body, StepOutput(data={}))
    assert failed.value.code == "provider_unavailable"


def test_a_completions_usage_is_counted() -> None:
    output = StepOutput(data={})
    body = b'{"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}],'
    body += b' "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'

    assert _first_choice(body, output) == Choice(content="{}", refusal=None, finish_reason="stop")
    assert (output.prompt_tokens, output.completion_tokens) == (7, 3)
