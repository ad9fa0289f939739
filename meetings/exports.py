"""Exports for the API and the results page: the transcript in txt, srt, vtt
and md, the report in docx and pdf, and the action items as iCalendar.

Speaker names are read from the meeting's speakers at export time, so a
rename shows in every export; an unnamed speaker is "Speaker A".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.http import Http404, HttpResponse
from django.utils.http import content_disposition_header

from meeting_intel.lib.media import safe_filename
from meetings.action_calendar import render_ics
from meetings.models import Meeting, Segment
from meetings.reports.content import Report, build_report
from meetings.reports.docx_report import render_docx
from meetings.reports.pdf_report import render_pdf
from meetings.serializers import ordered_sections


def _clock(ms: int, separator: str) -> str:
    """1234567 ms → "00:20:34,567" (SRT) or "00:20:34.567" (VTT)."""
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _short_clock(ms: int) -> str:
    return _clock(ms, ".")[:8]


def _one_line(text: str) -> str:
    # A blank line ends an SRT/VTT cue; keep each segment's text on one line.
    return " ".join(text.split())


def _span(segment: Segment) -> tuple[int, int]:
    return segment.start_ms, max(segment.end_ms, segment.start_ms)


def _sections_txt(meeting: Meeting) -> list[str]:
    """The template's sections after the transcript (nothing when the meeting has none)."""
    lines: list[str] = []
    for section in ordered_sections(meeting).values():
        lines += ["", _one_line(section["title"]), ""]
        for item in section["items"]:
            at = item["source_start_ms"]
            stamp = f"[{_short_clock(at)}] " if at is not None else ""
            lines.append(f"- {stamp}{_one_line(item['text'])}")
    return lines


def render_txt(meeting: Meeting, segments: list[Segment]) -> str:
    lines = [meeting.title or "Transcript", ""]
    for seg in segments:
        lines.append(
            f"[{_short_clock(seg.start_ms)}] {seg.speaker.display_name}: {_one_line(seg.text)}"
        )
    lines += _sections_txt(meeting)
    return "\n".join(lines) + "\n"


def render_srt(meeting: Meeting, segments: list[Segment]) -> str:
    cues = []
    for number, seg in enumerate(segments, start=1):
        start, end = _span(seg)
        cues.append(
            f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n"
            f"{seg.speaker.display_name}: {_one_line(seg.text)}\n"
        )
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("-->", "--&gt;")


def render_vtt(meeting: Meeting, segments: list[Segment]) -> str:
    parts = ["WEBVTT\n"]
    for number, seg in enumerate(segments, start=1):
        start, end = _span(seg)
        voice = _vtt_escape(seg.speaker.display_name)
        parts.append(
            f"{number}\n{_clock(start, '.')} --> {_clock(end, '.')}\n"
            f"<v {voice}>{_vtt_escape(_one_line(seg.text))}</v>\n"
        )
    return "\n".join(parts)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def render_md(meeting: Meeting, segments: list[Segment]) -> str:
    lines = [f"# {_md_escape(meeting.title or 'Transcript')}", ""]
    for seg in segments:
        lines.append(
            f"**{_md_escape(seg.speaker.display_name)}** [{_short_clock(seg.start_ms)}]: "
            f"{_md_escape(_one_line(seg.text))}"
        )
        lines.append("")
    for section in ordered_sections(meeting).values():
        lines += [f"## {_md_escape(_one_line(section['title']))}", ""]
        for item in section["items"]:
            at = item["source_start_ms"]
            stamp = f" [{_short_clock(at)}]" if at is not None else ""
            lines.append(f"- {_md_escape(_one_line(item['text']))}{stamp}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    render: Callable[[Meeting, list[Segment]], str]


FORMATS: dict[str, ExportFormat] = {
    "txt": ExportFormat("text/plain", render_txt),
    "srt": ExportFormat("application/x-subrip", render_srt),
    "vtt": ExportFormat("text/vtt", render_vtt),
    "md": ExportFormat("text/markdown", render_md),
}


def export_response(meeting: Meeting, fmt: str) -> HttpResponse:
    """The meeting's transcript as a download in `fmt`; Http404 for an unknown format.

    `meeting` should come from ``with_results`` so segments and speakers are prefetched.
    """
    export = FORMATS.get(fmt)
    if export is None:
        raise Http404(f"Unknown transcript format {fmt!r}.")
    segments = list(meeting.segments.all())
    response = HttpResponse(
        export.render(meeting, segments).encode("utf-8"),
        content_type=f"{export.content_type}; charset=utf-8",
    )
    filename = f"{safe_filename(meeting.title, default='transcript')}.{fmt}"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@dataclass(frozen=True)
class ReportFormat:
    content_type: str
    render: Callable[[Report], bytes]


REPORTS: dict[str, ReportFormat] = {
    "docx": ReportFormat(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document", render_docx
    ),
    "pdf": ReportFormat("application/pdf", render_pdf),
}


def _download(
    body: bytes, content_type: str, meeting: Meeting, default: str, ext: str
) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    filename = f"{safe_filename(meeting.title, default=default)}.{ext}"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def report_response(meeting: Meeting, fmt: str) -> HttpResponse:
    """The meeting's report as a download in `fmt` ("docx" or "pdf"); Http404 for another.

    `meeting` should come from ``with_results``. A three-hour meeting (about
    1,800 turns) takes about 0.6–1.1 s as DOCX and 1.3–3.1 s as PDF on a
    shared 2-core machine (`make bench` scenario 9, README "Hand-offs and
    cost"), well inside a request, so it is not streamed.
    """
    report = REPORTS.get(fmt)
    if report is None:
        raise Http404(f"Unknown report format {fmt!r}.")
    return _download(
        report.render(build_report(meeting)), report.content_type, meeting, "report", fmt
    )


def moment_link(results_page: str, start_ms: int | None) -> str:
    """The results page at `start_ms` (whole seconds, `#t=`), or at its top for None."""
    return results_page if start_ms is None else f"{results_page}#t={max(0, int(start_ms)) // 1000}"


def calendar_response(meeting: Meeting, results_page: str) -> HttpResponse:
    """The meeting's action items as an `.ics` download of VTODOs linking to `results_page`."""
    body = render_ics(meeting, lambda ms: moment_link(results_page, ms))
    return _download(body, "text/calendar; charset=utf-8", meeting, "action-items", "ics")
