"""The offline providers: in-process audio conversion, the local transcriber on the shipped
sample, the rule-based analyzer, and a sanity check of OpenAI transcription.

None of these need Redis or a database. The transcriber runs once per module
(about 4 s on 2 cores); run with -s to see its measured word overlap.
"""

from __future__ import annotations

import itertools
import re
import wave
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from jobs.errors import PermanentError, TransientError
from jobs.providers import analysis_steps as analysis
from jobs.providers.audio import probe_duration, to_mp3_16k, to_wav16k
from jobs.providers.base import AudioSource
from jobs.providers.local.analysis import SUMMARY_PREFIX, LocalAnalyzer
from jobs.providers.local.due_dates import find_due_date
from jobs.providers.local.speaker_turns import label_turns, speech_turns
from jobs.providers.local.transcription import LocalTranscriber, _read_pcm
from meetings.transcript import Transcript, Utterance
from tests.fakes import FakeOpenAI
from tests.support.media_files import CONTAINERS, make_recording, make_silent_film
from tests.support.platform import ROOT

SAMPLES = ROOT / "samples"
SAMPLE_WAV = SAMPLES / "standup.wav"
SCRIPT = [
    tuple(line.split(": ", 1))
    for line in (SAMPLES / "standup.txt").read_text().splitlines()
    if line.strip()
]
# Speaker labels in order of first appearance, as transcribers assign them.
LABELS = {"Alice": "A", "Bob": "B", "Carol": "C"}
# Measured on this machine: 1.00 (every content word of the script). Whisper's
# int8 kernels differ a little between CPUs, and near misses ("to day stand
# up" for "today's stand-up") cost a word or two each, hence the margin.
MIN_WORD_OVERLAP = 0.8


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}


@pytest.fixture(scope="module")
def sample_transcript() -> Transcript:
    return LocalTranscriber().transcribe(AudioSource(path=SAMPLE_WAV))


# --- local transcription -------------------------------------------------------------


def test_it_recognises_most_words_of_the_sample(sample_transcript: Transcript) -> None:
    expected = _words(" ".join(text for _, text in SCRIPT))
    heard = _words(" ".join(u.text for u in sample_transcript.utterances))
    overlap = len(expected & heard) / len(expected)
    print(f"local transcriber word overlap: {overlap:.2f} (missed: {sorted(expected - heard)})")
    assert overlap >= MIN_WORD_OVERLAP
    assert sample_transcript.language == "en"
    assert sample_transcript.duration_seconds == pytest.approx(45.9, abs=0.1)


def test_it_splits_the_sample_into_timed_turns(sample_transcript: Transcript) -> None:
    utterances = sample_transcript.utterances
    assert len(utterances) >= 2
    for earlier, later in itertools.pairwise(utterances):
        assert earlier.start_ms < earlier.end_ms <= later.start_ms
    assert utterances[-1].end_ms <= sample_transcript.duration_seconds * 1000


def test_it_tells_the_sample_voices_apart(sample_transcript: Transcript) -> None:
    assert [u.speaker for u in sample_transcript.utterances] == [LABELS[s] for s, _ in SCRIPT]


@pytest.mark.parametrize("cap", [1, 2])
def test_it_caps_speakers_at_the_expected_count(cap: int) -> None:
    samples = _read_pcm(SAMPLE_WAV)
    turns = speech_turns(samples)
    assert len(turns) == len(SCRIPT)
    assert len(set(label_turns(samples, turns, max_speakers=cap))) == cap


def test_silence_is_no_speech(tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\0\0" * 16000 * 3)
    with pytest.raises(PermanentError) as caught:
        LocalTranscriber().transcribe(AudioSource(path=silent))
    assert caught.value.code == "no_speech"


def test_a_language_other_than_english_is_refused() -> None:
    with pytest.raises(PermanentError) as caught:
        LocalTranscriber().submit(AudioSource(path=SAMPLE_WAV, language="de"))
    assert caught.value.code == "language_unsupported"


def test_fetch_without_a_plan_is_refused() -> None:
    with pytest.raises(PermanentError) as caught:
        LocalTranscriber().fetch("0123abcd")
    assert caught.value.code == "transcript_missing"


# --- conversion ----------------------------------------------------------------------


@pytest.mark.parametrize("container", CONTAINERS)
def test_it_converts_each_container_to_16k_mono_wav(tmp_path: Path, container: str) -> None:
    source = make_recording(container, tmp_path)
    converted = to_wav16k(source, tmp_path / "out")
    with wave.open(str(converted)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        seconds = wav.getnframes() / 16000
    assert seconds == pytest.approx(10.0, abs=0.15)
    assert probe_duration(converted) == pytest.approx(seconds, abs=0.01)
    assert probe_duration(source) == pytest.approx(10.0, abs=0.15)


@pytest.mark.parametrize("container", ["wav", "m4a", "mp4"])
def test_it_converts_to_16k_mono_mp3_for_size_limited_uploads(tmp_path: Path, container: str):
    converted = to_mp3_16k(make_recording(container, tmp_path), tmp_path / "out")
    assert converted.read_bytes()[:3] == b"ID3"
    assert probe_duration(converted) == pytest.approx(10.0, abs=0.15)
    assert converted.stat().st_size < 60_000  # 32 kbit/s: ~40 kB for 10 s


def test_conversion_needs_no_ffmpeg_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source = make_recording("m4a", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run on PATH
    assert probe_duration(to_wav16k(source, tmp_path / "out")) == pytest.approx(10.0, abs=0.15)


@pytest.mark.parametrize("name", ["notes.txt", "disguised.mp3"])
def test_a_file_without_audio_is_unsupported_media(tmp_path: Path, name: str) -> None:
    fake = tmp_path / name
    fake.write_text("These are meeting notes, not a recording.\n" * 20)
    for convert in (to_wav16k, to_mp3_16k):
        with pytest.raises(PermanentError) as caught:
            convert(fake, tmp_path / "out")
        assert caught.value.code == "unsupported_media"
        assert str(tmp_path) not in caught.value.message
    assert list((tmp_path / "out").iterdir()) == []
    assert probe_duration(fake) is None


def test_a_video_without_sound_is_unsupported_media(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        to_wav16k(make_silent_film(tmp_path / "film.mp4"), tmp_path / "out")
    assert caught.value.code == "unsupported_media" and "no audio track" in caught.value.message


# --- local analysis ------------------------------------------------------------------

MONDAY = date(2026, 11, 23)


def _scripted(lines: list[tuple[str, str]]) -> Transcript:
    return Transcript(
        [Utterance(s, i * 5000, i * 5000 + 4000, t) for i, (s, t) in enumerate(lines)]
    )


STANDUP = _scripted([(LABELS[speaker], text) for speaker, text in SCRIPT])


def _run(step: str, transcript: Transcript = STANDUP) -> dict[str, Any]:
    output = LocalAnalyzer(today=MONDAY).run(step, transcript)
    assert output.notes == ["offline analyzer"]
    assert analysis.validate(step, output.data) == output.data
    return output.data


def test_names_come_from_introductions() -> None:
    assert _run("speaker_names")["speakers"] == [
        {"label": "A", "name": "Alice"},
        {"label": "B", "name": "Bob"},
        {"label": "C", "name": "Carol"},
    ]


def test_names_come_from_being_addressed_but_never_from_guesses() -> None:
    transcript = _scripted(
        [
            ("A", "The numbers are in."),
            ("B", "Thanks, Dan. Erin, can you check them?"),
            ("C", "Sure, I'm on it."),
            ("D", "I'm Sorry, I'm late."),
        ]
    )
    assert _run("speaker_names", transcript)["speakers"] == [
        {"label": "A", "name": "Dan"},
        {"label": "B", "name": None},
        {"label": "C", "name": "Erin"},
        {"label": "D", "name": None},
    ]


def test_the_summary_is_marked_offline_and_extractive() -> None:
    summary = _run("summary")["summary"]
    assert summary.startswith(SUMMARY_PREFIX)
    assert "Bob, can you review the login fix before Friday?" in summary
    # The request and its acceptance say the same thing: only one is kept.
    assert "I will review the login fix" not in summary


def test_action_items_have_owners_and_resolved_due_dates() -> None:
    assert _run("action_items")["action_items"] == [
        {
            "text": "Review the login fix before Friday",
            "owner": "Bob",
            "due_date": "2026-11-27",
            "source_start_ms": 15000,
        },
        {
            "text": "Write the release notes tomorrow",
            "owner": "Bob",
            "due_date": "2026-11-24",
            "source_start_ms": 35000,
        },
    ]


def test_decisions_are_found() -> None:
    assert _run("decisions")["decisions"] == [
        {"text": "We decided to ship the dashboard next Tuesday", "source_start_ms": 30000}
    ]


def test_a_bare_agreement_adopts_the_proposal() -> None:
    transcript = _scripted([("A", "Let's move the demo to Thursday."), ("B", "Agreed.")])
    assert _run("decisions", transcript)["decisions"] == [
        {"text": "Let's move the demo to Thursday", "source_start_ms": 0}
    ]


@pytest.mark.parametrize(
    ("sentence", "due"),
    [
        ("Send it by Friday.", date(2026, 11, 27)),
        ("Send it by Monday.", date(2026, 11, 30)),  # said on a Monday: next week's
        ("Ship it next Tuesday.", date(2026, 12, 1)),
        ("Do it tomorrow.", date(2026, 11, 24)),
        ("Done by end of day.", MONDAY),
        ("Finish it next week.", date(2026, 11, 30)),
        ("Report in two weeks.", date(2026, 12, 7)),
        ("Close it by the end of the month.", date(2026, 11, 30)),
        ("Renew it by March 3rd.", date(2027, 3, 3)),
        ("File it by 2026-12-15.", date(2026, 12, 15)),
        ("We'll do it soon.", None),
    ],
)
def test_due_dates_resolve_against_the_analysis_day(sentence: str, due: date | None) -> None:
    assert find_due_date(sentence, MONDAY) == due


# --- OpenAI transcription (against the loopback fake) ---------------------------------


@pytest.fixture
def openai_settings(settings: Any, fake_openai: FakeOpenAI) -> Any:
    settings.OPENAI_API_KEY = fake_openai.api_key
    settings.OPENAI_BASE_URL = f"{fake_openai.url}/v1"
    return settings


def test_openai_segments_become_single_speaker_utterances(openai_settings: Any) -> None:
    from jobs.providers.openai.audio import OpenAITranscriber

    transcript = OpenAITranscriber().submit(AudioSource(path=SAMPLE_WAV))
    assert transcript.language == "en"
    assert {u.speaker for u in transcript.utterances} == {"A"}
    starts = [u.start_ms for u in transcript.utterances]
    assert len(starts) >= 2 and starts == sorted(starts)


def test_openai_diarizing_models_keep_their_speakers(openai_settings: Any) -> None:
    from jobs.providers.openai.audio import OpenAITranscriber

    openai_settings.OPENAI_TRANSCRIPTION_MODEL = "gpt-4o-transcribe-diarize"
    transcript = OpenAITranscriber().submit(AudioSource(path=SAMPLE_WAV))
    assert len({u.speaker for u in transcript.utterances}) >= 2
    assert transcript.utterances[0].speaker == "A"


def test_openai_rate_limits_are_transient(openai_settings: Any, fake_openai: FakeOpenAI) -> None:
    from jobs.providers.openai.audio import OpenAITranscriber

    fake_openai.rate_limit(route="transcription", retry_after=7)
    with pytest.raises(TransientError) as caught:
        OpenAITranscriber().submit(AudioSource(path=SAMPLE_WAV))
    assert (caught.value.code, caught.value.retry_after) == ("provider_rate_limited", 7)
