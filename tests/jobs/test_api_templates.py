"""Templates over the API, and the shaping fields of a submission: each client sees only
its own templates, and every bad input gets SPEC's error object and stores nothing."""

from __future__ import annotations

import json

import pytest

from jobs.models import AnalysisTemplate, IdempotencyKey, Job
from tests.support.api_factories import api_for, make_job, new_client

pytestmark = pytest.mark.django_db

TEMPLATES = "/api/v1/templates/"
JOBS = "/api/v1/jobs/"
AUDIO_URL = "https://recordings.example.org/m/1.mp3"
RISKS = {"key": "risks", "title": "Risks", "instructions": "Only technical risks."}


@pytest.fixture
def cms():
    client, key = new_client()
    return client, api_for(key)


@pytest.fixture
def api(cms):
    return cms[1]


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    assert body["error"]["code"] == code, body
    return body["error"]


def create(api, **fields):
    body = {"name": "Board meeting", "instructions": "Focus on money.", "sections": [RISKS]}
    response = api.post(TEMPLATES, {**body, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_client_creates_reads_changes_lists_and_deletes_its_templates(api):
    made = create(api, is_default=True)
    assert made["name"] == "Board meeting" and made["is_default"] is True
    assert made["sections"] == [RISKS]
    assert api.get(f"{TEMPLATES}{made['id']}/").json() == made

    changed = api.patch(
        f"{TEMPLATES}{made['id']}/", {"instructions": "Focus on hiring."}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["instructions"] == "Focus on hiring."
    assert changed.json()["sections"] == [RISKS]

    other = create(api, name="Stand-up", sections=[], is_default=True)
    listed = api.get(TEMPLATES).json()["results"]
    assert [t["name"] for t in listed] == ["Board meeting", "Stand-up"]
    assert [t["is_default"] for t in listed] == [False, True]  # one default per client

    assert api.delete(f"{TEMPLATES}{other['id']}/").status_code == 204
    assert [t["name"] for t in api.get(TEMPLATES).json()["results"]] == ["Board meeting"]


def test_another_clients_template_answers_404_everywhere(api):
    theirs = create(api_for(new_client()[1]))
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{TEMPLATES}{theirs['id']}/", {}, format="json")
        refused(response, 404, "not_found")
    assert api.get(TEMPLATES).json()["results"] == []
    assert AnalysisTemplate.objects.filter(id=theirs["id"]).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"instructions": "x" * 4001},
        {"instructions": "bell\x07"},
        {"sections": "not a list"},
        {"sections": [{"key": "Risks", "title": "Risks"}]},
        {"sections": [{"key": "risks", "title": ""}]},
        {"sections": [{**RISKS, "prompt": "extra"}]},
        {"sections": [{**RISKS, "instructions": "x" * 1001}]},
        {"sections": [{"key": f"s{i}", "title": f"S{i}"} for i in range(11)]},
    ],
    ids=[
        "blank-name",
        "long-name",
        "long-instructions",
        "control-character",
        "sections-not-a-list",
        "bad-key",
        "blank-title",
        "unknown-field",
        "long-section-instructions",
        "eleven-sections",
    ],
)
def test_a_bad_template_is_refused_with_400_and_not_stored(api, fields):
    body = {"name": "Board meeting", "sections": [RISKS], **fields}
    refused(api.post(TEMPLATES, body, format="json"), 400, "invalid_request")
    assert AnalysisTemplate.objects.count() == 0


def test_a_second_template_with_the_same_name_is_refused(api):
    create(api)
    error = refused(
        api.post(TEMPLATES, {"name": "Board meeting"}, format="json"), 409, "template_name_taken"
    )
    assert "name" in error["details"]
    assert AnalysisTemplate.objects.count() == 1


def test_a_job_gets_the_named_template_or_the_default_or_the_built_in_one(cms):
    client, api = cms
    board = create(api)
    standup = create(api, name="Stand-up", sections=[], is_default=True)

    by_name = api.post(JOBS, {"audio_url": AUDIO_URL, "template": "Board meeting"}, format="json")
    by_id = api.post(JOBS, {"audio_url": AUDIO_URL, "template": board["id"]}, format="json")
    default = api.post(JOBS, {"audio_url": AUDIO_URL}, format="json")
    assert by_name.json()["template"] == by_id.json()["template"] == "Board meeting"
    assert default.json()["template"] == "Stand-up"
    job = Job.objects.get(id=by_id.json()["id"])
    assert job.analysis_template == {
        "name": "Board meeting",
        "instructions": "Focus on money.",
        "sections": [RISKS],
    }

    api.delete(f"{TEMPLATES}{standup['id']}/")
    built_in = api.post(JOBS, {"audio_url": AUDIO_URL}, format="json")
    assert built_in.json()["template"] is None
    # The job analysed with the deleted default keeps its snapshot.
    assert Job.objects.get(id=default.json()["id"]).analysis_template["name"] == "Stand-up"


def test_a_job_carries_its_participants_vocabulary_and_languages(api):
    response = api.post(
        JOBS,
        {
            "audio_url": AUDIO_URL,
            "instructions": "Mention the budget.",
            "participants": [{"name": "Alice Smith", "role": "chair"}, {"name": "Bob Jones"}],
            "vocabulary": ["Kubernetes", "OKR", "kubernetes"],
            "summary_language": "de",
            "webhook_payload": "thin",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["participants"] == [
        {"name": "Alice Smith", "role": "chair"},
        {"name": "Bob Jones", "role": ""},
    ]
    assert body["vocabulary"] == ["Kubernetes", "OKR"]  # duplicates dropped, first spelling kept
    assert body["summary_language"] == "de" and body["webhook_payload"] == "thin"
    assert body["instructions"] == "Mention the budget." and body["template"] is None


def test_multipart_forms_send_the_lists_as_json_strings(api):
    response = api.post(
        JOBS,
        {
            "audio_url": AUDIO_URL,
            "participants": json.dumps([{"name": "Alice"}]),
            "vocabulary": json.dumps(["Kubernetes"]),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["participants"] == [{"name": "Alice", "role": ""}]
    assert response.json()["vocabulary"] == ["Kubernetes"]


@pytest.fixture
def nothing_stored():
    yield
    assert Job.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


def test_an_unknown_template_is_a_422_template_not_found(api, nothing_stored):
    error = refused(
        api.post(JOBS, {"audio_url": AUDIO_URL, "template": "Nope"}, format="json"),
        422,
        "template_not_found",
    )
    assert "template" in error["details"]


def test_another_clients_template_is_not_found_by_name_or_id(api, nothing_stored):
    theirs = create(api_for(new_client()[1]))
    for ref in (theirs["id"], theirs["name"]):
        response = api.post(
            JOBS,
            {"audio_url": AUDIO_URL, "template": ref},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k-{ref}",
        )
        refused(response, 422, "template_not_found")


@pytest.mark.parametrize(
    "fields",
    [
        {"instructions": "x" * 4001},
        {"participants": [{"name": f"P{i}"} for i in range(51)]},
        {"participants": "Alice, Bob"},
        {"participants": ["Alice"]},
        {"participants": [{"role": "chair"}]},
        {"participants": [{"name": "Alice", "email": "a@example.org"}]},
        {"participants": [{"name": ""}]},
        {"participants": [{"name": 7}]},
        {"vocabulary": [f"term{i}" for i in range(201)]},
        {"vocabulary": ["x" * 61]},
        {"vocabulary": "Kubernetes"},
        {"vocabulary": [3]},
        {"summary_language": "not a language"},
        {"webhook_payload": "medium"},
    ],
    ids=[
        "long-instructions",
        "51-participants",
        "participants-string",
        "participant-not-object",
        "participant-without-name",
        "participant-unknown-field",
        "participant-blank-name",
        "participant-name-not-string",
        "201-terms",
        "long-term",
        "vocabulary-string",
        "term-not-string",
        "summary-language",
        "webhook-payload",
    ],
)
def test_bad_shaping_fields_are_refused_with_400(api, nothing_stored, fields):
    error = refused(
        api.post(JOBS, {"audio_url": AUDIO_URL, **fields}, format="json"), 400, "invalid_request"
    )
    assert set(fields) <= set(error["details"])


def test_reprocess_with_another_template_changes_the_jobs_template(cms):
    client, api = cms
    create(api)
    job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at="2026-01-01T00:00:00Z")
    response = api.post(
        f"{JOBS}{job.id}/reprocess/",
        {"from": "analysis", "template": "Board meeting"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["template"] == "Board meeting"
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.analysis_template["sections"] == [RISKS]


def test_reprocess_with_an_unknown_template_changes_nothing(cms):
    client, api = cms
    job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at="2026-01-01T00:00:00Z")
    response = api.post(
        f"{JOBS}{job.id}/reprocess/", {"from": "analysis", "template": "Nope"}, format="json"
    )
    refused(response, 422, "template_not_found")
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED and job.analysis_template == {}


def test_the_schema_documents_the_new_fields(client):
    schema = client.get("/api/schema/?format=json").json()
    create_fields = schema["components"]["schemas"]["JobUrlCreateRequest"]["properties"]
    assert {
        "template",
        "instructions",
        "participants",
        "vocabulary",
        "summary_language",
        "webhook_payload",
    } <= set(create_fields)
    assert create_fields["participants"]["maxItems"] == 50
    assert create_fields["vocabulary"]["maxItems"] == 200
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert {"template", "participants", "vocabulary", "summary_language"} <= set(job)
    meeting = schema["components"]["schemas"]["Meeting"]["properties"]
    assert {"sections", "detected_language"} <= set(meeting)
    assert {"/api/v1/templates/", "/api/v1/templates/{id}/"} <= set(schema["paths"])
    template = schema["components"]["schemas"]["Template"]["properties"]
    assert {"id", "name", "instructions", "sections", "is_default"} <= set(template)


def test_the_same_idempotency_key_with_another_template_is_a_different_request(api):
    create(api)
    first = api.post(JOBS, {"audio_url": AUDIO_URL}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201
    again = api.post(
        JOBS,
        {"audio_url": AUDIO_URL, "template": "Board meeting"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    refused(again, 422, "idempotency_key_reused")
    assert Job.objects.count() == 1


def test_repeats_and_line_breaks_are_tidied_not_refused(api):
    """What the schema cannot refuse is tidied: a name on one line, the first of repeats."""
    body = {
        "name": "Board\nmeeting",
        "sections": [RISKS, {**RISKS, "title": "Again"}],
    }
    response = api.post(TEMPLATES, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Board meeting" and len(created["sections"]) == 1
    job = api.post(
        JOBS,
        {
            "audio_url": AUDIO_URL,
            "participants": [{"name": "Alice"}, {"name": "alice", "role": "chair"}],
            "vocabulary": ["two\nlines"],
        },
        format="json",
    )
    assert job.status_code == 201, job.content
    assert job.json()["participants"] == [{"name": "Alice", "role": ""}]
    assert job.json()["vocabulary"] == ["two lines"]
