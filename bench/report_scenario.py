"""Scenario 9: the hand-offs of a three-hour meeting, in this process.

A meeting of 1,800 turns (about 27,000 words, four speakers, one with a CJK
name, a CJK and emoji sentence every tenth turn), 40 action items and 20
decisions is stored, then its PDF report, DOCX report and calendar are made
the way the download views make them (`meetings.exports`: the queries, the
rendering, the response). Each is timed three times; the median is shown.

The baseline is the same PDF laid out by fpdf2's own `multi_cell`, which
re-measures the line at every space (the platform wraps lines itself from
the fonts' width tables): the ratio is what that choice buys.

Runs inside ``make bench`` (BENCH_ONLY=9), or alone: ``python -m
bench.report_scenario`` (a throw-away SQLite database under var/).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .report import Result, Row

if TYPE_CHECKING:
    from .harness import Harness

TURNS = 1800
SPEAKERS = {"A": "Zoë Müller", "B": "王小明", "C": "Sam Okafor", "D": ""}
REPEATS = 3


def _text(i: int) -> str:
    words = f"turn {i} so about the budget plan we should look at the numbers again".split()
    text = " ".join((words * 2)[:15]) + "."
    return text + " 我们下周再讨论这个问题 🎉" if i % 10 == 0 else text


def make_meeting() -> Any:
    from datetime import date

    from jobs.models import ApiClient, Job
    from meetings.models import ActionItem, Decision, Meeting, Segment, Speaker

    client, _ = ApiClient.objects.get_or_create(
        name="bench-reports", defaults={"key_hash": "x" * 64}
    )
    job = Job.objects.create(client=client, title="Three-hour planning", status="completed")
    meeting = Meeting.objects.create(job=job, title=job.title, duration_seconds=3 * 3600)
    speakers = {
        label: Speaker.objects.create(meeting=meeting, label=label, name=name)
        for label, name in SPEAKERS.items()
    }
    Segment.objects.bulk_create(
        Segment(
            meeting=meeting,
            speaker=speakers["ABCD"[i % 4]],
            index=i,
            start_ms=i * 6000,
            end_ms=i * 6000 + 5800,
            text=_text(i),
        )
        for i in range(TURNS)
    )
    ActionItem.objects.bulk_create(
        ActionItem(
            meeting=meeting,
            index=i,
            text=f"Follow up on item {i}",
            owner=SPEAKERS["ABCD"[i % 4]],
            due_date=date(2026, 12, 1 + i % 28),
            source_start_ms=i * 270_000,
        )
        for i in range(40)
    )
    Decision.objects.bulk_create(
        Decision(meeting=meeting, index=i, text=f"Decision {i}", source_start_ms=i * 540_000)
        for i in range(20)
    )
    return meeting


def _median_seconds(make: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        out = make()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def _multi_cell_pdf(meeting: Any) -> bytes:
    """The baseline: the same report with fpdf2's own line breaking."""
    from fpdf.enums import XPos, YPos

    from meetings.reports import pdf_report
    from meetings.reports.content import build_report
    from meetings.serializers import with_results

    def line_of_text(self: Any, text: str, height: float = 5) -> None:
        self.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    original = pdf_report._ReportPDF.line_of_text
    pdf_report._ReportPDF.line_of_text = line_of_text  # type: ignore[method-assign]
    try:
        fresh = with_results(type(meeting).objects.filter(id=meeting.id)).get()
        return pdf_report.render_pdf(build_report(fresh))
    finally:
        pdf_report._ReportPDF.line_of_text = original  # type: ignore[method-assign]


def run() -> Result:
    from jobs.tokens import results_url
    from meetings.exports import calendar_response, report_response
    from meetings.serializers import with_results

    meeting = make_meeting()
    try:

        def fetch() -> Any:
            return with_results(type(meeting).objects.filter(id=meeting.id)).get()

        pdf_s, pdf = _median_seconds(lambda: report_response(fetch(), "pdf"))
        docx_s, docx = _median_seconds(lambda: report_response(fetch(), "docx"))
        ics_s, _ = _median_seconds(
            lambda: calendar_response(fetch(), results_url(meeting.job, meeting.id) or "")
        )
        baseline_s, _ = _median_seconds(lambda: _multi_cell_pdf(meeting))
    finally:
        meeting.job.delete()
    return Result(
        9,
        f"Reports of a three-hour meeting ({TURNS} turns)",
        [
            Row("report.pdf, seconds (median of 3)", round(pdf_s, 3), round(baseline_s, 3)),
            Row("report.docx, seconds", round(docx_s, 3)),
            Row("action-items.ics (40 to-dos), seconds", round(ics_s, 4)),
            Row("report.pdf size, KB", round(len(pdf.content) / 1024, 1)),
            Row("report.docx size, KB", round(len(docx.content) / 1024, 1)),
        ],
        notes=["Baseline: the same PDF laid out with fpdf2's multi_cell."],
    )


def report_scenario(h: Harness) -> Result:
    """9. PDF, DOCX and calendar of a three-hour meeting."""
    return run()


def main() -> int:
    """Run scenario 9 alone on a throw-away SQLite database."""
    from pathlib import Path

    database = Path("var") / "bench-reports.sqlite3"
    database.parent.mkdir(exist_ok=True)
    database.unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{database.resolve()}"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meeting_intel.settings")
    os.environ.setdefault("DEBUG", "true")  # no HTTPS or metrics-token demands for a local run
    os.environ["LOG_LEVEL"] = "WARNING"
    import django
    from django.core.management import call_command

    from .report import table

    django.setup()
    call_command("migrate", verbosity=0)
    try:
        result = run()
    finally:
        database.unlink(missing_ok=True)
    scenario = {**asdict(result), "rows": [{**asdict(r), "ratio": r.ratio} for r in result.rows]}
    print(table({"scenarios": [scenario]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
