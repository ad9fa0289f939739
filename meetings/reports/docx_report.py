"""The meeting report as a Word document, made with python-docx.

A DOCX carries text, not glyphs: Word or LibreOffice picks a font for each
script when it opens the file. The East Asian font hint is set so CJK text
gets a CJK font there instead of boxes.
"""

from __future__ import annotations

import io

from docx import Document
from docx.oxml.ns import qn
from docx.shared import Pt

from meetings.reports.content import ACTION_ITEM_COLUMNS, Item, Report


def _bullets(document: Document, items: list[Item]) -> None:
    for item in items:
        text = f"{item.text} ({item.at})" if item.at else item.text
        document.add_paragraph(text, style="List Bullet")


def render_docx(report: Report) -> bytes:
    document = Document()
    normal = document.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "SimSun")

    document.core_properties.title = report.title
    document.add_heading(report.title, level=0)
    document.add_paragraph(
        f"Date: {report.date:%Y-%m-%d %H:%M} UTC · Duration: {report.duration or 'unknown'}"
    )
    if report.degraded:
        document.add_paragraph(f"Not available: {', '.join(report.degraded)}")

    document.add_heading("Speakers", level=1)
    for speaker in report.speakers:
        document.add_paragraph(
            f"{speaker.name}: {speaker.share:.0%} of talk time", style="List Bullet"
        )

    document.add_heading("Summary", level=1)
    for paragraph in (report.summary or "No summary.").split("\n\n"):
        document.add_paragraph(paragraph.strip())

    for section in report.sections:
        document.add_heading(section.title, level=1)
        _bullets(document, section.items)

    document.add_heading("Action items", level=1)
    if report.action_items:
        table = document.add_table(rows=1, cols=len(ACTION_ITEM_COLUMNS))
        table.style = "Light Grid Accent 1"
        for cell, heading in zip(table.rows[0].cells, ACTION_ITEM_COLUMNS, strict=True):
            cell.text = heading
        for item in report.action_items:
            for cell, value in zip(
                table.add_row().cells, (item.text, item.owner, item.due, item.at), strict=True
            ):
                cell.text = value
    else:
        document.add_paragraph("None.")

    document.add_heading("Decisions", level=1)
    if report.decisions:
        _bullets(document, report.decisions)
    else:
        document.add_paragraph("None.")

    document.add_heading("Transcript", level=1)
    for turn in report.transcript:
        paragraph = document.add_paragraph()
        paragraph.add_run(f"[{turn.at}] {turn.speaker}: ").bold = True
        paragraph.add_run(turn.text)

    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
