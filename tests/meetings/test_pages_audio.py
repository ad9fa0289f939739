"""The results page's recording: served to staff and token holders only, with
HTTP Range support so the player can seek (checked through the real ASGI server)."""

from __future__ import annotations

import pytest
import requests
from django.core.files.base import ContentFile

from jobs.models import Job
from jobs.tokens import make_viewer_token
from meeting_intel.lib.ranges import Unsatisfiable, parse_range
from tests.conftest import SAMPLE_AUDIO
from tests.support.api_factories import make_job, make_meeting
from tests.support.pages import staff_session

with open(SAMPLE_AUDIO, "rb") as _fh:
    AUDIO = _fh.read()
SIZE = len(AUDIO)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, SIZE - 1)),
        ("bytes=-10", (SIZE - 10, SIZE - 1)),
        ("bytes=-999999999", (0, SIZE - 1)),
        ("bytes=5-999999999", (5, SIZE - 1)),
        ("BYTES=1-2", (1, 2)),
        ("bytes=9-3", None),  # malformed: ignored
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
    ],
)
def test_it_parses_a_single_byte_range(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, SIZE)


@pytest.fixture
def meeting():
    job = make_job(None, title="With audio", status=Job.Status.COMPLETED)
    job.audio.save("standup.wav", ContentFile(AUDIO))
    return make_meeting(job, [("A", 0, 1000, "Hi")])


def audio_url(platform, meeting, token: str | None = "") -> str:
    token = make_viewer_token(meeting.job) if token == "" else token
    query = f"?token={token}" if token else ""
    return f"{platform.url}/meetings/{meeting.id}/audio{query}"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_it_serves_the_whole_recording_as_audio(platform, meeting):
    response = requests.get(audio_url(platform, meeting), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == SIZE
    assert response.content == AUDIO


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_it_answers_a_range_with_206_and_exactly_those_bytes(platform, meeting):
    url = audio_url(platform, meeting)
    response = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{SIZE}"
    assert response.headers["Content-Length"] == "1000"
    assert response.content == AUDIO[1000:2000]
    tail = requests.get(url, headers={"Range": "bytes=-16"}, timeout=10)
    assert tail.status_code == 206 and tail.content == AUDIO[-16:]
    rest = requests.get(url, headers={"Range": f"bytes={SIZE - 100}-"}, timeout=10)
    assert rest.headers["Content-Range"] == f"bytes {SIZE - 100}-{SIZE - 1}/{SIZE}"
    assert rest.content == AUDIO[-100:]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_range_past_the_end_with_416(platform, meeting):
    response = requests.get(
        audio_url(platform, meeting), headers={"Range": f"bytes={SIZE}-"}, timeout=10
    )
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_stale_if_range_gets_the_whole_file(platform, meeting):
    url = audio_url(platform, meeting)
    etag = requests.head(url, timeout=10).headers["ETag"]
    fresh = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert fresh.status_code == 206 and fresh.content == AUDIO[:10]
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == AUDIO


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_head_sends_the_headers_only(platform, meeting):
    response = requests.head(audio_url(platform, meeting), timeout=10)
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) == SIZE


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_recording_is_for_staff_and_its_token_holders_only(platform, meeting):
    assert requests.get(audio_url(platform, meeting, token=None), timeout=10).status_code == 403
    other = make_viewer_token(make_job(None, title="other"))
    assert requests.get(audio_url(platform, meeting, token=other), timeout=10).status_code == 403
    staff = staff_session(platform.url)
    response = staff.get(
        audio_url(platform, meeting, token=None), headers={"Range": "bytes=0-3"}, timeout=10
    )
    assert response.status_code == 206 and response.content == b"RIFF"
    # Uploaded media is never public.
    assert (
        requests.get(f"{platform.url}/media/{meeting.job.audio.name}", timeout=10).status_code
        == 404
    )


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_file_that_is_not_audio_is_never_served_as_a_page(platform, meeting):
    meeting.job.audio.save("page.wav", ContentFile(b"<html><script>alert(1)</script></html>"))
    response = requests.get(audio_url(platform, meeting), timeout=10)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
