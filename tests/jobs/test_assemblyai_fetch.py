"""Reading a finished AssemblyAI transcript: the fields the pipeline uses, parsed
from the JSON without the SDK's per-word models (seconds of CPU per hour of audio)."""

from __future__ import annotations

from pathlib import Path

import assemblyai as aai
import pytest

from jobs.errors import PermanentError
from jobs.providers.assemblyai import AssemblyAITranscriber
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
