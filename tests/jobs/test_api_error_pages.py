"""Every /api/ path answers SPEC's error object, with DEBUG on (make run) or off."""

from __future__ import annotations

import pytest

from tests.support.api_factories import api_for, new_client

pytestmark = pytest.mark.django_db

UNMATCHED = [
    "/api/v1/jobs/not-a-uuid/",
    "/api/v1/nothing-here/",
    "/api/v2/jobs/",
    "/api/",
    "/api/v1/meetings/00000000-0000-0000-0000-000000000000/transcript",
]


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("path", UNMATCHED)
def test_an_unmatched_api_path_answers_the_error_object(debug, path):
    _, key = new_client()
    response = api_for(key).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "not_found", "message": "No such resource.", "details": {}}
    }


def test_an_unmatched_api_path_answers_json_even_without_a_key(debug):
    response = api_for(None).get("/api/v1/jobs/not-a-uuid/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_missing_trailing_slash_still_redirects(debug):
    response = api_for(None).get("/api/v1/jobs")
    assert response.status_code == 301 and response["Location"] == "/api/v1/jobs/"


def test_pages_outside_the_api_keep_the_html_404(debug, client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
