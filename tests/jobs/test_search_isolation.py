"""Isolation first: a client's search and ask never reach another client's meetings,
in any mode, through any filter; staff see everything; a viewer token sees its meeting."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from jobs.models import Job
from jobs.tokens import make_viewer_token
from meetings.search.query import MODES
from tests.support.api_factories import api_for, make_job, make_meeting, new_client
from tests.support.search import index

pytestmark = pytest.mark.django_db

SECRET = "The acquisition of Globex closes on Friday; keep the merger price at forty million."


def meeting_of(client, title: str, text: str):
    job = make_job(client, title=title, status=Job.Status.COMPLETED)
    meeting = make_meeting(job, [("A", 0, 5000, text), ("B", 5000, 9000, "Noted, thanks.")])
    index(meeting)
    return meeting


@pytest.fixture
def two_clients():
    mine, my_key = new_client()
    theirs, their_key = new_client()
    own = meeting_of(mine, "Our sync", "We talked about the merger price and the Friday deadline.")
    foreign = meeting_of(theirs, "Their board", SECRET)
    return api_for(my_key), api_for(their_key), own, foreign


def ids_in(body: dict) -> set[str]:
    return {hit["meeting_id"] for hit in body["results"]}


@pytest.mark.parametrize("mode", MODES)
def test_search_in_every_mode_returns_only_the_clients_own_meetings(two_clients, mode):
    mine, theirs, own, foreign = two_clients
    for q in ("merger price Friday", "acquisition of Globex", SECRET):
        body = mine.get("/api/v1/search/", {"q": q, "mode": mode}).json()
        assert ids_in(body) <= {str(own.id)}, (mode, q)
        assert "Globex" not in str(body)
    # The other client finds its own secret, so the query above could have found it.
    found = theirs.get("/api/v1/search/", {"q": "acquisition of Globex", "mode": mode}).json()
    assert ids_in(found) == {str(foreign.id)}


@pytest.mark.parametrize("mode", MODES)
def test_filtering_on_another_clients_meeting_answers_404(two_clients, mode):
    mine, _, _, foreign = two_clients
    response = mine.get("/api/v1/search/", {"q": "Globex", "mode": mode, "meeting_id": foreign.id})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_speaker_filter_cannot_reach_across_clients(two_clients):
    mine, _, own, _ = two_clients
    body = mine.get("/api/v1/search/", {"q": "Globex merger", "speaker": "A"}).json()
    assert ids_in(body) <= {str(own.id)}


def test_ask_never_cites_another_clients_meeting(two_clients):
    mine, theirs, own, foreign = two_clients
    body = mine.post(
        "/api/v1/ask/", {"question": "When does the Globex acquisition close?"}, format="json"
    ).json()
    assert {c["meeting_id"] for c in body["citations"]} <= {str(own.id)}
    assert "Globex" not in str(body)
    found = theirs.post(
        "/api/v1/ask/", {"question": "When does the Globex acquisition close?"}, format="json"
    ).json()
    assert {c["meeting_id"] for c in found["citations"]} == {str(foreign.id)}


def test_ask_about_another_clients_meeting_answers_404(two_clients):
    mine, _, own, foreign = two_clients
    response = mine.post(
        "/api/v1/ask/",
        {"question": "price?", "meeting_ids": [str(own.id), str(foreign.id)]},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"meeting_ids": [str(foreign.id)]}


def test_search_without_a_key_is_refused(two_clients):
    assert api_for(None).get("/api/v1/search/", {"q": "Globex"}).status_code == 401
    assert (
        api_for(None).post("/api/v1/ask/", {"question": "Globex?"}, format="json").status_code
        == 401
    )


def test_staff_search_every_meeting_in_admin(two_clients, client):
    _, _, own, foreign = two_clients
    staff = User.objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/search/", {"q": "merger", "mode": "keyword"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/meetings/{own.id}/" in html and f"/meetings/{foreign.id}/" in html


def test_staff_without_the_view_meeting_permission_are_refused(two_clients, client):
    client.force_login(User.objects.create_user("helper", password="pw", is_staff=True))
    page = client.get("/admin/search/", {"q": "merger"})
    assert page.status_code == 403 and b"Globex" not in page.content


def test_the_admin_search_page_is_for_staff_only(two_clients, client):
    response = client.get("/admin/search/", {"q": "merger"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("someone", password="pw")
    client.login(username="someone", password="pw")
    assert client.get("/admin/search/", {"q": "merger"}).status_code == 302


@pytest.mark.parametrize("mode", MODES)
def test_a_viewer_token_searches_only_its_own_meeting(two_clients, client, mode):
    _, _, own, foreign = two_clients
    token = make_viewer_token(own.job)
    body = client.get(
        f"/meetings/{own.id}/search/", {"q": "merger price", "mode": mode, "token": token}
    ).json()
    assert body["results"] and {h["meeting_id"] for h in body["results"]} == {str(own.id)}
    # Its token opens nothing else, and no token opens nothing at all.
    assert (
        client.get(f"/meetings/{foreign.id}/search/", {"q": "Globex", "token": token}).status_code
        == 403
    )
    assert client.get(f"/meetings/{own.id}/search/", {"q": "merger"}).status_code == 403
