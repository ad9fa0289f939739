"""What a meeting report says, independent of its file format.

Both the DOCX and the PDF render this one structure, so they show the same
facts: title, date, duration, speakers with their share of talk time,
summary, template sections, action items, decisions and the transcript by
speaker turn with timestamps.

Template sections (`Meeting.sections`, `{key: {title, items[{text,
source_start_ms}]}}`) come in the template's order; a malformed entry is
skipped rather than failing the report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meetings.models import Meeting
from meetings.serializers import ordered_sections

ACTION_ITEM_COLUMNS = ("Action item", "Owner", "Due", "Time")


def clock(ms: int | None) -> str:
    """1234567 ms → "0:20:34"; blank for no time."""
    if ms is None:
        return ""
    seconds = max(0, int(ms)) // 1000
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class SpeakerShare:
    name: str
    seconds: float
    share: float  # 0..1 of the meeting's talk time


@dataclass(frozen=True)
class Item:
    text: str
    at: str  # "0:12:34" or ""
    owner: str = ""
    due: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    items: list[Item]


@dataclass(frozen=True)
class Turn:
    speaker: str
    at: str
    text: str


@dataclass(frozen=True)
class Report:
    title: str
    date: datetime
    duration: str
    speakers: list[SpeakerShare]
    summary: str
    sections: list[Section] = field(default_factory=list)
    action_items: list[Item] = field(default_factory=list)
    decisions: list[Item] = field(default_factory=list)
    transcript: list[Turn] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)


def _sections(ordered: dict[str, Any]) -> list[Section]:
    """Each well-formed section, in the template's order; a malformed entry is skipped."""
    sections = []
    for key, value in ordered.items():
        if not isinstance(value, dict):
            continue
        items = [
            Item(text=str(item.get("text", "")), at=clock(_ms(item.get("source_start_ms"))))
            for item in value.get("items") or []
            if isinstance(item, dict) and item.get("text")
        ]
        sections.append(Section(title=str(value.get("title") or key), items=items))
    return sections


def _ms(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build_report(meeting: Meeting) -> Report:
    """The report of `meeting`, which should come from ``with_results`` (no query per row)."""
    segments = list(meeting.segments.all())
    talk: dict[str, float] = defaultdict(float)
    turns = []
    for seg in segments:
        name = seg.speaker.display_name
        talk[name] += max(0, seg.end_ms - seg.start_ms) / 1000
        turns.append(Turn(speaker=name, at=clock(seg.start_ms), text=" ".join(seg.text.split())))
    total_talk = sum(talk.values()) or 1.0
    speakers = [
        SpeakerShare(
            name=str(speaker),
            seconds=talk.get(str(speaker), 0.0),
            share=talk.get(str(speaker), 0.0) / total_talk,
        )
        for speaker in meeting.speakers.all()
    ]
    speakers.sort(key=lambda s: -s.seconds)
    duration_ms = (
        int(meeting.duration_seconds * 1000)
        if meeting.duration_seconds is not None
        else max((seg.end_ms for seg in segments), default=0)
    )
    return Report(
        title=meeting.title or "Meeting report",
        date=meeting.created_at,
        duration=clock(duration_ms),
        speakers=speakers,
        summary=meeting.summary,
        sections=_sections(ordered_sections(meeting)),
        action_items=[
            Item(
                text=item.text,
                at=clock(item.source_start_ms),
                owner=item.owner,
                due=item.due_date.isoformat() if item.due_date else "",
            )
            for item in meeting.action_items.all()
        ],
        decisions=[Item(text=d.text, at=clock(d.source_start_ms)) for d in meeting.decisions.all()],
        transcript=turns,
        degraded=list(meeting.degraded or []),
    )
