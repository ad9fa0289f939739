"""GET /api/v1/search/: ranked, highlighted hits with filters and pages; bad input gets
SPEC's error object."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from tests.support.api_factories import api_for, make_job, make_meeting, new_client
from tests.support.search import index

pytestmark = pytest.mark.django_db

BUDGET = [
    ("A", 0, 4000, "Welcome everyone, let's start with the agenda."),
    ("B", 4000, 9000, "The marketing budget for the spring campaign is too small."),
    ("A", 9000, 14000, "Then we move the launch to June and hire two engineers."),
    ("C", 14000, 20000, "I will send the <b>invoice</b> to the supplier & finance."),
]
TRAVEL = [
    ("A", 0, 5000, "Our flights to Lisbon are booked for the offsite."),
    ("B", 5000, 9000, "The hotel near the river has a meeting room."),
]


@pytest.fixture
def cms():
    client, key = new_client()
    api = api_for(key)
    old = make_job(client, title="Planning", status=Job.Status.COMPLETED)
    planning = make_meeting(old, BUDGET, names={"B": "Bea", "C": "Carl"})
    planning.created_at = timezone.now() - timedelta(days=30)
    planning.save(update_fields=["created_at"])
    trip = make_meeting(make_job(client, title="Offsite", status=Job.Status.COMPLETED), TRAVEL)
    index(planning)
    index(trip)
    return api, planning, trip


def search(api, **params):
    response = api.get("/api/v1/search/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_keyword_search_ranks_and_highlights_the_matching_segment(cms):
    api, planning, _ = cms
    body = search(api, q="budget campaign", mode="keyword")
    assert body["count"] == 1 and body["mode"] == "keyword"
    hit = body["results"][0]
    assert hit["meeting_id"] == str(planning.id) and hit["job_id"] == str(planning.job_id)
    assert (hit["start_ms"], hit["end_ms"], hit["speaker_name"]) == (4000, 9000, "Bea")
    assert "<mark>budget</mark>" in hit["highlight"] and "<mark>campaign</mark>" in hit["highlight"]
    assert hit["title"] == "Planning" and hit["score"] > 0
    assert f"/meetings/{planning.id}/?token=" in hit["url"] and hit["url"].endswith("&t=4#t=4")


def test_keyword_highlights_escape_transcript_markup(cms):
    api, _, _ = cms
    hit = search(api, q="invoice", mode="keyword")["results"][0]
    # SQLite keeps the tag as escaped text, PostgreSQL's ts_headline drops it: never as markup.
    assert "<b>" not in hit["highlight"]
    assert "<mark>invoice</mark>" in hit["highlight"] and "&amp;" in hit["highlight"]
    assert hit["text"] == "I will send the <b>invoice</b> to the supplier & finance."


def test_semantic_search_finds_a_passage_by_meaning_without_its_words(cms):
    api, planning, trip = cms
    body = search(api, q="travel plans and accommodation", mode="semantic")
    assert body["results"][0]["meeting_id"] == str(trip.id)
    assert body["results"][0]["start_ms"] == 0 and body["results"][0]["end_ms"] == 9000
    assert search(api, q="travel plans and accommodation", mode="keyword")["count"] == 0


def test_hybrid_is_the_default_and_puts_a_hit_found_both_ways_first(cms):
    api, planning, _ = cms
    body = search(api, q="marketing budget")
    assert body["mode"] == "hybrid"
    top = body["results"][0]
    assert top["meeting_id"] == str(planning.id) and "<mark>budget</mark>" in top["highlight"]
    assert [h["score"] for h in body["results"]] == sorted(
        (h["score"] for h in body["results"]), reverse=True
    )


def test_filters_by_meeting_speaker_and_dates(cms):
    api, planning, trip = cms
    assert {
        h["meeting_id"]
        for h in search(api, q="the", mode="semantic", meeting_id=trip.id)["results"]
    } == {str(trip.id)}
    assert search(api, q="budget", mode="keyword", speaker="bea")["count"] == 1
    assert search(api, q="budget", mode="keyword", speaker="Carl")["count"] == 0
    by_label = search(api, q="invoice", mode="keyword", speaker="C")["results"]
    assert by_label and {h["speaker_name"] for h in by_label} == {"Carl"}
    today = timezone.now().date().isoformat()
    recent = search(api, q="meeting room hotel budget", mode="semantic", since=today)["results"]
    assert {h["meeting_id"] for h in recent} == {str(trip.id)}
    older = search(
        api, q="budget", mode="keyword", until=(timezone.now() - timedelta(days=1)).isoformat()
    )
    assert {h["meeting_id"] for h in older["results"]} == {str(planning.id)}
    # A date for `until` includes its whole day.
    that_day = search(api, q="budget", mode="keyword", until=planning.created_at.date().isoformat())
    assert that_day["count"] == 1


def test_results_come_in_pages(cms):
    api, planning, _ = cms
    client = planning.job.client
    turns = [
        ("A", i * 1000, i * 1000 + 900, f"Roadmap item {i} for the roadmap.") for i in range(5)
    ]
    make_meeting(make_job(client, title="Roadmap", status=Job.Status.COMPLETED), turns)
    first = search(api, q="roadmap", mode="keyword", page_size=2)
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    second = api.get(first["next"]).json()
    assert second["previous"] and not {h["text"] for h in second["results"]} & {
        h["text"] for h in first["results"]
    }


@pytest.mark.parametrize(
    "params, field",
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 1_000_000}, "q"),
        ({"q": "budget", "mode": "fuzzy"}, "mode"),
        ({"q": "budget", "since": "yesterday"}, "since"),
        ({"q": "budget", "until": "2025-13-45"}, "until"),
        ({"q": "budget", "until": "9999-12-31"}, "until"),
        ({"q": "budget", "since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"q": "budget\x00"}, "q"),
        ({"q": "budget", "meeting_id": "not-a-uuid"}, "meeting_id"),
        ({"q": "budget", "page": "0"}, "page"),
        ({"q": "budget", "page_size": "1000"}, "page_size"),
        ({}, "q"),
    ],
)
def test_bad_input_gets_the_error_object(cms, params, field):
    api, _, _ = cms
    response = api.get("/api/v1/search/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["details"]


def test_an_unknown_meeting_id_answers_404(cms):
    api, _, _ = cms
    response = api.get(
        "/api/v1/search/", {"q": "budget", "meeting_id": "00000000-0000-0000-0000-000000000001"}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_keyword_index_is_in_place_after_every_migration():
    """A later migration that rebuilds meetings_segment on SQLite would drop the FTS
    triggers (and on PostgreSQL must keep the generated column): this catches it."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'meetings_segment'"
            )
            assert {r[0] for r in cursor.fetchall()} == {
                "meetings_segment_fts_ai",
                "meetings_segment_fts_ad",
                "meetings_segment_fts_au",
            }
        else:
            cursor.execute(
                "SELECT is_generated FROM information_schema.columns "
                "WHERE table_name = 'meetings_segment' AND column_name = 'search_vector'"
            )
            assert cursor.fetchone() == ("ALWAYS",)
