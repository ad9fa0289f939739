"""Action items as iCalendar to-dos: parsed back with icalendar, stable across exports."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from icalendar import Calendar

from jobs.tokens import make_viewer_token, token_allows
from tests.support.api_factories import (
    api_for,
    client_with_api,
    make_job,
    make_meeting,
    new_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cms():
    return client_with_api()


@pytest.fixture
def meeting(cms):
    client, _ = cms
    job = make_job(client, title="Planning")
    return make_meeting(
        job,
        [("A", 0, 90_000, "Hello"), ("B", 90_000, 200_000, "Hi")],
        names={"B": "Søren 李"},
        action_items=[
            {
                "text": "Draft the plan",
                "owner": "Søren 李",
                "due_date": dt.date(2026, 12, 18),
                "source_start_ms": 95_500,
            },
            {"text": "Book the room", "owner": "", "source_start_ms": None},
            {"text": "Call the vendor", "owner": "Ana", "due_date": dt.date(2027, 1, 4)},
        ],
    )


def _todos(body: bytes) -> list:
    calendar = Calendar.from_ical(body)
    return list(calendar.walk("VTODO"))


def test_one_vtodo_per_action_item_with_due_owner_and_a_link_to_the_moment(cms, meeting):
    _, api = cms
    response = api.get(f"/api/v1/meetings/{meeting.id}/action-items.ics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert response["Content-Disposition"].startswith("attachment")
    todos = _todos(response.content)
    assert [str(t["SUMMARY"]) for t in todos] == [
        "Draft the plan",
        "Book the room",
        "Call the vendor",
    ]
    assert [t.decoded("DUE") if "DUE" in t else None for t in todos] == [
        dt.date(2026, 12, 18),
        None,
        dt.date(2027, 1, 4),
    ]
    assert str(todos[0]["CONTACT"]) == "Søren 李" and "CONTACT" not in todos[1]
    assert all(str(t["STATUS"]) == "NEEDS-ACTION" for t in todos)

    link = urlsplit(str(todos[0]["URL"]))
    assert link.path == f"/meetings/{meeting.id}/" and link.fragment == "t=95"
    assert token_allows(parse_qs(link.query)["token"][0], meeting.job)
    assert urlsplit(str(todos[1]["URL"])).fragment == ""  # no moment known: the page's top
    assert "Owner: Søren 李" in str(todos[0]["DESCRIPTION"])
    assert str(todos[0]["URL"]) in str(todos[0]["DESCRIPTION"])


def test_uids_are_unique_and_stable_across_two_exports(cms, meeting):
    _, api = cms
    first = _todos(api.get(f"/api/v1/meetings/{meeting.id}/action-items.ics").content)
    second = _todos(api.get(f"/api/v1/meetings/{meeting.id}/action-items.ics").content)
    uids = [str(t["UID"]) for t in first]
    assert len(set(uids)) == 3
    assert uids == [str(t["UID"]) for t in second]
    assert [t.decoded("DTSTAMP") for t in first] == [t.decoded("DTSTAMP") for t in second]
    other = make_meeting(
        make_job(meeting.job.client), [("A", 0, 1, "x")], action_items=[{"text": "y"}]
    )
    other_uid = str(
        _todos(api.get(f"/api/v1/meetings/{other.id}/action-items.ics").content)[0]["UID"]
    )
    assert other_uid not in uids


def test_a_meeting_without_action_items_is_an_empty_valid_calendar(cms):
    client, api = cms
    meeting = make_meeting(make_job(client), [("A", 0, 1, "x")])
    response = api.get(f"/api/v1/meetings/{meeting.id}/action-items.ics")
    assert response.status_code == 200
    assert Calendar.from_ical(response.content)["VERSION"] == "2.0"
    assert _todos(response.content) == []


def test_the_calendar_is_for_the_owner_and_viewer_token_holders_only(meeting):
    _, other_key = new_client()
    assert (
        api_for(other_key).get(f"/api/v1/meetings/{meeting.id}/action-items.ics").status_code == 404
    )
    browser = Client()
    assert browser.get(f"/meetings/{meeting.id}/action-items.ics").status_code == 403
    token = make_viewer_token(meeting.job)
    page = browser.get(f"/meetings/{meeting.id}/?token={token}").content.decode()
    assert f"/meetings/{meeting.id}/action-items.ics?token=" in page
    response = browser.get(f"/meetings/{meeting.id}/action-items.ics?token={token}")
    assert response.status_code == 200 and len(_todos(response.content)) == 3
