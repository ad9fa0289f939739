"""Reading a finished AssemblyAI transcript: the fields the pipeline uses, parsed
from the JSON without the SDK's per-word models (seconds of CPU per hour of audio)."""

from __future__ import annotations

import json
from pathlib import Path

import assemblyai as aai
import pytest

from jobs.errors import PermanentError
from jobs.providers.assemblyai import AssemblyAITranscriber, _parse_transcript
from jobs.providers.base import AudioSource
from tests.conftest import SAMPLE_AUDIO


def source() -> AudioSource:
    return AudioSource(path=Path(SAMPLE_AUDIO), language="", speakers_expected=None)


def test_a_finished_transcript_is_read_without_the_sdk_models(
    provider_settings, fake_aai, monkeypatch
) -> None:
    fake_aai.utterances = [("A", "Hello there everyone."), ("B", "Thanks for joining.")]
    transcriber = AssemblyAITranscriber()
    external_id = transcriber.submit(source())

    def refuse(*args, **kwargs):
        raise AssertionError("the SDK parsed the transcript")

    monkeypatch.setattr(aai.types.TranscriptResponse, "parse_obj", refuse)
    transcript = transcriber.fetch(external_id)

    assert [(u.speaker, u.text) for u in transcript.utterances] == [
        ("A", "Hello there everyone."),
        ("B", "Thanks for joining."),
    ]
    assert transcript.utterances[0].start_ms < transcript.utterances[1].start_ms
    assert transcript.duration_seconds and transcript.detected_language == "en"


def test_an_unknown_transcript_is_a_provider_error(provider_settings, fake_aai) -> None:
    with pytest.raises(PermanentError) as failed:
        AssemblyAITranscriber().fetch("no-such-transcript")
    assert "404" in failed.value.message


def test_words_holding_brackets_are_read_as_well(provider_settings, fake_aai) -> None:
    # A bracket inside a word keeps its words array whole, or cuts it short
    # into JSON that does not parse (then the whole body is read).
    fake_aai.utterances = [("A", "So [laughs] yes."), ("B", "Item two] is done."), ("A", "Fine.")]
    transcriber = AssemblyAITranscriber()

    transcript = transcriber.fetch(transcriber.submit(source()))

    assert [(u.speaker, u.text) for u in transcript.utterances] == [
        ("A", "So [laughs] yes."),
        ("B", "Item two] is done."),
        ("A", "Fine."),
    ]


def test_only_the_word_arrays_are_left_out_of_a_finished_transcript() -> None:
    def word(text: str, start: int) -> dict[str, object]:
        return {"text": text, "start": start, "end": start + 90, "confidence": 0.9, "speaker": "A"}

    words = [word("Hello", 0), word("there.", 100)]
    body = {
        "status": "completed",
        "text": "Hello there.",
        "words": words,
        "utterances": [
            {"speaker": "A", "start": 0, "end": 190, "text": "Hello there.", "words": words}
        ],
        "audio_duration": 1.5,
    }
    nested = {**body, "words": [{**words[0], "alternatives": [{"text": "Hullo"}]}]}

    assert _parse_transcript(json.dumps(body).encode()) == {
        **body,
        "words": [],
        "utterances": [{**body["utterances"][0], "words": []}],
    }
    # An array it cannot vouch for is kept; without utterances every word is needed.
    assert _parse_transcript(json.dumps(nested).encode())["words"] == nested["words"]
    alone = {**body, "utterances": None}
    assert _parse_transcript(json.dumps(alone).encode()) == alone
