"""Two-hour recordings with the local transcriber (TRANSCRIPTION_PROVIDER=local).

The work is split into windows of LOCAL_TRANSCRIPTION_WINDOW_SECONDS, one poll task
each under the ordinary task limits; a worker killed mid-window resumes from the
last finished window; cancelling stops between windows; the join labels speakers
over the whole recording.

The recording is real audio (the shipped sample's voices between silences),
decoded with PyAV as in production. Whisper is stubbed at the model boundary:
two hours of real recognition take about ten minutes on 2 cores (README
"Settings" has the figure measured with the shipped model).
"""

from __future__ import annotations

import json
import os
import signal
import time
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import jobs.tasks  # noqa: F401 (registers the step tasks this test runs)
from jobs.actions import cancel_job, submit_job
from jobs.models import Job
from jobs.pipeline.queue import STEP_TASK_NAMES
from jobs.pipeline.steps import POLL
from jobs.providers.audio import pcm16k
from jobs.providers.base import AudioSource
from jobs.providers.local import transcription
from jobs.providers.local.transcription import LocalTranscriber, _read_pcm
from meetings.models import Segment
from tests.support.broker import run_queued
from tests.support.platform import ROOT

TWO_HOURS = 2 * 3600
RATE = 16000
# Each minute: a 10 s excerpt of the sample (one of four, in turn), then silence.
EXCERPT_SECONDS = 10
EXCERPTS = 4


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MEDIA_ROOT holding audio/two-hours.wav (16 kHz mono, 230 MB, written in about a
    second) and audio/twenty-minutes.wav, its first four windows."""
    media = tmp_path_factory.mktemp("media")
    (media / "audio").mkdir()
    sample = (_read_pcm(ROOT / "samples" / "standup.wav") * 32767).astype("<i2")
    minutes = []
    for n in range(EXCERPTS):
        minute = np.zeros(60 * RATE, dtype="<i2")
        start = n * EXCERPT_SECONDS * RATE
        minute[: EXCERPT_SECONDS * RATE] = sample[start : start + EXCERPT_SECONDS * RATE]
        minutes.append(minute.tobytes())
    with wave.open(str(media / "audio" / "two-hours.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for m in range(TWO_HOURS // 60):
            out.writeframes(minutes[m % EXCERPTS])
    with wave.open(str(media / "audio" / "twenty-minutes.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for m in range(20):
            out.writeframes(minutes[m % EXCERPTS])
    return media


class StubWhisper:
    """faster-whisper's `transcribe` at the model boundary: a word per loud 100 ms."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def transcribe(self, audio: np.ndarray, **options: object):
        self.seconds.append(len(audio) / RATE)
        step = RATE // 10
        loud = [
            i
            for i in range(len(audio) // step)
            if np.sqrt(np.mean(audio[i * step : (i + 1) * step] ** 2)) > 0.01
        ]
        words = [SimpleNamespace(start=i / 10, end=i / 10 + 0.1, word=" word") for i in loud]
        return iter([SimpleNamespace(words=words)]), None


@pytest.fixture
def local(settings, two_hours, monkeypatch) -> StubWhisper:
    settings.MEDIA_ROOT = two_hours
    settings.TRANSCRIPTION_PROVIDER = "local"
    settings.ANALYSIS_PROVIDER = "local"
    stub = StubWhisper()
    monkeypatch.setattr(transcription, "_model", lambda: stub)
    yield stub
    for folder in (two_hours / "transcription-windows").glob("*"):
        LocalTranscriber().forget(folder.name)


def recording(media: Path, name: str = "two-hours.wav") -> AudioSource:
    return AudioSource(path=media / "audio" / name)


TWENTY_MINUTES = "twenty-minutes.wav"


def windows_of(key: str) -> list[Path]:
    return sorted(transcription._folder(key).glob("window-*.json"))


def test_seeking_decodes_the_same_samples_as_reading_from_the_start(two_hours):
    path = recording(two_hours).path
    with wave.open(str(path)) as wav:
        wav.setpos(5_000_000)
        expected = np.frombuffer(wav.readframes(RATE), dtype="<i2") / 32768.0
    assert np.array_equal(pcm16k(path, 5_000_000, 5_000_000 + RATE), expected.astype(np.float32))


@pytest.mark.django_db(transaction=True)
def test_a_two_hour_recording_completes_one_window_per_task_under_the_shipped_limits(
    local, private_broker, settings
):
    job = submit_job(Job(title="Two hours", audio="audio/two-hours.wav"))
    tasks = drain_transcription(private_broker, inspect=lambda: check_the_plan(settings))
    job.refresh_from_db()
    assert job.transcript_saved_at is not None, job.error_message
    assert job.audio_duration_seconds == TWO_HOURS
    windows = TWO_HOURS // settings.LOCAL_TRANSCRIPTION_WINDOW_SECONDS
    # transcribe (the plan), one poll per window, one more that joins them.
    assert [name for name, _ in tasks] == [STEP_TASK_NAMES["transcribe"]] + [
        STEP_TASK_NAMES[POLL]
    ] * (windows + 1)
    shipped = [settings.CELERY_TASK_TIME_LIMIT, settings.TASK_SOFT_TIME_LIMIT]
    for _, limits in tasks:
        assert limits == shipped, "every task runs under the worker's ordinary limits"
    assert settings.TASK_SOFT_TIME_LIMIT == 300
    # Whisper never saw more than a five-minute batch (and its padding) at once.
    assert max(local.seconds) <= transcription.BATCH_MS / 1000 + 1
    last = Segment.objects.filter(meeting__job=job).order_by("-start_ms").first()
    assert last.end_ms > (TWO_HOURS - 60) * 1000
    assert not list((settings.MEDIA_ROOT / "transcription-windows").glob("*")), "checkpoints gone"
    progress = list(job.events.values_list("progress", flat=True))
    assert progress == sorted(progress)


def check_the_plan(settings) -> None:
    """Once planned: windows of at most the shipped five minutes covering the two hours."""
    [folder] = (settings.MEDIA_ROOT / "transcription-windows").glob("*")
    plan = json.loads((folder / "plan.json").read_text())
    window_ms = settings.LOCAL_TRANSCRIPTION_WINDOW_SECONDS * 1000
    assert window_ms == 300_000, "the shipped window"
    assert len(plan["windows"]) == TWO_HOURS * 1000 // window_ms
    for window in plan["windows"]:
        assert window[-1][1] - window[0][0] <= window_ms
    assert plan["duration_ms"] == TWO_HOURS * 1000


def test_a_worker_killed_mid_window_resumes_from_the_last_finished_window(local, two_hours):
    key = LocalTranscriber().submit(recording(two_hours, TWENTY_MINUTES))
    started = transcription._folder(key) / "started"
    recognise = transcription._recognise_window

    pid = os.fork()
    if pid == 0:  # the worker: three windows, then hangs in the fourth until killed
        try:

            def hang_in_the_fourth(plan, window):
                if len(windows_of(key)) == 3:
                    started.write_text(str(window[0][0]))
                    time.sleep(60)
                return recognise(plan, window)

            transcription._recognise_window = hang_in_the_fourth
            while LocalTranscriber().fetch(key) is None:
                pass
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert started.exists(), "the worker reached the fourth window"
    assert len(windows_of(key)) == 3

    redone: list[int] = []

    def counted(plan, window):
        redone.append(window[0][0])
        return recognise(plan, window)

    local_stub_calls = len(local.seconds)
    transcription._recognise_window = counted
    try:
        while (transcript := LocalTranscriber().fetch(key)) is None:
            pass
    finally:
        transcription._recognise_window = recognise
    plan = json.loads((transcription._folder(key) / "plan.json").read_text())
    assert redone == [window[0][0] for window in plan["windows"][3:]]
    assert redone[0] == int(started.read_text()), "the killed window is the first redone"
    assert len(local.seconds) > local_stub_calls
    # The join labels voices over the whole recording: minutes m and m + 4 hold
    # the same excerpt, in different windows, and get the same labels.
    by_minute: dict[int, list[str]] = {}
    for u in transcript.utterances:
        by_minute.setdefault(u.start_ms // 60_000, []).append(u.speaker)
    assert len(by_minute) == 20
    for minute in range(EXCERPTS):
        assert {tuple(by_minute[m]) for m in range(minute, 20, EXCERPTS)} == {
            tuple(by_minute[minute])
        }
    assert len({u.speaker for u in transcript.utterances}) == 3


@pytest.mark.django_db(transaction=True)
def test_cancelling_stops_between_windows(local, private_broker, settings):
    job = submit_job(Job(title="Twenty minutes", audio=f"audio/{TWENTY_MINUTES}"))
    drain_transcription(private_broker, stop_after=3)
    assert cancel_job(Job.objects.get(id=job.id))
    before = len(local.seconds)
    drain_transcription(private_broker)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.transcript_saved_at is None
    assert len(local.seconds) == before, "no window recognised after the cancel"


def drain_transcription(broker, stop_after=None, inspect=None):
    return run_queued(broker, ("transcription",), stop_after, inspect)
