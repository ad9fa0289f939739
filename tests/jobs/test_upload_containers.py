"""Every container the README lists is probed in-process (PyAV) at upload: accepted
with its duration, and damaged or non-audio files refused with nothing stored.
No ffmpeg or ffprobe binary is needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from meeting_intel.lib.media import MediaProblem, inspect_media
from tests.support.api_factories import api_for, new_client, stored_files
from tests.support.media_files import CONTAINERS, make_recording, make_silent_film

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/"


@pytest.fixture
def api():
    _, key = new_client()
    return api_for(key)


@pytest.fixture(autouse=True)
def no_binaries_on_path(monkeypatch, tmp_path):
    """Nothing to run on PATH: if any ffprobe/ffmpeg subprocess were left, it would fail."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


@pytest.mark.parametrize("container", CONTAINERS)
def test_each_listed_container_is_accepted_with_its_duration(api, tmp_path, container):
    recording = make_recording(container, tmp_path)
    upload = SimpleUploadedFile(recording.name, recording.read_bytes(), "application/octet-stream")
    response = api.post(URL, {"audio": upload}, format="multipart")
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    assert job.audio_duration_seconds == pytest.approx(10.0, abs=0.15)
    assert Path(job.audio.path).read_bytes() == recording.read_bytes()


@pytest.mark.parametrize(
    ("container", "cut"),
    [("m4a", 0.5), ("mp4", 0.97), ("mp3", 0.5), ("flac", 0.5), ("webm", 0.5), ("wav", 0.97)],
)
def test_a_cut_off_recording_is_refused_with_422_and_nothing_stored(api, tmp_path, container, cut):
    whole = make_recording(container, tmp_path).read_bytes()
    before = stored_files()
    upload = SimpleUploadedFile(f"cut.{container}", whole[: int(len(whole) * cut)])
    response = api.post(URL, {"audio": upload}, format="multipart")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] in ("truncated_media", "unreadable_media")
    assert Job.objects.count() == 0 and stored_files() == before


@pytest.mark.parametrize("container", ["mp3", "ogg", "webm", "flac", "m4a"])
def test_a_recognised_header_over_garbage_is_unreadable(tmp_path, container):
    head = make_recording(container, tmp_path).read_bytes()[:64]
    damaged = tmp_path / f"damaged.{container}"
    damaged.write_bytes(head + b"\x00not a recording" * 2000)
    with pytest.raises(MediaProblem) as caught:
        inspect_media(damaged)
    assert (caught.value.status, caught.value.code) in (
        (422, "unreadable_media"),
        (422, "truncated_media"),
    )


def test_a_document_is_refused_with_415_and_nothing_stored(api):
    before = stored_files()
    pdf = SimpleUploadedFile("minutes.mp3", b"%PDF-1.7\n" + b"0" * 5000, "audio/mpeg")
    response = api.post(URL, {"audio": pdf}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media"
    assert Job.objects.count() == 0 and stored_files() == before


def test_an_mp4_without_sound_is_refused_with_422(api, tmp_path):
    film = make_silent_film(tmp_path / "film.mp4")
    upload = SimpleUploadedFile("film.mp4", film.read_bytes())
    response = api.post(URL, {"audio": upload}, format="multipart")
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_audio"
