"""Meeting reports in DOCX and PDF: parsed back, with non-Latin text, behind the usual access."""

from __future__ import annotations

import datetime as dt
import io
import time

import docx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from jobs.tokens import make_viewer_token
from meetings.reports.content import ACTION_ITEM_COLUMNS
from meetings.reports.pdf_report import FONTS
from tests.support.api_factories import (
    api_for,
    client_with_api,
    make_job,
    make_meeting,
    new_client,
)

pytestmark = pytest.mark.django_db

CJK_NAME = "王小明"
TURNS = [
    ("A", 0, 30_000, "Bonjour à tous, on commence."),
    ("B", 30_000, 40_000, "我们下周发布。 Let's ship 🚀"),
    ("A", 40_000, 3_725_000, "Très bien."),
]


@pytest.fixture
def cms():
    return client_with_api()


@pytest.fixture
def meeting(cms):
    client, _ = cms
    job = make_job(client, title="Revue trimestrielle — 季度回顾")
    meeting = make_meeting(
        job,
        TURNS,
        names={"A": "Zoë Müller", "B": CJK_NAME},
        action_items=[
            {
                "text": "Envoyer le compte rendu",
                "owner": CJK_NAME,
                "due_date": dt.date(2026, 12, 11),
                "source_start_ms": 30_000,
            },
            {"text": "Book the room", "owner": "", "source_start_ms": None},
        ],
        decisions=["Ship on Monday"],
    )
    meeting.summary = "Le résumé: on livre lundi. 我们下周发布。"
    meeting.save(update_fields=["summary"])
    return meeting


def _docx(body: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(body))


def test_the_docx_report_has_every_part_with_a_table_of_action_items(cms, meeting):
    _, api = cms
    response = api.get(f"/api/v1/meetings/{meeting.id}/report.docx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].startswith("attachment")
    document = _docx(response.content)
    headings = [
        p.text for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))
    ]
    assert headings == [
        "Revue trimestrielle — 季度回顾",
        "Speakers",
        "Summary",
        "Action items",
        "Decisions",
        "Transcript",
    ]
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Duration: 0:01:00" in text
    # Talk share: A spoke 30 s + 3,685 s of 3,725 s.
    assert "Zoë Müller: 100% of talk time" in text and f"{CJK_NAME}: 0% of talk time" in text
    assert "Le résumé: on livre lundi. 我们下周发布。" in text
    assert "Ship on Monday (0:00:00)" in text
    assert f"[0:00:30] {CJK_NAME}: 我们下周发布。 Let's ship 🚀" in text

    (table,) = document.tables
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows == [
        list(ACTION_ITEM_COLUMNS),
        ["Envoyer le compte rendu", CJK_NAME, "2026-12-11", "0:00:30"],
        ["Book the room", "", "", ""],
    ]


def test_the_pdf_report_extracts_with_accents_cjk_and_emoji_drawn_from_embedded_fonts(cms, meeting):
    _, api = cms
    response = api.get(f"/api/v1/meetings/{meeting.id}/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "Revue trimestrielle — 季度回顾",
        "Zoë Müller",
        CJK_NAME,
        "Action item Owner Due Time",
        "Envoyer le compte rendu 王小明 2026-12-11 0:00:30",
        "我们下周发布。 Let's ship 🚀",
        "Ship on Monday",
        "Transcript",
    ):
        assert expected in text, expected

    embedded = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
        if "/BaseFont" in font.get_object()
    }
    assert any("DroidSansFallback" in name for name in embedded), embedded
    assert any("NotoEmoji" in name for name in embedded), embedded
    # The shipped fallback has real glyphs (not .notdef boxes) for every character used.
    cjk_cmap = TTFont(FONTS / "DroidSansFallbackFull.ttf").getBestCmap()
    emoji_cmap = TTFont(FONTS / "NotoEmoji-Regular.ttf").getBestCmap()
    assert all(ord(ch) in cjk_cmap for ch in CJK_NAME + "季度回顾我们下周发布。")
    assert ord("🚀") in emoji_cmap


def test_template_sections_are_in_both_reports_in_the_templates_order(cms, meeting):
    _, api = cms
    meeting.sections = {
        "risks": {
            "title": "Risques",
            "items": [{"text": "Le fournisseur est en retard", "source_start_ms": 65_000}],
        },
        "broken": "not a section",
        "next": {"title": "Next steps", "items": [{"text": "Relancer", "source_start_ms": None}]},
        "extra": {"title": "Extra", "items": []},
    }
    meeting.section_order = ["next", "risks", "gone"]
    meeting.save(update_fields=["sections", "section_order"])

    document = _docx(api.get(f"/api/v1/meetings/{meeting.id}/report.docx").content)
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[1:6] == ["Summary", "Next steps", "Risques", "Extra", "Action items"]
    assert "Le fournisseur est en retard (0:01:05)" in [p.text for p in document.paragraphs]

    reader = PdfReader(io.BytesIO(api.get(f"/api/v1/meetings/{meeting.id}/report.pdf").content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert text.index("Next steps") < text.index("Risques") < text.index("Action items")
    assert "• Le fournisseur est en retard [0:01:05]" in text


def test_another_clients_meeting_report_is_not_found(meeting):
    _, other_key = new_client()
    for fmt in ("docx", "pdf"):
        assert (
            api_for(other_key).get(f"/api/v1/meetings/{meeting.id}/report.{fmt}").status_code == 404
        )
    _, api_key = new_client()
    response = api_for(api_key).get(f"/api/v1/meetings/{meeting.id}/report.odt")
    assert response.status_code == 404


def test_the_results_page_offers_reports_to_viewer_token_holders_only(meeting):
    browser = Client()
    token = make_viewer_token(meeting.job)
    page = browser.get(f"/meetings/{meeting.id}/?token={token}")
    assert page.status_code == 200
    html = page.content.decode()
    for fmt in ("pdf", "docx"):
        assert f"/meetings/{meeting.id}/report.{fmt}?token=" in html
        assert browser.get(f"/meetings/{meeting.id}/report.{fmt}").status_code == 403
        response = browser.get(f"/meetings/{meeting.id}/report.{fmt}?token={token}")
        assert response.status_code == 200 and response["Content-Disposition"].startswith(
            "attachment"
        )
    assert browser.get(f"/meetings/{meeting.id}/report.pdf?token=forged").status_code == 403
    staff = User.objects.create_user("reporter", password="pw", is_staff=True)
    browser.force_login(staff)
    assert browser.get(f"/meetings/{meeting.id}/report.docx").status_code == 200


def test_a_three_hour_meeting_reports_every_turn(cms):
    client, api = cms
    job = make_job(client, title="Three hours")
    turns = [
        ("ABCD"[i % 4], i * 6000, i * 6000 + 5900, f"turn {i} about the budget plan " * 3)
        for i in range(1800)
    ]
    meeting = make_meeting(job, turns)
    for fmt in ("docx", "pdf"):
        started = time.perf_counter()
        response = api.get(f"/api/v1/meetings/{meeting.id}/report.{fmt}")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        print(f"three-hour report.{fmt}: {elapsed:.2f} s, {len(response.content)} bytes")
        if fmt == "docx":
            paragraphs = [p.text for p in _docx(response.content).paragraphs]
            assert sum(p.startswith("[") for p in paragraphs) == 1800
        else:
            reader = PdfReader(io.BytesIO(response.content))
            last = reader.pages[-1].extract_text()
            assert "turn 1799 about" in last and len(reader.pages) > 30


def test_admin_offers_the_downloads_on_the_meeting_page(meeting, client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get(f"/admin/meetings/meeting/{meeting.id}/change/").content.decode()
    for url in (
        f"/meetings/{meeting.id}/report.pdf",
        f"/meetings/{meeting.id}/report.docx",
        f"/meetings/{meeting.id}/action-items.ics",
    ):
        assert f'href="{url}"' in page
        assert client.get(url).status_code == 200
