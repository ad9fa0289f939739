"""The fake providers speak the protocols that the real AssemblyAI and OpenAI SDKs use.

Plain pytest, no Django: every test drives a fake through the official SDK.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import assemblyai as aai
import openai
import pytest
from assemblyai import api as aai_api
from pydantic import BaseModel

from tests.fakes import FakeAssemblyAI, FakeOpenAI

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt fake audio"


# -- AssemblyAI ------------------------------------------------------------------------


@pytest.fixture
def aai_fake() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI() as fake:
        yield fake


@pytest.fixture
def aai_client(aai_fake: FakeAssemblyAI) -> aai.Client:
    # The SDK's paths start with /v2 already: the base URL is the bare origin.
    return aai.Client(settings=aai.Settings(api_key=aai_fake.api_key, base_url=aai_fake.url))


def _transcriber(client: aai.Client, **config: Any) -> aai.Transcriber:
    return aai.Transcriber(client=client, config=aai.TranscriptionConfig(**config))


def test_aai_upload_submit_and_read_completed(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    submitted = _transcriber(aai_client, speaker_labels=True, speakers_expected=2).submit(AUDIO)
    assert submitted.status == aai.TranscriptStatus.queued

    transcript = aai_api.get_transcript(aai_client.http_client, submitted.id)

    assert transcript.status == aai.TranscriptStatus.completed
    assert transcript.utterances and {u.speaker for u in transcript.utterances} == {"A", "B"}
    assert "Bob will send the report by Friday." in transcript.text
    assert all(w.speaker in ("A", "B") for w in transcript.words)
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts) and transcript.words[-1].end < transcript.audio_duration * 1000
    assert transcript.language_code == "en_us"
    assert list(aai_fake.uploads.values()) == [AUDIO]
    assert aai_fake.submissions[0]["speaker_labels"] is True
    assert aai_fake.submissions[0]["audio_url"].startswith(f"{aai_fake.url}/files/")


def test_aai_without_speaker_labels_has_no_utterances(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    aai_fake.utterances = [("A", "Just one line.")]
    submitted = _transcriber(aai_client, language_detection=True).submit(AUDIO)

    transcript = aai_api.get_transcript(aai_client.http_client, submitted.id)

    assert transcript.text == "Just one line."
    assert transcript.utterances is None and transcript.words[0].speaker is None
    assert transcript.language_code == "en"


def test_aai_chunked_upload_body_is_read(aai_fake: FakeAssemblyAI, aai_client: aai.Client) -> None:
    upload_url = aai_api.upload_file(aai_client.http_client, iter([b"RIFF", b"-chunked"]))  # type: ignore[arg-type]

    assert aai_fake.requests[0].headers.get("transfer-encoding") == "chunked"
    assert aai_fake.uploads[upload_url.rsplit("/", 1)[-1]] == b"RIFF-chunked"


def test_aai_processing_time_and_concurrency(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    aai_fake.processing_seconds = 0.2
    transcriber = _transcriber(aai_client, speaker_labels=True)
    first, second = transcriber.submit(AUDIO), transcriber.submit(AUDIO)

    assert (
        aai_api.get_transcript(aai_client.http_client, first.id).status
        == aai.TranscriptStatus.processing
    )
    time.sleep(0.25)
    assert (
        aai_api.get_transcript(aai_client.http_client, second.id).status
        == aai.TranscriptStatus.completed
    )
    assert aai_fake.max_concurrent_transcriptions == 2


def test_aai_rate_limit_raises_transcript_error_429(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    aai_fake.rate_limit(times=1, retry_after=7, route="submit")
    transcriber = _transcriber(aai_client)

    with pytest.raises(aai.types.TranscriptError) as caught:
        transcriber.submit("https://example.com/meeting.wav")

    assert caught.value.status_code == 429
    assert (
        aai_client.last_response is not None
        and aai_client.last_response.headers["retry-after"] == "7"
    )
    assert (
        transcriber.submit("https://example.com/meeting.wav").status == aai.TranscriptStatus.queued
    )
    assert len(aai_fake.submissions) == 1


def test_aai_server_errors_on_polling(aai_fake: FakeAssemblyAI, aai_client: aai.Client) -> None:
    submitted = _transcriber(aai_client).submit(AUDIO)
    aai_fake.fail(503, times=2, route="get_transcript")

    for _ in range(2):
        with pytest.raises(aai.types.TranscriptError) as caught:
            aai_api.get_transcript(aai_client.http_client, submitted.id)
        assert caught.value.status_code == 503
    assert (
        aai_api.get_transcript(aai_client.http_client, submitted.id).status
        == aai.TranscriptStatus.completed
    )


def test_aai_wrong_key_is_401(aai_fake: FakeAssemblyAI) -> None:
    client = aai.Client(settings=aai.Settings(api_key="wrong", base_url=aai_fake.url))

    with pytest.raises(aai.types.TranscriptError, match="Authentication error") as caught:
        _transcriber(client).submit("https://example.com/meeting.wav")

    assert caught.value.status_code == 401
    assert aai_fake.submissions == []


def test_aai_scripted_error_and_silence(aai_fake: FakeAssemblyAI, aai_client: aai.Client) -> None:
    aai_fake.fail_next_transcripts(message="File does not appear to contain audio")
    aai_fake.silence_next_transcripts()
    transcriber = _transcriber(aai_client, speaker_labels=True)
    failed, silent, normal = (transcriber.submit(AUDIO) for _ in range(3))

    failed_result = aai_api.get_transcript(aai_client.http_client, failed.id)
    silent_result = aai_api.get_transcript(aai_client.http_client, silent.id)

    assert failed_result.status == aai.TranscriptStatus.error
    assert failed_result.error == "File does not appear to contain audio"
    assert silent_result.status == aai.TranscriptStatus.completed
    assert silent_result.text == "" and silent_result.utterances == [] and silent_result.words == []
    assert aai_api.get_transcript(aai_client.http_client, normal.id).utterances


def test_aai_unknown_upload_url_ends_in_error(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    submitted = _transcriber(aai_client).submit(f"{aai_fake.url}/files/never-uploaded")

    assert (
        aai_api.get_transcript(aai_client.http_client, submitted.id).status
        == aai.TranscriptStatus.error
    )


class _WebhookReceiver(ThreadingHTTPServer):
    """Collects the (headers, JSON body) of every POST it gets and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, json.loads(body))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


def test_aai_webhook_is_posted_with_auth_header(
    aai_fake: FakeAssemblyAI, aai_client: aai.Client
) -> None:
    receiver = _WebhookReceiver()
    try:
        config = aai.TranscriptionConfig().set_webhook(
            f"http://127.0.0.1:{receiver.server_port}/hook", "X-Hook-Token", "s3cret"
        )
        submitted = aai.Transcriber(client=aai_client, config=config).submit(AUDIO)

        [callback] = aai_fake.wait_for_callbacks(1, timeout=5)
    finally:
        receiver.shutdown()
        receiver.server_close()

    assert callback.status_code == 200 and callback.transcript_id == submitted.id
    [(headers, body)] = receiver.received
    assert body == {"transcript_id": submitted.id, "status": "completed"}
    assert headers["x-hook-token"] == "s3cret"
    transcript = aai_api.get_transcript(aai_client.http_client, submitted.id)
    assert transcript.webhook_status_code == 200 and transcript.webhook_auth is True
    assert "webhook_auth_header_value" not in aai_fake.transcript(submitted.id)


# -- OpenAI ------------------------------------------------------------------------------


class ActionItem(BaseModel):
    owner: str | None
    task: str


class Decisions(BaseModel):
    decisions: list[str]
    action_items: list[ActionItem]
    sentiment: Literal["positive", "neutral", "negative"]


SUMMARY_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "summary",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["title", "bullets", "duration_minutes", "next_meeting"],
            "properties": {
                "title": {"type": "string"},
                "bullets": {"type": "array", "items": {"type": "string"}},
                "duration_minutes": {"type": "integer", "minimum": 5},
                "next_meeting": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            },
        },
    },
}
MESSAGES: list[Any] = [
    {"role": "system", "content": "Summarise."},
    {"role": "user", "content": "A transcript. " * 20},
]


@pytest.fixture
def oai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def oai_client(oai_fake: FakeOpenAI) -> openai.OpenAI:
    # The SDK's paths are relative to a base URL ending in /v1.
    return openai.OpenAI(
        api_key=oai_fake.api_key, base_url=f"{oai_fake.url}/v1", max_retries=0, timeout=5
    )


def _summary(client: openai.OpenAI, response_format: Any = SUMMARY_FORMAT) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format=response_format
    )


def test_openai_generates_schema_valid_json(oai_client: openai.OpenAI) -> None:
    completion = _summary(oai_client)

    content = json.loads(completion.choices[0].message.content)
    assert content == {
        "title": "Example title",
        "bullets": ["Example bullets"],
        "duration_minutes": 5,
        "next_meeting": "2025-01-06",
    }
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == len("Summarise." + "A transcript. " * 20) // 4
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_openai_parse_with_pydantic_model(oai_client: openai.OpenAI) -> None:
    completion = oai_client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Decisions
    )

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Decisions) and parsed.sentiment == "positive"
    assert parsed.action_items == [ActionItem(owner="Example owner", task="Example task")]


def test_openai_canned_responses(oai_fake: FakeOpenAI, oai_client: openai.OpenAI) -> None:
    oai_fake.responses["summary"] = lambda request: {
        "title": request["model"],
        "bullets": [],
        "duration_minutes": 30,
        "next_meeting": None,
    }
    oai_fake.responses["Decisions"] = {
        "decisions": ["Ship on Monday"],
        "action_items": [],
        "sentiment": "neutral",
    }

    oai_fake.text_content = "Plain answer"

    assert json.loads(_summary(oai_client).choices[0].message.content)["title"] == "gpt-4o-mini"
    plain = oai_client.chat.completions.create(model="m", messages=MESSAGES)
    assert plain.choices[0].message.content == "Plain answer"
    parsed = oai_client.chat.completions.parse(
        model="m", messages=MESSAGES, response_format=Decisions
    )
    assert parsed.choices[0].message.parsed == Decisions(
        decisions=["Ship on Monday"], action_items=[], sentiment="neutral"
    )


def test_openai_fault_targets_one_schema(oai_fake: FakeOpenAI, oai_client: openai.OpenAI) -> None:
    oai_fake.fail(500, times=None, tag="Decisions")

    with pytest.raises(openai.InternalServerError) as caught:
        oai_client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Decisions)
    assert caught.value.body["type"] == "server_error"
    assert _summary(oai_client).choices[0].message.content


def test_openai_rate_limit(oai_fake: FakeOpenAI, oai_client: openai.OpenAI) -> None:
    oai_fake.rate_limit(times=1, retry_after=3, route="chat")

    with pytest.raises(openai.RateLimitError) as caught:
        _summary(oai_client)

    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"
    assert _summary(oai_client).choices[0].message.content


def test_openai_sdk_retries_honour_retry_after(oai_fake: FakeOpenAI) -> None:
    oai_fake.rate_limit(times=1, retry_after=0.05)
    client = openai.OpenAI(
        api_key=oai_fake.api_key, base_url=f"{oai_fake.url}/v1", max_retries=1, timeout=5
    )

    assert _summary(client).choices[0].message.content
    assert len(oai_fake.request_times("chat")) == 2


def test_openai_wrong_key_is_401(oai_fake: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key="wrong", base_url=f"{oai_fake.url}/v1", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        _summary(client)

    assert caught.value.code == "invalid_api_key" and caught.value.type == "invalid_request_error"


def test_openai_rejects_strict_schema_when_asked(
    oai_fake: FakeOpenAI, oai_client: openai.OpenAI
) -> None:
    oai_fake.reject_strict = True

    with pytest.raises(openai.BadRequestError) as caught:
        _summary(oai_client)
    assert caught.value.param == "response_format"

    lenient = {**SUMMARY_FORMAT, "json_schema": {**SUMMARY_FORMAT["json_schema"], "strict": False}}
    assert json.loads(_summary(oai_client, lenient).choices[0].message.content)["title"]


@pytest.mark.parametrize("mode", ["truncated", "invalid", "fenced", "schema_violation"])
def test_openai_corrupt_json(oai_fake: FakeOpenAI, oai_client: openai.OpenAI, mode: Any) -> None:
    oai_fake.corrupt_json("summary", mode)

    choice = _summary(oai_client).choices[0]

    if mode == "schema_violation":
        assert json.loads(choice.message.content) == {"unexpected": True}
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(choice.message.content)
    assert choice.finish_reason == ("length" if mode == "truncated" else "stop")
    assert json.loads(_summary(oai_client).choices[0].message.content)["title"]  # one answer only


def test_openai_truncation_makes_parse_raise(
    oai_fake: FakeOpenAI, oai_client: openai.OpenAI
) -> None:
    oai_fake.corrupt_json("Decisions", "truncated")

    with pytest.raises(openai.LengthFinishReasonError):
        oai_client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Decisions)


def test_openai_rate_and_concurrency_measurement(
    oai_fake: FakeOpenAI, oai_client: openai.OpenAI
) -> None:
    oai_fake.delay_responses(0.2, times=3, route="chat")

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda _: _summary(oai_client), range(3)))

    assert oai_fake.max_concurrency("chat") == 3
    assert oai_fake.max_requests_in_window(60, route="chat") == 3
    assert oai_fake.max_concurrency("transcription") == 0


def test_openai_audio_transcription(oai_fake: FakeOpenAI, oai_client: openai.OpenAI) -> None:
    oai_fake.utterances = [("A", "Thanks Alice."), ("B", "Bob will send the report by Friday.")]

    verbose = oai_client.audio.transcriptions.create(
        model="whisper-1",
        file=("meeting.wav", AUDIO),
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
    )
    plain = oai_client.audio.transcriptions.create(model="whisper-1", file=("meeting.wav", AUDIO))
    diarized = oai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("meeting.wav", AUDIO),
        response_format="diarized_json",
    )

    assert verbose.text == plain.text == "Thanks Alice. Bob will send the report by Friday."
    assert [s.text.strip() for s in verbose.segments] == [
        "Thanks Alice.",
        "Bob will send the report by Friday.",
    ]
    assert verbose.language == "english" and verbose.duration > verbose.segments[-1].end
    assert verbose.words and verbose.words[0].word == "Thanks"
    assert [s.speaker for s in diarized.segments] == ["A", "B"]
