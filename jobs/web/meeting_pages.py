"""The results page `/meetings/{id}/`, the recording it plays, and its downloads.

Each opens for staff or a holder of the job's viewer token (``viewable_job``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import get_language_info
from django.views.decorators.http import require_safe

from jobs.tokens import results_url
from jobs.web.access import is_staff, viewable_job
from meeting_intel.http.csp import with_csp
from meeting_intel.lib.media import read_head, sniff_container
from meeting_intel.lib.ranges import ranged_file_response
from meetings.exports import calendar_response, export_response, report_response
from meetings.models import Meeting, Segment, Speaker
from meetings.serializers import ordered_sections, with_results

EXPORT_FORMATS = (("txt", "Text"), ("srt", "SubRip"), ("vtt", "WebVTT"), ("md", "Markdown"))
REPORT_FORMATS = (("pdf", "PDF"), ("docx", "Word"))
DEGRADED_LABELS = {
    "speaker_names": "Speaker names",
    "summary": "Summary",
    "action_items": "Action items",
    "decisions": "Decisions",
}
AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "mpeg": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "webm": "audio/webm",
    "mp4": "audio/mp4",
    "amr": "audio/amr",
    "aiff": "audio/aiff",
    "wma": "audio/x-ms-wma",
}


SPEAKER_COLOURS = 6


@dataclass
class SpeakerShare:
    speaker: Speaker
    colour: int
    talk_ms: int
    percent: int


@dataclass
class Turn:
    """Consecutive segments by one speaker, shown under one name."""

    speaker: Speaker
    colour: int
    segments: list[Segment] = field(default_factory=list)


def colours(speakers: list[Speaker]) -> dict[int, int]:
    """A stable colour number per speaker (by label order), shared by the list and the transcript."""
    return {
        s.id: i % SPEAKER_COLOURS for i, s in enumerate(sorted(speakers, key=lambda s: s.label))
    }


def talk_shares(speakers: list[Speaker], segments: list[Segment]) -> list[SpeakerShare]:
    """Each speaker's talk time and share of the total, the most talkative first."""
    talk: dict[int, int] = defaultdict(int)
    for seg in segments:
        talk[seg.speaker_id] += max(0, seg.end_ms - seg.start_ms)
    total = sum(talk.values())
    colour = colours(speakers)
    shares = [
        SpeakerShare(s, colour[s.id], talk[s.id], round(100 * talk[s.id] / total) if total else 0)
        for s in speakers
    ]
    return sorted(shares, key=lambda share: -share.talk_ms)


def speaker_turns(speakers: list[Speaker], segments: list[Segment]) -> list[Turn]:
    colour = colours(speakers)
    turns: list[Turn] = []
    for seg in segments:
        if not turns or turns[-1].speaker.id != seg.speaker_id:
            turns.append(Turn(seg.speaker, colour.get(seg.speaker_id, 0)))
        turns[-1].segments.append(seg)
    return turns


def source_segment(segments: list[Segment], starts: list[int], ms: int | None) -> int | None:
    """The `index` of the segment spoken at `ms` (or the last one before it)."""
    if ms is None or not segments:
        return None
    return segments[max(0, bisect_right(starts, ms) - 1)].index


def language_name(code: str) -> str:
    for candidate in (code, code.split("_")[0].split("-")[0]):
        try:
            return str(get_language_info(candidate)["name"])
        except KeyError:
            continue
    return code


def audio_path(meeting: Meeting) -> Path | None:
    audio = meeting.job.audio
    if not audio:
        return None
    path = Path(audio.path)
    return path if path.is_file() else None


@with_csp
def meeting_page(request: HttpRequest, meeting_id: object) -> HttpResponse:
    meeting = get_object_or_404(with_results(Meeting.objects.select_related("job")), id=meeting_id)
    job, token = viewable_job(request, meeting.job_id)
    segments = list(meeting.segments.all())
    speakers = list(meeting.speakers.all())
    starts = [seg.start_ms for seg in segments]
    sources = {
        name: [(item, source_segment(segments, starts, item.source_start_ms)) for item in items]
        for name, items in (
            ("action_items", meeting.action_items.all()),
            ("decisions", meeting.decisions.all()),
        )
    }
    titles = {s["key"]: s["title"] for s in (job.analysis_template or {}).get("sections", [])}
    sections = [
        {
            "key": key,
            "title": section["title"],
            "items": [
                (item, source_segment(segments, starts, item["source_start_ms"]))
                for item in section["items"]
            ],
        }
        for key, section in ordered_sections(meeting).items()
    ]
    sections += [
        {
            "key": step.removeprefix("section:"),
            "degraded": True,
            "items": [],
            "title": titles.get(step.removeprefix("section:"), step.removeprefix("section:")),
        }
        for step in meeting.degraded
        if step.startswith("section:")
    ]
    return render(
        request,
        "meetings/meeting.html",
        {
            "meeting": meeting,
            "job": job,
            "token": token,
            "segments": segments,
            "turns": speaker_turns(speakers, segments),
            "shares": talk_shares(speakers, segments),
            "action_items": sources["action_items"],
            "decisions": sources["decisions"],
            "sections": sections,
            "degraded": [
                DEGRADED_LABELS.get(step) or titles.get(step.removeprefix("section:"), step)
                for step in meeting.degraded
            ],
            "language": language_name(meeting.language) if meeting.language else "",
            "has_audio": audio_path(meeting) is not None,
            "exports": [
                (
                    fmt,
                    label,
                    reverse("meeting-transcript", args=[meeting.id, fmt])
                    + f"?token={quote(token)}",
                )
                for fmt, label in EXPORT_FORMATS
            ],
            "reports": [
                (
                    fmt,
                    label,
                    reverse("meeting-report", args=[meeting.id, fmt]) + f"?token={quote(token)}",
                )
                for fmt, label in REPORT_FORMATS
            ],
            "calendar_url": reverse("meeting-action-items", args=[meeting.id])
            + f"?token={quote(token)}",
            "is_staff": is_staff(request.user),
            "can_reprocess": is_staff(request.user) and request.user.has_perm("jobs.reprocess_job"),
        },
    )


@require_safe
def meeting_audio(request: HttpRequest, meeting_id: object) -> HttpResponse:
    """The meeting's recording, for staff and viewer-token holders only, with Range support.

    The type comes from the file's content, never its name, so an upload can
    never be served as a page.
    """
    meeting = get_object_or_404(Meeting.objects.select_related("job"), id=meeting_id)
    viewable_job(request, meeting.job_id)
    path = audio_path(meeting)
    if path is None:
        raise Http404("This meeting has no recording on the server.")
    with path.open("rb") as handle:
        container = sniff_container(read_head(handle))
    content_type = AUDIO_TYPES.get(container or "", "application/octet-stream")
    return ranged_file_response(request, path, content_type)


@require_safe
def transcript_download(request: HttpRequest, meeting_id: object, fmt: str) -> HttpResponse:
    """`/meetings/{id}/transcript.{fmt}?token=…`: the export for staff and viewer-token holders."""
    meeting = get_object_or_404(with_results(Meeting.objects.all()), id=meeting_id)
    viewable_job(request, meeting.job_id)
    return export_response(meeting, fmt)


@require_safe
def report_download(request: HttpRequest, meeting_id: object, fmt: str) -> HttpResponse:
    """`/meetings/{id}/report.{docx,pdf}?token=…`: the report for staff and viewer-token holders."""
    meeting = get_object_or_404(with_results(Meeting.objects.all()), id=meeting_id)
    viewable_job(request, meeting.job_id)
    return report_response(meeting, fmt)


@require_safe
def calendar_download(request: HttpRequest, meeting_id: object) -> HttpResponse:
    """`/meetings/{id}/action-items.ics?token=…`: the to-dos for staff and viewer-token holders."""
    meeting = get_object_or_404(Meeting.objects.prefetch_related("action_items"), id=meeting_id)
    job, _ = viewable_job(request, meeting.job_id)
    return calendar_response(meeting, results_url(job, meeting.id) or "")
