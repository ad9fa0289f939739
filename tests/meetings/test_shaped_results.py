"""A template's sections show wherever the meeting does: the results page (with
moments to play), the API, the txt and md exports and admin; staff manage every
client's templates in admin under the API's limits."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from jobs.models import AnalysisTemplate, Job
from jobs.tokens import make_viewer_token
from tests.support.api_factories import api_for, make_job, make_meeting, new_client

pytestmark = pytest.mark.django_db

TURNS = [("A", 0, 6000, "The vendor may be late."), ("B", 7000, 9000, "Then we <slip> a week.")]
SECTIONS = {
    "risks": {
        "title": "Risks & <issues>",
        "items": [
            {"text": "Vendor delay <b>", "source_start_ms": 7500},
            {"text": "Unplaced risk", "source_start_ms": None},
        ],
    },
    "budget": {"title": "Budget", "items": []},
}


@pytest.fixture
def cms():
    return new_client()


@pytest.fixture
def meeting(cms):
    client, _ = cms
    job = make_job(
        client,
        title="Board",
        status=Job.Status.COMPLETED,
        stage=Job.Stage.DONE,
        analysis_template={
            "name": "Board",
            "instructions": "",
            "sections": [
                {"key": "risks", "title": "Risks & <issues>", "instructions": ""},
                {"key": "budget", "title": "Budget", "instructions": ""},
                {"key": "hiring", "title": "Hiring", "instructions": ""},
            ],
        },
    )
    meeting = make_meeting(job, TURNS)
    meeting.sections = SECTIONS
    meeting.section_order = ["risks", "budget", "hiring"]
    meeting.degraded = ["section:hiring"]
    meeting.save()
    return meeting


def test_the_results_page_shows_each_section_with_its_moments(client, meeting):
    html = client.get(
        f"/meetings/{meeting.id}/", {"token": make_viewer_token(meeting.job)}
    ).content.decode()
    assert html.index('id="section-risks"') < html.index('id="section-budget"')
    assert "Risks &amp; &lt;issues&gt;" in html and "Vendor delay &lt;b&gt;" in html
    assert 'href="#seg-1" data-seek="7500"' in html
    assert "Hiring unavailable" in html  # the degraded section by its title
    assert "Part of the analysis is missing:</strong> Hiring." in html


def test_the_api_gives_the_sections_in_the_templates_order(cms, meeting):
    _, key = cms
    body = api_for(key).get(f"/api/v1/meetings/{meeting.id}/").json()
    assert list(body["sections"]) == ["risks", "budget"]
    assert body["sections"]["risks"] == SECTIONS["risks"]
    assert body["degraded"] == ["section:hiring"]


def test_the_txt_and_md_exports_end_with_the_sections(cms, meeting):
    _, key = cms
    api = api_for(key)
    txt = api.get(f"/api/v1/meetings/{meeting.id}/transcript.txt").content.decode()
    assert txt.endswith(
        "Risks & <issues>\n\n- [00:00:07] Vendor delay <b>\n- Unplaced risk\n\nBudget\n\n"
    )
    md = api.get(f"/api/v1/meetings/{meeting.id}/transcript.md").content.decode()
    assert "## Risks & \\<issues\\>" in md and "- Vendor delay \\<b\\> [00:00:07]" in md


def test_exports_of_a_meeting_without_sections_are_unchanged(cms):
    client, key = cms
    plain = make_meeting(make_job(client, title="Plain"), TURNS)
    txt = api_for(key).get(f"/api/v1/meetings/{plain.id}/transcript.txt").content.decode()
    assert (
        txt == "Plain\n\n[00:00:00] Speaker A: The vendor may be late.\n"
        "[00:00:07] Speaker B: Then we <slip> a week.\n"
    )


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.org", "pw")
    client.force_login(user)
    return client


def test_admin_shows_a_meetings_sections(staff, meeting):
    html = staff.get(f"/admin/meetings/meeting/{meeting.id}/change/").content.decode()
    assert "Vendor delay &lt;b&gt;" in html and "Risks &amp; &lt;issues&gt;" in html


def test_staff_create_a_template_for_any_client_and_one_default_remains(staff, cms):
    client, _ = cms
    AnalysisTemplate.objects.create(client=client, name="Old", is_default=True)
    response = staff.post(
        "/admin/jobs/analysistemplate/add/",
        {
            "client": client.id,
            "name": "Board",
            "instructions": "Focus on money.",
            "sections": '[{"key": "risks", "title": "Risks", "instructions": ""}]',
            "is_default": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    made = AnalysisTemplate.objects.get(client=client, name="Board")
    assert made.sections == [{"key": "risks", "title": "Risks", "instructions": ""}]
    assert list(
        AnalysisTemplate.objects.filter(client=client, is_default=True).values_list(
            "name", flat=True
        )
    ) == ["Board"]


@pytest.mark.parametrize(
    "sections",
    [
        '[{"key": "Bad Key", "title": "x"}]',
        '"risks"',
        "[" + ",".join([f'{{"key": "s{i}", "title": "S"}}' for i in range(11)]) + "]",
    ],
)
def test_admin_refuses_a_template_outside_the_limits(staff, cms, sections):
    client, _ = cms
    response = staff.post(
        "/admin/jobs/analysistemplate/add/",
        {"client": client.id, "name": "Board", "instructions": "", "sections": sections},
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not AnalysisTemplate.objects.exists()


def test_admin_shows_what_a_job_was_shaped_with(staff, cms):
    client, _ = cms
    job = make_job(
        client,
        participants=[{"name": "Alice Smith", "role": "chair"}],
        vocabulary=["Kubernetes"],
        summary_language="de",
        analysis_template={"name": "Board", "instructions": "", "sections": []},
    )
    html = staff.get(f"/admin/jobs/job/{job.id}/change/").content.decode()
    assert "Alice Smith" in html and "Kubernetes" in html and "Board" in html


def test_staff_reprocess_the_analysis_of_a_clients_jobs_with_another_template(staff, cms):
    client, _ = cms
    board = AnalysisTemplate.objects.create(
        client=client, name="Board", sections=[{"key": "risks", "title": "Risks"}]
    )
    AnalysisTemplate.objects.create(client=new_client()[0], name="Theirs")
    job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at="2026-01-01T00:00:00Z")
    chosen = {"action": "reprocess_with_template", "_selected_action": [str(job.id)]}
    asked = staff.post("/admin/jobs/job/", chosen)
    html = asked.content.decode()
    assert asked.status_code == 200 and "Board" in html and "Theirs" not in html

    done = staff.post("/admin/jobs/job/", {**chosen, "apply": "1", "template": str(board.id)})
    assert done.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.template_name == "Board"
    assert job.analysis_template["sections"] == [{"key": "risks", "title": "Risks"}]
    assert job.transcript_saved_at is not None  # the transcript is kept


def test_staff_cannot_give_a_job_another_clients_template(staff, cms):
    client, _ = cms
    theirs = AnalysisTemplate.objects.create(client=new_client()[0], name="Theirs")
    job = make_job(client, status=Job.Status.COMPLETED, transcript_saved_at="2026-01-01T00:00:00Z")
    staff.post(
        "/admin/jobs/job/",
        {
            "action": "reprocess_with_template",
            "_selected_action": [str(job.id)],
            "apply": "1",
            "template": str(theirs.id),
        },
    )
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED and job.analysis_template == {}
