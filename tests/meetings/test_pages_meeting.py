"""The results page: what it shows, how it links moments, and that model and
transcript text can never become markup."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from jobs.models import Job
from jobs.tokens import make_viewer_token
from meetings.models import ActionItem, Decision
from tests.support.api_factories import make_job, make_meeting, wav_bytes

pytestmark = pytest.mark.django_db

TURNS = [
    ("A", 0, 6000, "Let's plan the release."),
    ("A", 6000, 9000, "Bob, the report please."),
    ("B", 10000, 14000, "I'll send the report by Friday."),
    ("A", 15000, 20000, "Then we ship on Monday."),
]


def page(client, meeting, **extra) -> str:
    response = client.get(
        f"/meetings/{meeting.id}/", {"token": make_viewer_token(meeting.job), **extra}
    )
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def meeting():
    job = make_job(None, title="Weekly sync", status=Job.Status.COMPLETED, stage=Job.Stage.DONE)
    meeting = make_meeting(job, TURNS, names={"A": "Alice", "B": "Bob"})
    meeting.summary = "Alice and Bob planned the release."
    meeting.language = "en_us"
    meeting.duration_seconds = 21.5
    meeting.save()
    ActionItem.objects.create(
        meeting=meeting,
        text="Send the report",
        owner="Bob",
        due_date=date(2026, 11, 27),
        source_start_ms=11000,
    )
    Decision.objects.create(meeting=meeting, index=0, text="Ship on Monday", source_start_ms=15500)
    return meeting


def test_it_shows_title_facts_summary_and_speakers_with_their_share(client, meeting):
    html = page(client, meeting)
    assert "Weekly sync" in html and "Alice and Bob planned the release." in html
    assert "0:21" in html and "English" in html
    # Alice talks 6 + 3 + 5 = 14 s of 18 s (78%), Bob 4 s (22%).
    alice = html.index(">Alice<")
    assert re.search(r"<strong>78%</strong> · 14 s", html[alice:])
    assert re.search(r"<strong>22%</strong> · 4 s", html)
    assert html.index(">Alice<") < html.index(">Bob<")


def test_it_links_action_items_and_decisions_to_their_moment(client, meeting):
    html = page(client, meeting)
    # 11 000 ms falls inside Bob's segment (index 2); 15 500 inside index 3.
    assert re.search(r'href="#seg-2" data-seek="11000"', html)
    assert re.search(r'href="#seg-3" data-seek="15500"', html)
    assert 'id="seg-2"' in html and "Bob" in html and "Fri 27 Nov 2026" in html


def test_it_groups_consecutive_segments_of_a_speaker_into_one_turn(client, meeting):
    html = page(client, meeting)
    turns = re.findall(r'<section class="turn[^"]*">\s*<h3 class="who">(\w+)</h3>', html)
    assert turns == ["Alice", "Bob", "Alice"]
    assert html.count('class="segment"') == 4


def test_it_escapes_every_text_from_transcripts_and_models(client, meeting):
    meeting.summary = "<img src=x onerror=alert(1)>"
    meeting.save()
    segment = meeting.segments.first()
    segment.text = "<script>window.__xss=1</script>"
    segment.save()
    meeting.speakers.filter(label="A").update(name="<b>Alice</b>")
    meeting.action_items.update(owner='"><svg onload=alert(2)>', text="<i>x</i>")
    html = page(client, meeting)
    for raw in ("<script>window", "<img src=x", "<b>Alice", "<svg onload", "<i>x</i>"):
        assert raw not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_it_forbids_inline_script_with_a_content_security_policy(client, meeting):
    response = client.get(f"/meetings/{meeting.id}/", {"token": make_viewer_token(meeting.job)})
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode().replace('<script src="', "")


def test_it_links_the_exports_with_the_viewer_token(client, meeting):
    token = make_viewer_token(meeting.job)
    html = page(client, meeting)
    for fmt in ("txt", "srt", "vtt", "md"):
        link = f"/meetings/{meeting.id}/transcript.{fmt}?token={quote(token)}"
        assert f'href="{link}"' in html
        download = client.get(link)
        assert download.status_code == 200 and b"send the report by Friday" in download.content


def test_it_plays_the_recording_through_the_access_checked_audio_view(client, meeting):
    assert "<audio" not in page(client, meeting)  # no file, no player
    meeting.job.audio.save("a.wav", ContentFile(wav_bytes(0.5)))
    token = make_viewer_token(meeting.job)
    assert f'src="/meetings/{meeting.id}/audio?token={quote(token)}"' in page(client, meeting)
    assert "/media/" not in page(client, meeting)


def test_a_degraded_step_says_so_plainly(client, meeting):
    meeting.degraded = ["summary", "decisions"]
    meeting.summary = ""
    meeting.save()
    meeting.decisions.all().delete()
    html = page(client, meeting)
    assert "Summary unavailable: the analysis service failed." in html
    assert "Decisions unavailable: the analysis service failed." in html
    assert "Part of the analysis is missing:</strong> Summary, Decisions" in html
    assert "Reprocess the analysis" not in html  # a viewer cannot reprocess


def test_staff_are_offered_a_reprocess_of_a_degraded_meeting(client, meeting):
    meeting.degraded = ["summary"]
    meeting.save()
    client.force_login(
        get_user_model().objects.create_user(
            "staff", password="pw", is_staff=True, is_superuser=True
        )
    )
    html = client.get(f"/meetings/{meeting.id}/").content.decode()
    assert f'action="/jobs/{meeting.job_id}/reprocess/"' in html
    assert 'name="from" value="analysis"' in html and "csrfmiddlewaretoken" in html


def test_a_meeting_that_is_not_degraded_offers_no_reprocess(client, meeting):
    client.force_login(
        get_user_model().objects.create_user(
            "staff", password="pw", is_staff=True, is_superuser=True
        )
    )
    html = client.get(f"/meetings/{meeting.id}/").content.decode()
    assert "unavailable" not in html and "Reprocess" not in html
