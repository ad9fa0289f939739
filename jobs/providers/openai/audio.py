"""Transcription through the official OpenAI SDK's audio API.

Synchronous: `submit` uploads the file, waits for the answer and returns the
Transcript; `fetch` refuses with PermanentError("not_async"). The model is
`OPENAI_TRANSCRIPTION_MODEL` (default "whisper-1") at `OPENAI_BASE_URL`,
with the SDK's retries off (retry policy lives in the pipeline),
`OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS` (default 600: an hour of audio takes
minutes) per request, and each request admitted by the fleet-wide limit
`OPENAI_TRANSCRIPTION_REQUESTS_PER_MINUTE` as it is sent
(jobs.providers.openai.client).

Speakers. whisper-1 and most compatible servers answer `verbose_json`, whose
segments carry no speaker: every utterance is then speaker "A", one per
segment. A model whose name contains "diarize" (gpt-4o-transcribe-diarize)
is asked for `diarized_json`, and a server that adds a `speaker` field to its
segments is believed too; their labels are renamed "A", "B", ... in order of
first appearance, like AssemblyAI's.

Vocabulary. `audio.vocabulary` becomes the request's `prompt` ("Glossary:
term, term, ..."), which Whisper-style models use to spell names and
jargon; Whisper reads only the prompt's last 224 tokens, so it is cut to
PROMPT_MAX_CHARS (about that many) keeping the first terms. The diarizing
model takes no prompt, so it gets none.

Size. The API takes at most 25 MB in a few containers. Anything bigger, or
in another container, is first converted to 16 kHz mono MP3 at 32 kbit/s
(about 240 kB a minute: some 100 minutes fit), or at 24 or 16 kbit/s when the
recording is longer (a two-hour recording fits at 24, three and a half hours
at 16). MP3 rather than WAV because 16 kHz WAV fills 25 MB in 13 minutes.
Longer recordings are refused with PermanentError("audio_too_large");
splitting them is not implemented.

Time. The request may take up to OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS, so the
transcribe task of a synchronous provider runs under its own, longer time
limits (SYNC_TRANSCRIPTION_SOFT_TIME_LIMIT, see pipeline.runner.enqueue_next):
a soft limit never fires in the middle of a paid request.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import openai
from django.conf import settings

from jobs.errors import PermanentError
from jobs.providers.audio import probe_duration, to_mp3_16k
from jobs.providers.base import AudioSource
from jobs.providers.openai.client import client
from jobs.providers.openai.errors import translate
from meetings.transcript import Transcript, Utterance

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# Speech stays intelligible to the recogniser down to 16 kbit/s at 16 kHz mono.
MP3_BITRATES_KBPS = (32, 24, 16)
PROMPT_MAX_CHARS = 800
ACCEPTED_SUFFIXES = {".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".wav", ".webm"}
# verbose_json names the language ("english"); the pipeline stores ISO 639-1.
_LANGUAGE_CODES = {
    "english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "polish": "pl", "russian": "ru", "ukrainian": "uk",
    "turkish": "tr", "japanese": "ja", "chinese": "zh", "korean": "ko", "arabic": "ar",
    "hindi": "hi", "swedish": "sv", "danish": "da", "norwegian": "no", "finnish": "fi",
}  # fmt: skip


class OpenAITranscriber:
    name = "openai"

    def __init__(self) -> None:
        self._model = settings.OPENAI_TRANSCRIPTION_MODEL
        self._client = client(settings.OPENAI_TRANSCRIPTION_TIMEOUT_SECONDS)

    def submit(self, audio: AudioSource) -> Transcript:
        """Transcribe `audio.path` in one request and return the Transcript."""
        with tempfile.TemporaryDirectory(prefix="openai-audio-") as tmp:
            path = _uploadable(audio.path, Path(tmp))
            answer = self._transcribe(path, audio.language, audio.vocabulary)
        return _to_transcript(answer, audio.language)

    def fetch(self, external_id: str) -> Transcript | None:
        """Never needed: `submit` already returned the Transcript."""
        raise PermanentError(
            "not_async", "OpenAI transcription finishes inside submit(); there is nothing to fetch"
        )

    def _transcribe(self, path: Path, language: str, vocabulary: tuple[str, ...] = ()) -> Any:
        diarize = "diarize" in self._model
        options: dict[str, Any] = {
            "model": self._model,
            "response_format": "diarized_json" if diarize else "verbose_json",
        }
        if diarize:
            # Required by the diarizing model for anything over 30 seconds.
            options["chunking_strategy"] = "auto"
        if language:
            options["language"] = language
        if vocabulary and not diarize:
            options["prompt"] = glossary_prompt(vocabulary)
        try:
            with path.open("rb") as fh:
                return self._client.audio.transcriptions.create(file=(path.name, fh), **options)
        except openai.APIError as exc:
            raise translate(exc, rejected_code="audio_rejected") from exc


def glossary_prompt(vocabulary: tuple[str, ...]) -> str:
    """ "Glossary: a, b, c." with as many terms as fit in PROMPT_MAX_CHARS."""
    kept: list[str] = []
    size = len("Glossary: .")
    for term in vocabulary:
        if size + len(term) + 2 > PROMPT_MAX_CHARS:
            break
        kept.append(term)
        size += len(term) + 2
    return f"Glossary: {', '.join(kept)}."


def _uploadable(path: Path, tmp: Path) -> Path:
    """`path` itself when the API takes it as it is, else a compact MP3 copy."""
    if path.suffix.lower() in ACCEPTED_SUFFIXES and path.stat().st_size <= MAX_UPLOAD_BYTES:
        return path
    converted = to_mp3_16k(path, tmp, _bitrate_for(probe_duration(path)))
    if converted.stat().st_size > MAX_UPLOAD_BYTES:
        raise PermanentError(
            "audio_too_large",
            "The recording is too long for OpenAI's 25 MB upload limit even as 16 kHz mono MP3 "
            "at 16 kbit/s (about three and a half hours)",
        )
    return converted


def _bitrate_for(duration_seconds: float | None) -> str:
    """The highest of 32, 24 and 16 kbit/s at which the recording fits in one upload
    (two hours fit at 24); 16 when even that does not fit, which the caller refuses."""
    for kbps in MP3_BITRATES_KBPS:
        if duration_seconds is None or duration_seconds * kbps * 125 <= MAX_UPLOAD_BYTES * 0.97:
            return f"{kbps}k"
    return f"{MP3_BITRATES_KBPS[-1]}k"


def _to_transcript(answer: Any, requested_language: str) -> Transcript:
    """Validate the answer's segments at the boundary and turn them into utterances."""
    labels: dict[str, str] = {}
    utterances: list[Utterance] = []
    for segment in getattr(answer, "segments", None) or []:
        text = (getattr(segment, "text", "") or "").strip()
        if not text:
            continue
        start = max(0, round(float(segment.start) * 1000))
        end = max(start, round(float(segment.end) * 1000))
        raw = str(getattr(segment, "speaker", None) or "")
        label = labels.setdefault(raw, _label(len(labels))) if raw else "A"
        utterances.append(Utterance(speaker=label, start_ms=start, end_ms=end, text=text))
    duration = getattr(answer, "duration", None)
    text = (getattr(answer, "text", "") or "").strip()
    if not utterances and text:
        # A server that ignores verbose_json still gives the words: one turn.
        end_ms = round(float(duration) * 1000) if duration else 0
        utterances.append(Utterance(speaker="A", start_ms=0, end_ms=end_ms, text=text))
    if not utterances:
        raise PermanentError("no_speech", "No speech was recognised in the recording")
    spoken = str(getattr(answer, "language", "") or "").lower()
    detected = "" if requested_language else _LANGUAGE_CODES.get(spoken, spoken)
    return Transcript(
        utterances=sorted(utterances, key=lambda u: u.start_ms),
        language=requested_language or detected,
        duration_seconds=float(duration) if duration is not None else None,
        detected_language=detected,
    )


def _label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"S{index + 1}"
