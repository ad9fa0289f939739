"""Meetings over the API: no N+1 queries, speaker renames everywhere, transcript exports."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.tokens import make_viewer_token
from tests.support.api_factories import api_for, make_job, make_meeting, new_client

pytestmark = pytest.mark.django_db

TURNS = [
    ("A", 1234, 4000, "Let's ship on Monday."),
    ("B", 4000, 3_723_456, "Agreed, I'll send the <report> & notes --> today."),
    ("A", 3_723_456, 3_725_000, "Great.\n\nThanks."),
]


@pytest.fixture
def cms():
    client, key = new_client()
    return client, api_for(key)


@pytest.fixture
def meeting(cms):
    client, _ = cms
    job = make_job(client, title="Weekly sync")
    return make_meeting(
        job,
        TURNS,
        names={"B": "Bob"},
        action_items=[{"text": "Send the report", "owner": "Bob", "source_start_ms": 4000}],
        decisions=["Ship on Monday"],
    )


def test_the_meeting_has_every_part_of_spec(cms, meeting):
    _, api = cms
    body = api.get(f"/api/v1/meetings/{meeting.id}/").json()
    assert body["job_id"] == str(meeting.job_id) and body["title"] == "Weekly sync"
    assert body["speakers"] == [{"label": "A", "name": ""}, {"label": "B", "name": "Bob"}]
    assert body["segments"][0] == {
        "speaker": "A",
        "speaker_name": "Speaker A",
        "start_ms": 1234,
        "end_ms": 4000,
        "text": "Let's ship on Monday.",
    }
    assert body["action_items"] == [
        {"text": "Send the report", "owner": "Bob", "due_date": None, "source_start_ms": 4000}
    ]
    assert body["decisions"] == [{"text": "Ship on Monday", "source_start_ms": 0}]
    assert body["degraded"] == []


def test_the_meeting_is_read_in_a_fixed_number_of_queries(cms):
    client, api = cms

    def queries_for(turns: int) -> int:
        job = make_job(client)
        meeting = make_meeting(
            job,
            [("ABCDEFGH"[i % 8], i * 1000, i * 1000 + 900, f"turn {i}") for i in range(turns)],
            action_items=[{"text": f"item {i}", "owner": "x"} for i in range(turns // 4)],
            decisions=[f"decision {i}" for i in range(turns // 4)],
        )
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"/api/v1/meetings/{meeting.id}/")
        assert response.status_code == 200 and len(response.json()["segments"]) == turns
        return len(captured)

    small, large = queries_for(4), queries_for(200)
    print(f"meeting detail: {small} queries for 4 segments, {large} for 200")
    # key lookup, meeting, speakers, segments (+speaker), action items, decisions
    assert small == large <= 6


def test_a_rename_shows_in_the_api_exports_and_the_results_page(client, cms, meeting):
    _, api = cms
    response = api.patch(
        f"/api/v1/meetings/{meeting.id}/speakers/B/", {"name": "Roberta"}, format="json"
    )
    assert response.status_code == 200 and response.json() == {"label": "B", "name": "Roberta"}

    body = api.get(f"/api/v1/meetings/{meeting.id}/").json()
    assert {s["label"]: s["name"] for s in body["speakers"]} == {"A": "", "B": "Roberta"}
    assert body["segments"][1]["speaker_name"] == "Roberta"
    assert body["action_items"][0]["owner"] == "Roberta"  # owned under the old name

    for fmt in ("txt", "srt", "vtt", "md"):
        text = api.get(f"/api/v1/meetings/{meeting.id}/transcript.{fmt}").content.decode()
        assert "Roberta" in text and "Bob" not in text, fmt

    token = make_viewer_token(meeting.job)
    page = client.get(f"/meetings/{meeting.id}/?token={token}").content.decode()
    assert "Roberta" in page and ">Bob<" not in page


@pytest.mark.parametrize(
    ("label", "body", "status"),
    [
        ("Z", {"name": "X"}, 404),
        ("A\x00", {"name": "X"}, 404),
        ("A", {"name": "x" * 121}, 400),
        ("A", {"name": "a\x00b"}, 400),
        ("A", {"name": "a\x1bb"}, 400),
    ],
    ids=["unknown-label", "nul-label", "too-long", "nul-char", "control-char"],
)
def test_a_bad_rename_is_refused(cms, meeting, label, body, status):
    _, api = cms
    response = api.patch(f"/api/v1/meetings/{meeting.id}/speakers/{label}/", body, format="json")
    assert response.status_code == status
    assert list(meeting.speakers.values_list("name", flat=True)) == ["", "Bob"]


def export(api, meeting, fmt: str):
    response = api.get(f"/api/v1/meetings/{meeting.id}/transcript.{fmt}")
    assert response.status_code == 200, response.content
    return response, response.content.decode()


def test_srt_export_has_numbered_cues_with_comma_millisecond_timestamps(cms, meeting):
    response, text = export(cms[1], meeting, "srt")
    assert response["Content-Type"] == "application/x-subrip; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="Weekly sync.srt"'
    assert text.split("\n\n")[:2] == [
        "1\n00:00:01,234 --> 00:00:04,000\nSpeaker A: Let's ship on Monday.",
        (
            "2\n00:00:04,000 --> 01:02:03,456\n"
            "Bob: Agreed, I'll send the <report> & notes --> today."
        ),
    ]
    assert "3\n01:02:03,456 --> 01:02:05,000\nSpeaker A: Great. Thanks.\n" in text


def test_vtt_export_has_a_header_voices_and_dot_millisecond_timestamps(cms, meeting):
    response, text = export(cms[1], meeting, "vtt")
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    assert text.startswith("WEBVTT\n\n1\n00:00:01.234 --> 00:00:04.000\n<v Speaker A>")
    assert (
        "00:00:04.000 --> 01:02:03.456\n"
        "<v Bob>Agreed, I'll send the &lt;report&gt; &amp; notes --&gt; today.</v>"
    ) in text
    assert text.count(" --> ") == 3  # the text's own arrow is escaped


def test_txt_and_md_exports_name_speakers_with_timestamps(cms, meeting):
    response, text = export(cms[1], meeting, "txt")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert text.splitlines()[:3] == [
        "Weekly sync",
        "",
        "[00:00:01] Speaker A: Let's ship on Monday.",
    ]
    assert "[01:02:03] Speaker A: Great. Thanks." in text
    response, text = export(cms[1], meeting, "md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert text.startswith("# Weekly sync\n\n**Speaker A** [00:00:01]: Let's ship on Monday.")
    assert r"**Bob** [00:00:04]: Agreed, I'll send the \<report\> & notes --\> today." in text


def test_an_unknown_export_format_answers_404(cms, meeting):
    response = cms[1].get(f"/api/v1/meetings/{meeting.id}/transcript.pdf")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_exports_answer_text_whatever_the_client_accepts(cms, meeting):
    response = cms[1].get(f"/api/v1/meetings/{meeting.id}/transcript.txt", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200 and response.content.startswith(b"Weekly sync")


def test_the_results_page_export_needs_the_viewer_token(client, meeting):
    url = f"/meetings/{meeting.id}/transcript.vtt"
    assert client.get(url).status_code == 403
    assert client.get(f"{url}?token=forged").status_code == 403
    response = client.get(f"{url}?token={make_viewer_token(meeting.job)}")
    assert response.status_code == 200 and response.content.startswith(b"WEBVTT")
